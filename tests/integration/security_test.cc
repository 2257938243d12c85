// Security with real processes: revoking a device (meshctl revoke), and CurveZMQ mesh links.
#include <catch2/catch.hpp>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include "codec/envelope.h"
#include "codec/media_messages.h"
#include "router/curve.h"
#include "tests/integration/test_mesh.h"

using namespace meshchat;
using namespace meshchat::test;

TEST_CASE(
    "meshctl revoke closes a device's connections within a second and refuses its "
    "tokens, across gateways and restarts",
    "[integration][security]") {
  TestMesh mesh(2, 1);
  const std::string old_token = mesh.Token("alice", "phone");
  auto phone = client::ChatClient::Connect(mesh.Gateway(0), old_token);
  REQUIRE(phone.ok());
  auto laptop = mesh.Connect("alice", 1, "laptop");
  std::string out;
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(mesh.Meshctl("revoke alice phone", &out) == 0);
  CHECK_THAT(out, Catch::Contains("revoked at 2 gateways"));
  // The phone is told and closed at once.
  bool closed = false;
  while (!closed && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1)) {
    auto ev = phone->Next(100);
    if (!ev.ok()) {
      closed = ev.status().code() != Code::kTimeout;
    } else if (auto* e = std::get_if<codec::Error>(&*ev)) {
      CHECK(e->msg == "device revoked");
      CHECK(e->fatal);
    }
  }
  CHECK(closed);
  // The laptop is another device: it keeps working.
  REQUIRE(laptop.Send("bob", "still here").ok());
  Expect<codec::Sent>(laptop);
  // The old token is refused at every gateway, and still after a gateway restarts.
  for (size_t gw : {0, 1}) {
    auto again = client::ChatClient::Connect(mesh.Gateway(gw), old_token);
    REQUIRE_FALSE(again.ok());
    CHECK_THAT(again.status().message(), Catch::Contains("token revoked"));
  }
  REQUIRE(mesh.Meshctl("restart gw1", &out) == 0);
  auto after_restart = client::ChatClient::Connect(mesh.Gateway(0), old_token);
  REQUIRE_FALSE(after_restart.ok());
  CHECK_THAT(after_restart.status().message(), Catch::Contains("token revoked"));
  // A token signed after the revocation lets the device back in.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto back = mesh.Connect("alice", 0, "phone");
  REQUIRE(back.Send("bob", "new token").ok());
  Expect<codec::Sent>(back);
}

TEST_CASE("meshctl revoke refuses, naming it, while a gateway cannot be reached",
          "[integration][security]") {
  TestMesh mesh(2, 1);
  std::string out;
  REQUIRE(mesh.Meshctl("kill gw2 --signal TERM", &out) == 0);
  CHECK(mesh.Meshctl("revoke alice phone", &out) == 1);
  CHECK_THAT(out, Catch::Contains("not revoked at gw2") && Catch::Contains("revoked at 1"));
  CHECK(mesh.Meshctl("revoke 'b@d!' phone", &out) == 1);
  CHECK_THAT(out, Catch::Contains("1-64 characters"));
}

namespace {
// A status request to `n`'s mesh endpoint from a DEALER with `keys` (null: plaintext);
// whether an answer came within `ms`.
bool Answers(const router::NodeInfo& n, const router::CurveKeys* keys, int ms) {
  zmq::context_t ctx;
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::routing_id, "stranger");
  if (keys) router::MakeCurveClient(s, *keys, n.curve);
  s.connect(n.mesh);
  codec::Envelope req;
  req.type = codec::MeshType::kStatusReq;
  req.req = 1;
  (void)s.send(zmq::buffer(codec::Encode(req)), zmq::send_flags::dontwait);
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  return zmq::poll(&item, 1, std::chrono::milliseconds(ms)) > 0;
}

double Metric(const std::string& text, const std::string& name) {
  const size_t at = text.find("\n" + name + " ");
  return at == std::string::npos ? 0 : std::stod(text.substr(at + name.size() + 2));
}
}  // namespace

TEST_CASE(
    "mesh links: only keys the map lists get an answer; a node with another key does "
    "not start",
    "[integration][security]") {
  TestMesh mesh(1, 1, "--groups 0 --media-nodes 0");
  REQUIRE(mesh.map().curve());
  const router::NodeInfo& s1 = *mesh.map().Find("s1");
  // The operator key (what meshctl uses) is answered; a stranger's key and plaintext are not.
  auto op = router::LoadCurveKeys(mesh.var() + "/keys/operator.key");
  REQUIRE(op.ok());
  CHECK(Answers(s1, &*op, 3000));
  const router::CurveKeys stranger = router::GenerateCurveKeys();
  CHECK_FALSE(Answers(s1, &stranger, 1500));
  CHECK_FALSE(Answers(s1, nullptr, 1500));
  // Both are logged and counted.
  std::string metrics;
  for (int i = 0; i < 30; ++i) {
    metrics = mesh.Scrape("s1");
    if (Metric(metrics, "meshchat_mesh_refused_keys_total") >= 1 &&
        Metric(metrics, "meshchat_mesh_failed_handshakes_total") >= 1)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(Metric(metrics, "meshchat_mesh_refused_keys_total") >= 1);
  CHECK(Metric(metrics, "meshchat_mesh_failed_handshakes_total") >= 1);
  std::ifstream log(mesh.var() + "/log/s1.log");
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  CHECK_THAT(text, Catch::Contains("unknown key " + codec::HexOf(stranger.public_key)));
  CHECK_THAT(text, Catch::Contains("plaintext"));
  // Clients still chat through the encrypted mesh.
  auto alice = mesh.Connect("alice", 0);
  auto bob = mesh.Connect("bob", 0);
  REQUIRE(alice.Send("bob", "still private").ok());
  CHECK(Expect<codec::Push>(bob).body == "still private");
  // s1 restarted with a key the map does not list refuses to start, saying why.
  std::string out;
  std::filesystem::remove(mesh.var() + "/keys/s1.key");
  REQUIRE(RunCommand(Bin("meshctl") + " keygen " + mesh.var() + "/keys/s1.key", &out) == 0);
  CHECK(mesh.Meshctl("restart s1", &out) != 0);
  CHECK_THAT(out, Catch::Contains("not the one the map lists for s1"));
}
