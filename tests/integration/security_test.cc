// Security with real processes: revoking a device (meshctl revoke).
#include <catch2/catch.hpp>

#include <chrono>
#include <ctime>
#include <thread>

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
