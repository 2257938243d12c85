// One-to-one chat through a real mesh: 2 gateways and 2 session shards as separate processes.
#include <catch2/catch.hpp>

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <thread>

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
  CHECK(push.chat == a);
  CHECK(push.from_device == "d1");
  CHECK(push.body == "hello from gw1");
  CHECK(push.cid == *cid);
  auto sent = Expect<codec::Sent>(ca);
  CHECK(sent.cid == *cid);
  CHECK(sent.to == b);
  CHECK(sent.seq == push.seq);

  REQUIRE(cb.Send(a, "and back from gw2").ok());
  auto back = Expect<codec::Push>(ca);
  CHECK(back.body == "and back from gw2");
  CHECK(back.seq == push.seq + 1);  // one sequence for both directions
  CHECK(Expect<codec::Sent>(cb).seq == back.seq);
}

TEST_CASE("a recipient that is offline gets everything, in order, when it comes online",
          "[integration]") {
  TestMesh mesh;
  auto [a, b] = mesh.CrossShardUsers();
  auto ca = mesh.Connect(a, 0);
  for (int i = 0; i < 50; ++i) REQUIRE(ca.Send(b, "m" + std::to_string(i)).ok());
  for (int i = 0; i < 50; ++i) Expect<codec::Sent>(ca);  // stored durably: single tick
  auto cb = mesh.Connect(b, 1);
  for (int i = 0; i < 50; ++i) CHECK(Expect<codec::Push>(cb).body == "m" + std::to_string(i));
}

TEST_CASE("a sender that is offline gets its delivered and read receipts later", "[integration]") {
  TestMesh mesh;
  auto [a, b] = mesh.CrossShardUsers();
  uint64_t seq = 0;
  {
    auto ca = mesh.Connect(a, 0);
    REQUIRE(ca.Send(b, "are you there?").ok());
    seq = Expect<codec::Sent>(ca).seq;
    REQUIRE(ca.Bye().ok());
  }
  {
    auto cb = mesh.Connect(b, 1);
    auto p = Expect<codec::Push>(cb);  // acked by the library: delivered
    REQUIRE(cb.Read(p.chat, p.seq).ok());
    REQUIRE(cb.Ping(1).ok());
    Expect<client::Pong>(cb);
  }
  auto ca = mesh.Connect(a, 1);
  auto r1 = Expect<codec::Receipt>(ca);
  CHECK(r1.kind == codec::ReceiptKind::kDelivered);
  CHECK(r1.chat == b);
  CHECK(r1.seq == seq);
  auto r2 = Expect<codec::Receipt>(ca);
  CHECK(r2.kind == codec::ReceiptKind::kRead);
  CHECK(r2.seq == seq);
}

TEST_CASE("the same cid sent three times is delivered once, with one seq", "[integration]") {
  TestMesh mesh;
  auto [a, b] = mesh.CrossShardUsers();
  auto ca = mesh.Connect(a, 0);
  auto cb = mesh.Connect(b, 1);
  std::vector<uint64_t> seqs;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(ca.Send(b, "once", 4242).ok());
    seqs.push_back(Expect<codec::Sent>(ca).seq);
  }
  CHECK(seqs[0] == seqs[1]);
  CHECK(seqs[1] == seqs[2]);
  CHECK(Expect<codec::Push>(cb).body == "once");
  REQUIRE(ca.Send(b, "next").ok());
  CHECK(Expect<codec::Push>(cb).body == "next");  // not a second "once"
}

TEST_CASE("1,000 messages arrive complete and in order across a reconnect", "[integration]") {
  TestMesh mesh(2, 2, "--opt send_burst=2000");  // all at once: above the default send rate
  auto [a, b] = mesh.CrossShardUsers();
  auto ca = mesh.Connect(a, 0);
  const int n = 1000;
  for (int i = 0; i < n; ++i) REQUIRE(ca.Send(b, std::to_string(i)).ok());
  std::vector<int> got;
  uint64_t last_n = 0;
  {
    auto cb = mesh.Connect(b, 1);
    while (got.size() < 400) got.push_back(std::stoi(Expect<codec::Push>(cb).body));
    last_n = cb.last_n();
  }                              // dropped without a goodbye, with pushes in flight
  auto cb = mesh.Connect(b, 0);  // the other gateway
  cb.set_last_n(last_n);
  while (got.size() < static_cast<size_t>(n))
    got.push_back(std::stoi(Expect<codec::Push>(cb).body));
  for (int i = 0; i < n; ++i) REQUIRE(got[static_cast<size_t>(i)] == i);
  for (int i = 0; i < n; ++i) Expect<codec::Sent>(ca);
}

TEST_CASE("two devices of one user each get every message and keep their own place",
          "[integration]") {
  TestMesh mesh;
  auto [a, b] = mesh.CrossShardUsers();
  auto ca = mesh.Connect(a, 0);
  auto phone = mesh.Connect(b, 0, "phone");
  {
    auto laptop = mesh.Connect(b, 1, "laptop");
    REQUIRE(ca.Send(b, "to both").ok());
    CHECK(Expect<codec::Push>(phone).body == "to both");
    CHECK(Expect<codec::Push>(laptop).body == "to both");
  }  // the laptop goes offline
  REQUIRE(ca.Send(b, "while the laptop sleeps").ok());
  CHECK(Expect<codec::Push>(phone).body == "while the laptop sleeps");
  auto laptop = mesh.Connect(b, 1, "laptop");
  CHECK(Expect<codec::Push>(laptop).body == "while the laptop sleeps");
  // The phone sends; the laptop sees it as the user's own message.
  REQUIRE(phone.Send(a, "from my phone").ok());
  auto own = Expect<codec::Push>(laptop);
  CHECK(own.from == b);
  CHECK(own.chat == a);
  CHECK(own.from_device == "phone");
}

TEST_CASE("a second connection of a device replaces the first", "[integration]") {
  TestMesh mesh;
  auto first = mesh.Connect("carol", 0, "phone");
  auto second = mesh.Connect("carol", 1, "phone");
  auto e = Expect<codec::Error>(first);
  CHECK(e.code == codec::ErrorCode::kReplaced);
  CHECK(e.fatal);
  CHECK(first.Next(5000).status().code() == Code::kUnavailable);  // closed by the server
  REQUIRE(second.Ping(3).ok());
  CHECK(Expect<client::Pong>(second).t == 3);
}

TEST_CASE("Next(0) returns an event that is waiting on the socket", "[integration]") {
  // Regression: a zero timeout used to give up before looking at the socket, so the
  // interactive client never showed incoming messages.
  TestMesh mesh;
  auto ca = mesh.Connect("alice", 0);
  REQUIRE(ca.Ping(9).ok());
  pollfd p{ca.fd(), POLLIN, 0};
  REQUIRE(poll(&p, 1, 5000) == 1);
  auto ev = ca.Next(0);
  INFO(ev.status().ToString());
  REQUIRE(ev.ok());
  CHECK(std::holds_alternative<client::Pong>(*ev));
}

TEST_CASE("a sender over its rate gets rate_limited with retry_after - nothing is stored",
          "[integration][overload]") {
  TestMesh mesh(2, 2, "--opt send_rate=10 --opt send_burst=5");
  auto a = mesh.Connect("alice", 0);
  auto b = mesh.Connect("bob", 1);
  for (uint64_t cid = 1; cid <= 8; ++cid)
    REQUIRE(a.Send("bob", "m" + std::to_string(cid), cid).ok());
  std::vector<uint64_t> limited;
  int sent = 0;
  uint64_t retry_after = 0;
  while (sent + static_cast<int>(limited.size()) < 8) {
    auto ev = a.Next(5000);
    REQUIRE(ev.ok());
    if (std::holds_alternative<codec::Sent>(*ev)) ++sent;
    if (auto* e = std::get_if<codec::Error>(&*ev)) {
      REQUIRE(e->code == codec::ErrorCode::kRateLimited);
      REQUIRE(e->cid);
      limited.push_back(*e->cid);
      retry_after = std::max(retry_after, e->retry_after);
    }
  }
  CHECK(sent == 5);  // the burst
  CHECK(limited.size() == 3);
  CHECK(retry_after > 0);
  for (int i = 0; i < 5; ++i) Expect<codec::Push>(b);
  CHECK(b.Next(500).status().code() == Code::kTimeout);  // refused ones were not stored
  std::this_thread::sleep_for(std::chrono::milliseconds(retry_after * 3 + 100));
  for (uint64_t cid : limited) REQUIRE(a.Send("bob", "again", cid).ok());
  for (size_t i = 0; i < limited.size(); ++i) Expect<codec::Sent>(a);
  for (size_t i = 0; i < limited.size(); ++i) CHECK(Expect<codec::Push>(b).body == "again");
}

TEST_CASE("a backlog of hundreds arrives without its acks tripping the frame rate limit",
          "[integration][inbox]") {
  // 100 frames a second per connection; six senders' 480 messages wait for an offline user.
  // An ack per push (as the client library once sent) is refused as rate_limited, and the
  // pushes come back; acks now go once per burst read (found by scripts/chaos slow-client).
  TestMesh mesh(2, 2, "--opt frame_rate=100 --opt frame_burst=100");
  for (int s = 0; s < 6; ++s) {
    auto c = mesh.Connect("sender" + std::to_string(s), s % 2);
    for (int i = 0; i < 80; ++i) REQUIRE(c.Send("late", "m" + std::to_string(i)).ok());
    for (int i = 0; i < 80; ++i) Expect<codec::Sent>(c, 10000);
  }
  auto late = mesh.Connect("late", 0);
  size_t pushes = 0, limited = 0;
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
       pushes < 480 && std::chrono::steady_clock::now() < until;) {
    auto ev = late.Next(2000);
    if (!ev.ok()) continue;
    if (std::get_if<codec::Push>(&*ev)) ++pushes;
    if (auto* e = std::get_if<codec::Error>(&*ev); e && e->code == codec::ErrorCode::kRateLimited)
      ++limited;
  }
  CHECK(pushes == 480);
  CHECK(limited == 0);
}
