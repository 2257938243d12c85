// Client TLS against real gateways (`meshctl up --tls`): the client checks the gateway's
// certificate, plaintext and stalled handshakes are cut off, a renewed certificate is picked
// up without a restart, and large frames cross intact (many TLS records each way).
#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <thread>

#include "client/connection.h"
#include "codec/client_messages.h"
#include "tests/integration/test_mesh.h"

using namespace meshchat;
using namespace meshchat::test;

namespace {

constexpr const char* kTlsMesh =
    "--tls --groups 0 --presence 0 --media-nodes 0 --opt tls_reload_ms=200 "
    "--opt frame_deadline_ms=1000";

// Waits until the server closes `c` (no frame can come); false if it stays open `ms`.
bool ClosedWithin(client::Connection& c, int ms) {
  auto f = c.ReadFrame(ms);
  return !f.ok() && f.status().code() == Code::kUnavailable;
}

}  // namespace

TEST_CASE("TLS: clients that trust the mesh's CA chat - large frames cross intact",
          "[integration][tls]") {
  TestMesh mesh(1, 2, kTlsMesh);
  REQUIRE(mesh.Gateway(0).tls);
  auto [a, b] = mesh.CrossShardUsers();
  auto ca = mesh.Connect(a, 0);
  auto cb = mesh.Connect(b, 0);
  REQUIRE(ca.Send(b, "hello over tls").ok());
  CHECK(Expect<codec::Push>(cb).body == "hello over tls");
  // 60 KB bodies are four TLS records each; a burst of them leaves in coalesced writes.
  const std::string big(60'000, 'x');
  for (int i = 0; i < 20; ++i) REQUIRE(ca.Send(b, big + std::to_string(i)).ok());
  for (int i = 0; i < 20; ++i) CHECK(Expect<codec::Push>(cb).body == big + std::to_string(i));
}

TEST_CASE("TLS: an untrusted certificate, plaintext and a stalled handshake are refused",
          "[integration][tls]") {
  TestMesh mesh(1, 1, kTlsMesh);
  const client::Endpoint ep = mesh.Gateway(0);
  auto alice = mesh.Connect("alice", 0);

  SECTION("a client checking against other CAs (the system's) does not connect") {
    client::Endpoint other = ep;
    other.tls_opts.ca_file.clear();
    auto c = client::ChatClient::Connect(other, mesh.Token("bob"), 3000);
    REQUIRE_FALSE(c.ok());
    CHECK_THAT(c.status().message(), Catch::Contains("not trusted"));
  }
  SECTION("a plaintext client is cut off before any frame is read") {
    auto c = client::Connection::Dial(ep.host, ep.port, 2000);
    REQUIRE(c.ok());
    REQUIRE(c->SendFrame(static_cast<uint8_t>(codec::FrameType::kHello),
                         codec::Encode(codec::Hello{codec::kProtocolVersion, mesh.Token("bob")}))
                .ok());
    CHECK(ClosedWithin(*c, 3000));
    double failures = 0;  // metrics are rendered once a second
    for (int i = 0; i < 30 && failures < 1; ++i) {
      failures = Metric(mesh.Scrape("gw1"), "meshchat_gateway_tls_failures_total");
      if (failures < 1) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    CHECK(failures >= 1);
  }
  SECTION("a handshake that never finishes is cut off at the frame deadline") {
    auto silent = client::Connection::Dial(ep.host, ep.port, 2000);
    auto partial = client::Connection::Dial(ep.host, ep.port, 2000);
    REQUIRE(silent.ok());
    REQUIRE(partial.ok());
    REQUIRE(partial->SendRaw(std::string("\x16\x03\x01\x02\x00\x01", 6)).ok());  // a start
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(ClosedWithin(*silent, 4000));
    CHECK(ClosedWithin(*partial, 4000));
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(4));
  }
  // Whatever strangers did, the authenticated client goes on.
  REQUIRE(alice.Ping(7).ok());
  CHECK(Expect<client::Pong>(alice).t == 7);
}

TEST_CASE("TLS: a renewed certificate is used for new connections without a restart",
          "[integration][tls]") {
  TestMesh mesh(1, 1, kTlsMesh);
  auto before = mesh.Connect("alice", 0);
  // A certificate for another name: the gateway reloads it, and clients dialing 127.0.0.1
  // refuse it (the name check), while the connection made before goes on.
  std::string out;
  REQUIRE(mesh.Meshctl("tls-certs --name other.example", &out) == 0);
  std::string why;
  for (int i = 0; i < 50; ++i) {
    auto c = client::ChatClient::Connect(mesh.Gateway(0), mesh.Token("bob"), 2000);
    if (!c.ok()) {
      why = c.status().message();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK_THAT(why, Catch::Contains("not trusted") && Catch::Contains("mismatch"));
  REQUIRE(before.Ping(1).ok());
  CHECK(Expect<client::Pong>(before).t == 1);
  // Renewed again for the right names: new clients connect.
  REQUIRE(mesh.Meshctl("tls-certs", &out) == 0);
  bool back = false;
  for (int i = 0; i < 50 && !back; ++i) {
    back = client::ChatClient::Connect(mesh.Gateway(0), mesh.Token("bob"), 2000).ok();
    if (!back) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(back);
  std::ifstream log(mesh.var() + "/log/gw1.log");
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  CHECK_THAT(text, Catch::Contains("TLS certificate") && Catch::Contains("reloaded"));
}
