// Messages through a real mesh: 2 gateways and 2 session shards as separate processes.
#include <catch2/catch.hpp>

#include <poll.h>

#include "tests/integration/test_mesh.h"

using namespace meshchat;
using namespace meshchat::test;

TEST_CASE("A on gateway 1 reaches B on gateway 2 across session shards, and back",
          "[integration]") {
  TestMesh mesh;
  auto [a, b] = mesh.CrossShardUsers();
  auto ca = mesh.Connect(a, 0);
  auto cb = mesh.Connect(b, 1);
  CHECK(ca.welcome().node == "gw1");
  CHECK(cb.welcome().node == "gw2");

  auto cid = ca.Send(b, "hello from gw1");
  REQUIRE(cid.ok());
  auto push = Expect<codec::Push>(cb);
  CHECK(push.from == a);
  CHECK(push.from_device == "d1");
  CHECK(push.body == "hello from gw1");
  CHECK(push.cid == *cid);
  auto sent = Expect<codec::Sent>(ca);
  CHECK(sent.cid == *cid);
  CHECK(sent.id == push.id);

  auto cid2 = cb.Send(a, "and back from gw2");
  REQUIRE(cid2.ok());
  CHECK(Expect<codec::Push>(ca).body == "and back from gw2");
  CHECK(Expect<codec::Sent>(cb).cid == *cid2);
}

TEST_CASE("every connected device of the recipient gets the message", "[integration]") {
  TestMesh mesh;
  auto [a, b] = mesh.CrossShardUsers();
  auto ca = mesh.Connect(a, 0);
  auto phone = mesh.Connect(b, 0, "phone");
  auto laptop = mesh.Connect(b, 1, "laptop");
  REQUIRE(ca.Send(b, "to both").ok());
  CHECK(Expect<codec::Push>(phone).body == "to both");
  CHECK(Expect<codec::Push>(laptop).body == "to both");
  Expect<codec::Sent>(ca);
}

TEST_CASE("a burst of messages arrives complete and in order", "[integration]") {
  TestMesh mesh;
  auto [a, b] = mesh.CrossShardUsers();
  auto ca = mesh.Connect(a, 0);
  auto cb = mesh.Connect(b, 1);
  const int n = 500;
  for (int i = 0; i < n; ++i) REQUIRE(ca.Send(b, "m" + std::to_string(i)).ok());
  for (int i = 0; i < n; ++i) REQUIRE(Expect<codec::Push>(cb).body == "m" + std::to_string(i));
  int acks = 0;
  while (acks < n) {
    Expect<codec::Sent>(ca);
    ++acks;
  }
}

TEST_CASE("sending to a user who is not connected gives recipient_unavailable", "[integration]") {
  TestMesh mesh;
  auto ca = mesh.Connect("alice", 0);
  auto cid = ca.Send("nobody-home", "hello?");
  REQUIRE(cid.ok());
  auto err = Expect<codec::Error>(ca);
  CHECK(err.code == codec::ErrorCode::kRecipientUnavailable);
  CHECK(err.cid == std::optional<uint64_t>(*cid));
  CHECK_FALSE(err.fatal);
}

TEST_CASE("after a disconnect the user is no longer reachable, after reconnect again",
          "[integration]") {
  TestMesh mesh;
  auto [a, b] = mesh.CrossShardUsers();
  auto ca = mesh.Connect(a, 0);
  {
    auto cb = mesh.Connect(b, 1);
    REQUIRE(cb.Bye().ok());
    // Wait for the server to close our side: the gateway has processed the bye.
    auto ev = cb.Next(5000);
    CHECK(ev.status().code() == Code::kUnavailable);
  }
  // The close travels gateway -> shard; poll until the shard has applied it.
  bool unavailable = false;
  for (int i = 0; i < 50 && !unavailable; ++i) {
    REQUIRE(ca.Send(b, "x").ok());
    auto ev = ca.Next(5000);
    REQUIRE(ev.ok());
    if (auto* e = std::get_if<codec::Error>(&*ev))
      unavailable = e->code == codec::ErrorCode::kRecipientUnavailable;
  }
  CHECK(unavailable);
  auto cb = mesh.Connect(b, 0);  // back, on the other gateway
  REQUIRE(ca.Send(b, "welcome back").ok());
  CHECK(Expect<codec::Push>(cb).body == "welcome back");
}

TEST_CASE("Next(0) returns an event that is waiting on the socket", "[integration]") {
  // Regression: a zero timeout used to give up before looking at the socket, so the
  // interactive client never showed incoming messages.
  TestMesh mesh;
  auto ca = mesh.Connect("alice", 0);
  auto cid = ca.Send("nobody-home", "x");
  REQUIRE(cid.ok());
  pollfd p{ca.fd(), POLLIN, 0};
  REQUIRE(poll(&p, 1, 5000) == 1);
  auto ev = ca.Next(0);
  INFO(ev.status().ToString());
  REQUIRE(ev.ok());
  CHECK(std::holds_alternative<codec::Error>(*ev));
}
