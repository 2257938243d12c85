// SessionCore without sockets: durable inboxes, conversation order, receipts, devices,
// retries and failures, over several shards on in-memory stores and a fake clock.
#include <catch2/catch.hpp>

#include "codec/media_messages.h"
#include "nodes/shard/records.h"
#include "tests/nodes/shard_harness.h"

using namespace meshchat;
using namespace meshchat::codec;
using meshchat::test::Shards;

namespace {

// Users whose shards, and whose conversation's shard, are not all the same.
std::pair<std::string, std::string> SpreadPair(Shards& s) {
  for (int i = 0;; ++i) {
    std::string a = "a" + std::to_string(i), b = "b" + std::to_string(i);
    if (s.Owner(a) != s.Owner(b)) return {a, b};
  }
}

const Stamp kAlice{"", "phone", 1, "gw1"};

std::vector<std::string> Bodies(const std::vector<Push>& ps) {
  std::vector<std::string> out;
  for (const auto& p : ps) out.push_back(p.body);
  return out;
}

}  // namespace

TEST_CASE("a message to an online user: stored, pushed to every device, then acked sent",
          "[nodes][inbox]") {
  Shards s({"s1", "s2", "s3"});
  auto [a, b] = SpreadPair(s);
  Stamp alice{a, "phone", 1, "gw1"}, bob_phone{b, "phone", 2, "gw2"},
      bob_laptop{b, "laptop", 3, "gw1"};
  s.Connect(a, "phone", "gw1", 1);
  s.Connect(b, "phone", "gw2", 2);
  s.Connect(b, "laptop", "gw1", 3);
  CHECK(s.Client("gw2", 2).welcomed == 1);
  s.Send(alice, b, 42, "hello");

  for (auto* v : {&s.Client("gw2", 2), &s.Client("gw1", 3)}) {
    REQUIRE(v->pushes.size() == 1);
    const Push& p = v->pushes[0];
    CHECK(p.chat == a);
    CHECK(p.from == a);
    CHECK(p.from_device == "phone");
    CHECK(p.cid == 42);
    CHECK(p.seq == 1);
    CHECK(p.n == 1);
    CHECK(p.body == "hello");
  }
  auto& av = s.Client("gw1", 1);
  REQUIRE(av.sent.size() == 1);
  CHECK(av.sent[0] == Sent{42, b, 1, av.sent[0].ts});
  // The sender's only device needs no copy of its own message.
  CHECK(av.pushes.empty());
}

TEST_CASE("the sender's other devices get a copy of what it sent", "[nodes][inbox]") {
  Shards s({"s1", "s2", "s3"});
  auto [a, b] = SpreadPair(s);
  Stamp phone{a, "phone", 1, "gw1"};
  s.Connect(a, "phone", "gw1", 1);
  s.Connect(a, "laptop", "gw2", 5);
  s.Send(phone, b, 1, "from my phone");
  auto& laptop = s.Client("gw2", 5);
  REQUIRE(laptop.pushes.size() == 1);
  CHECK(laptop.pushes[0].chat == b);
  CHECK(laptop.pushes[0].from == a);
  CHECK(laptop.pushes[0].from_device == "phone");
  CHECK(laptop.pushes[0].body == "from my phone");
}

TEST_CASE("an offline recipient gets everything, in order, when it connects", "[nodes][inbox]") {
  Shards s({"s1", "s2", "s3"});
  auto [a, b] = SpreadPair(s);
  Stamp alice{a, "phone", 1, "gw1"};
  s.Connect(a, "phone", "gw1", 1);
  for (uint64_t i = 1; i <= 20; ++i) s.Send(alice, b, i, "m" + std::to_string(i));
  CHECK(s.Client("gw1", 1).sent.size() == 20);  // stored, so acked, though b is offline

  s.Connect(b, "tablet", "gw2", 9);
  auto& bv = s.Client("gw2", 9);
  REQUIRE(bv.pushes.size() == 20);
  for (uint64_t i = 1; i <= 20; ++i) {
    CHECK(bv.pushes[i - 1].body == "m" + std::to_string(i));
    CHECK(bv.pushes[i - 1].seq == i);
    CHECK(bv.pushes[i - 1].n == i);
  }
}

TEST_CASE("the same cid three times is stored and delivered once, with one seq", "[nodes][inbox]") {
  Shards s;
  auto [a, b] = SpreadPair(s);
  Stamp alice{a, "phone", 1, "gw1"};
  s.Connect(a, "phone", "gw1", 1);
  s.Connect(b, "phone", "gw2", 2);
  for (int i = 0; i < 3; ++i) s.Send(alice, b, 777, "only once");
  auto& av = s.Client("gw1", 1);
  REQUIRE(av.sent.size() == 3);
  CHECK(av.sent[0].seq == av.sent[1].seq);
  CHECK(av.sent[1].seq == av.sent[2].seq);
  CHECK(s.Client("gw2", 2).pushes.size() == 1);
}

TEST_CASE("both directions of a chat share one sequence", "[nodes][inbox]") {
  Shards s({"s1", "s2", "s3"});
  auto [a, b] = SpreadPair(s);
  Stamp alice{a, "phone", 1, "gw1"}, bob{b, "phone", 2, "gw2"};
  s.Connect(a, "phone", "gw1", 1);
  s.Connect(b, "phone", "gw2", 2);
  s.Send(alice, b, 1, "a1");
  s.Send(bob, a, 1, "b1");
  s.Send(alice, b, 2, "a2");
  CHECK(s.Client("gw1", 1).sent[0].seq == 1);
  CHECK(s.Client("gw2", 2).sent[0].seq == 2);
  CHECK(s.Client("gw1", 1).sent[1].seq == 3);
  // One order for the chat: bob gets a1 (seq 1) and a2 (seq 3), alice gets b1 (seq 2).
  std::vector<uint64_t> seqs;
  for (auto& p : s.Client("gw2", 2).pushes) seqs.push_back(p.seq);
  CHECK(seqs == std::vector<uint64_t>{1, 3});
  REQUIRE(s.Client("gw1", 1).pushes.size() == 1);
  CHECK(s.Client("gw1", 1).pushes[0].seq == 2);
}

TEST_CASE("delivered on the first device's ack - receipts wait for an offline sender",
          "[nodes][receipts]") {
  Shards s({"s1", "s2", "s3"});
  auto [a, b] = SpreadPair(s);
  Stamp alice{a, "phone", 1, "gw1"}, bob1{b, "phone", 2, "gw2"}, bob2{b, "laptop", 3, "gw2"};
  s.Connect(a, "phone", "gw1", 1);
  s.Send(alice, b, 1, "one");
  s.Send(alice, b, 2, "two");
  s.AckAll(alice);                     // alice acks her own copies
  s.Disconnect(a, "phone", "gw1", 1);  // the sender goes away

  s.Connect(b, "phone", "gw2", 2);
  s.Connect(b, "laptop", "gw2", 3);
  s.Ack(bob1, 1);  // first device acks the first message
  s.Ack(bob2, 2);  // the other device acks both: only "two" is newly delivered
  s.Ack(bob1, 2);  // no new receipt: already delivered

  s.Connect(a, "phone", "gw1", 4);  // the sender comes back
  auto& av = s.Client("gw1", 4);
  REQUIRE(av.receipts.size() == 2);
  CHECK(av.receipts[0].kind == ReceiptKind::kDelivered);
  CHECK(av.receipts[0].chat == b);
  CHECK(av.receipts[0].seq == 1);
  CHECK(av.receipts[1].seq == 2);
}

TEST_CASE("read receipts: read implies delivered, and only what was received",
          "[nodes][receipts]") {
  Shards s;
  auto [a, b] = SpreadPair(s);
  Stamp alice{a, "phone", 1, "gw1"}, bob{b, "phone", 2, "gw2"};
  s.Connect(a, "phone", "gw1", 1);
  s.Connect(b, "phone", "gw2", 2);
  s.Send(alice, b, 1, "x");
  s.Send(alice, b, 2, "y");
  s.Read(bob, a, 99);  // bob has received up to seq 2: clamped
  s.Read(bob, a, 1);   // lower: no effect
  auto& av = s.Client("gw1", 1);
  REQUIRE(av.receipts.size() == 1);
  CHECK(av.receipts[0].kind == ReceiptKind::kRead);
  CHECK(av.receipts[0].seq == 2);
  s.Ack(bob, 2);  // delivered after read: nothing new (read implied it)
  CHECK(av.receipts.size() == 1);
}

TEST_CASE("unacked pushes are sent again, backing off, until acked", "[nodes][inbox]") {
  Shards s;
  auto [a, b] = SpreadPair(s);
  Stamp alice{a, "phone", 1, "gw1"}, bob{b, "phone", 2, "gw2"};
  s.Connect(a, "phone", "gw1", 1);
  s.Connect(b, "phone", "gw2", 2);
  s.Send(alice, b, 1, "hello?");
  auto& bv = s.Client("gw2", 2);
  REQUIRE(bv.pushes.size() == 1);
  s.clock.Advance(1999);
  s.Tick();
  CHECK(bv.pushes.size() == 1);
  s.clock.Advance(2);
  s.Tick();
  CHECK(bv.pushes.size() == 2);  // resent after 2 s
  s.clock.Advance(2500);
  s.Tick();
  CHECK(bv.pushes.size() == 2);  // backed off to 4 s
  s.clock.Advance(1600);
  s.Tick();
  CHECK(bv.pushes.size() == 3);
  CHECK(bv.pushes[2] == bv.pushes[0]);
  s.Ack(bob, bv.pushes[0].n);
  s.clock.Advance(120000);
  s.Tick();
  CHECK(bv.pushes.size() == 3);  // acked: never again
}

TEST_CASE("a second connection of a device replaces the first", "[nodes][devices]") {
  Shards s;
  s.Connect("carol", "phone", "gw1", 1);
  s.Connect("carol", "phone", "gw2", 7);
  auto& old = s.Client("gw1", 1);
  REQUIRE(old.errors.size() == 1);
  CHECK(old.errors[0].code == ErrorCode::kReplaced);
  CHECK(old.errors[0].fatal);
  CHECK(old.closed);
  CHECK(s.Client("gw2", 7).welcomed == 1);
  CHECK(s.core(s.Owner("carol")).inboxes().ConnectionsOf("carol").size() == 1);
}

TEST_CASE("at most five devices at once", "[nodes][devices]") {
  Shards s;
  for (uint64_t i = 1; i <= 5; ++i) s.Connect("dave", "d" + std::to_string(i), "gw1", i);
  s.Connect("dave", "d6", "gw1", 6);
  CHECK(s.Client("gw1", 5).welcomed == 1);
  CHECK(s.Client("gw1", 6).refused == 1);
  s.Disconnect("dave", "d1", "gw1", 1);
  s.Connect("dave", "d6", "gw1", 16);
  CHECK(s.Client("gw1", 16).welcomed == 1);
}

TEST_CASE("a failed commit acknowledges nothing - the retry then works", "[nodes][failure]") {
  Shards s({"s1"});
  Stamp alice{"alice", "phone", 1, "gw1"};
  s.Connect("alice", "phone", "gw1", 1);
  s.Connect("bob", "phone", "gw2", 2);
  s.kv("s1").FailNextCommit();
  s.Send(alice, "bob", 5, "lost?");
  auto& av = s.Client("gw1", 1);
  CHECK(av.sent.empty());
  CHECK(s.Client("gw2", 2).pushes.empty());
  s.clock.Advance(6000);
  s.Tick();  // the sender's shard reports the deadline
  REQUIRE_FALSE(av.errors.empty());
  CHECK(av.errors.back().code == ErrorCode::kServiceUnavailable);
  s.Send(alice, "bob", 5, "lost?");  // the client retries with the same cid
  REQUIRE(av.sent.size() == 1);
  REQUIRE(s.Client("gw2", 2).pushes.size() == 1);
  CHECK(s.Client("gw2", 2).pushes[0].body == "lost?");
}

TEST_CASE("channel messages lost in transit are resent, and applied once", "[nodes][channel]") {
  Shards s({"s1", "s2", "s3"});
  auto [a, b] = SpreadPair(s);
  Stamp alice{a, "phone", 1, "gw1"};
  s.Connect(a, "phone", "gw1", 1);
  s.Connect(b, "phone", "gw2", 2);
  int dropped = 0;
  s.drop = [&](const std::string&, const std::string&, const Envelope& e) {
    // Lose every other channel message and every other channel ack.
    if (e.type != MeshType::kChanMsg && e.type != MeshType::kChanAck) return false;
    return (++dropped % 2) == 1;
  };
  for (uint64_t i = 1; i <= 10; ++i) s.Send(alice, b, i, "m" + std::to_string(i));
  for (int i = 0; i < 40; ++i) {
    s.clock.Advance(500);
    s.Tick();
  }
  s.drop = nullptr;
  for (int i = 0; i < 40; ++i) {
    s.clock.Advance(8000);
    s.Tick();
  }
  // bob saw each message (duplicates of pushes are possible; positions tell them apart).
  std::map<uint64_t, std::string> by_n;
  for (auto& p : s.Client("gw2", 2).pushes) {
    auto [it, fresh] = by_n.emplace(p.n, p.body);
    CHECK(it->second == p.body);
  }
  REQUIRE(by_n.size() == 10);
  uint64_t i = 1;
  for (auto& [n, body] : by_n) CHECK(body == "m" + std::to_string(i++));
}

TEST_CASE("a shard restart loses nothing it acknowledged", "[nodes][failure]") {
  Shards s({"s1", "s2", "s3"});
  auto [a, b] = SpreadPair(s);
  Stamp alice{a, "phone", 1, "gw1"};
  s.Connect(a, "phone", "gw1", 1);
  const std::string bob_shard = s.Owner(b);
  s.down.insert(bob_shard);  // b's shard is down: entries wait in the owner's channel
  for (uint64_t i = 1; i <= 5; ++i) s.Send(alice, b, i, "w" + std::to_string(i));
  const size_t acked = s.Client("gw1", 1).sent.size();
  s.down.erase(bob_shard);
  s.Restart(bob_shard);
  s.PeerUp(bob_shard);
  s.Connect(b, "phone", "gw2", 2);
  std::vector<std::string> want;
  for (size_t i = 1; i <= acked; ++i) want.push_back("w" + std::to_string(i));
  CHECK(acked > 0);
  CHECK(Bodies(s.Client("gw2", 2).pushes) == want);
}

TEST_CASE("entries are deleted once every device acked them", "[nodes][inbox]") {
  Shards s({"s1"});
  Stamp alice{"alice", "phone", 1, "gw1"}, b1{"bob", "phone", 2, "gw2"}, b2{"bob", "pc", 3, "gw2"};
  s.Connect("alice", "phone", "gw1", 1);
  s.Connect("bob", "phone", "gw2", 2);
  s.Connect("bob", "pc", "gw2", 3);
  for (uint64_t i = 1; i <= 10; ++i) s.Send(alice, "bob", i, "x");
  CHECK(s.kv("s1").Count("inbox") == 10);  // alice's only device needs no copies
  s.AckAll(b1);                            // kept for bob's pc; alice gets a delivered receipt
  CHECK(s.kv("s1").Count("inbox") == 11);
  s.AckAll(b2);
  CHECK(s.kv("s1").Count("inbox") == 1);
  s.AckAll(alice);
  CHECK(s.kv("s1").Count("inbox") == 0);
  s.clock.Advance(31LL * 24 * 3600 * 1000);
  s.Tick();
  CHECK(s.kv("s1").Count("inbox_exp") == 0);  // expiry marks go with their time bucket
  CHECK(s.kv("s1").Count("dedup") == 0);
}

TEST_CASE("undelivered messages expire, and their sender is told", "[nodes][inbox]") {
  nodes::SessionConfig cfg;
  cfg.inbox_ttl_ms = 60'000;
  Shards s({"s1", "s2", "s3"}, cfg);
  auto [a, b] = SpreadPair(s);
  Stamp alice{a, "phone", 1, "gw1"};
  s.Connect(a, "phone", "gw1", 1);
  s.Send(alice, b, 1, "too late");
  s.AckAll(alice);
  s.clock.Advance(59'000);
  s.Tick();
  CHECK(s.Client("gw1", 1).receipts.empty());
  s.clock.Advance(4'000);  // expiry runs in buckets of 1/32 of the retention
  s.Tick();
  auto& av = s.Client("gw1", 1);
  REQUIRE(av.receipts.size() == 1);
  CHECK(av.receipts[0].kind == ReceiptKind::kExpired);
  CHECK(av.receipts[0].seq == 1);
  s.Connect(b, "phone", "gw2", 2);
  CHECK(s.Client("gw2", 2).pushes.empty());
  size_t dedup = 0;
  for (const char* id : {"s1", "s2", "s3"}) dedup += s.kv(id).Count("dedup");
  CHECK(dedup == 0);  // the dedup record went with the retention period
}

TEST_CASE("bad client frames get bad_request and change nothing", "[nodes]") {
  Shards s({"s1"});
  Stamp alice{"alice", "phone", 1, "gw1"};
  s.Connect("alice", "phone", "gw1", 1);
  s.Frame(alice, FrameType::kSend, "\xc1");
  s.Send(alice, "bad id", 1, "x");
  s.Send(alice, "bob", 0, "x");
  s.Send(alice, "bob", 1, std::string(kMaxBodyBytes + 1, 'x'));
  s.Frame(alice, FrameType::kAck, "\x90");
  s.Frame(alice, FrameType::kRead, codec::Encode(codec::Read{"no such id!", 1}));
  auto& av = s.Client("gw1", 1);
  REQUIRE(av.errors.size() == 6);
  for (auto& e : av.errors) {
    CHECK(e.code == ErrorCode::kBadRequest);
    CHECK_FALSE(e.fatal);
  }
  CHECK(s.kv("s1").Count("inbox") == 0);
}

TEST_CASE("a shard refuses keys it does not own and stale epochs", "[nodes]") {
  Shards s;
  const std::string owner = s.Owner("zed");
  const std::string other = owner == "s1" ? "s2" : "s1";
  nodes::Effects fx;
  Envelope e;
  e.type = MeshType::kConnOpen;
  e.epoch = 1;
  e.key = "zed";
  e.stamp = Stamp{"zed", "d", 1, "gw1"};
  s.core(other).OnEnvelope("gw1", Envelope(e), fx);
  REQUIRE(fx.mesh.size() == 1);
  CHECK(fx.mesh[0].env.type == MeshType::kWrongOwner);
  fx.Clear();
  e.epoch = 2;
  s.core(owner).OnEnvelope("gw1", Envelope(e), fx);
  REQUIRE(fx.mesh.size() == 1);
  CHECK(fx.mesh[0].env.type == MeshType::kWrongOwner);
}

TEST_CASE("media references: a valid ticket is delivered and reported, a bad one refused",
          "[nodes][media]") {
  nodes::SessionConfig base;
  base.secret = "cluster-secret-for-tests";
  Shards s({"s1", "s2"}, base);
  std::vector<std::string> reported;  // media ids reported to the media node "m1"
  for (const char* id : {"s1", "s2"})
    s.core(id).SetMediaOwner([](std::string_view) -> const std::string& {
      static const std::string kM1 = "m1";
      return kM1;
    });
  s.drop = [&](const std::string&, const std::string& to, const Envelope& e) {
    if (to != "m1") return false;
    nodes::MediaRefRecord r;
    if (e.type == MeshType::kChanMsg && nodes::DecodeRecord(e.body, r)) reported.push_back(r.id);
    return true;  // no media node here: the channel keeps it for resending
  };
  auto [a, b] = SpreadPair(s);
  Stamp alice{a, "phone", 1, "gw1"};
  s.Connect(a, "phone", "gw1", 1);
  s.Connect(b, "phone", "gw2", 2);
  MediaRef ref{std::string(16, 'i'), 10, "image/png", std::string(32, 's'), ""};
  ref.ticket = MediaTicket(ref, base.secret);
  s.Frame(alice, FrameType::kSend, Encode(Send{b, 7, "pic", false, ref}));
  REQUIRE(s.Client("gw2", 2).pushes.size() == 1);
  CHECK(s.Client("gw2", 2).pushes[0].media == ref);
  CHECK(reported == std::vector<std::string>{ref.id});

  MediaRef forged = ref;
  forged.size = 11;  // the ticket no longer matches
  s.Frame(alice, FrameType::kSend, Encode(Send{b, 8, "pic", false, forged}));
  REQUIRE(s.Client("gw1", 1).errors.size() == 1);
  CHECK(s.Client("gw1", 1).errors[0].code == ErrorCode::kMediaIncomplete);
  CHECK(s.Client("gw1", 1).errors[0].cid == 8u);
  CHECK(s.Client("gw2", 2).pushes.size() == 1);
  CHECK(reported.size() == 1);
}

TEST_CASE(
    "pushes in flight are bounded in bytes too: a backlog of large messages comes in "
    "windows",
    "[nodes][inbox][overload]") {
  nodes::SessionConfig cfg;
  cfg.send_rate = 1000;
  cfg.send_burst = 1000;
  Shards s({"s1"}, cfg);
  Stamp alice{"alice", "phone", 1, "gw1"}, bob{"bob", "phone", 2, "gw2"};
  s.Connect("alice", "phone", "gw1", 1);
  for (uint64_t cid = 1; cid <= 40; ++cid) s.Send(alice, "bob", cid, std::string(60'000, 'x'));
  s.Connect("bob", "phone", "gw2", 2);
  auto& bv = s.Client("gw2", 2);
  // 1 MiB of 60 KB messages: 17 in flight, not the 40 the count window would allow.
  CHECK(bv.pushes.size() == 17);
  s.AckAll(bob);
  CHECK(bv.pushes.size() == 34);
  s.AckAll(bob);
  CHECK(bv.pushes.size() == 40);
  s.AckAll(bob);
  CHECK(bv.pushes.size() == 40);
}

TEST_CASE("a send's deliver and the sent it answers need no fsync of the sender's shard",
          "[nodes][inbox]") {
  // They are marked `now` (nodes/shard/effects.h): the durable service sends them at the end
  // of the turn. What the owner stores, and its answer, still wait for its batch.
  Shards s({"s1", "s2", "s3"});
  auto [a, b] = SpreadPair(s);
  s.Connect(a, "phone", "gw1", 1);
  const Stamp alice{a, "phone", 1, "gw1"};
  const std::string& mine = s.Owner(a);
  codec::Envelope e;
  e.type = codec::MeshType::kClientFrame;
  e.key = a;
  e.stamp = alice;
  e.ftype = static_cast<uint8_t>(codec::FrameType::kSend);
  e.body = codec::Encode(codec::Send{b, 7, "hi"});
  nodes::Effects fx;
  s.core(mine).OnEnvelope("gw1", std::move(e), fx);
  codec::Envelope deliver;
  bool found = false;
  for (auto& m : fx.mesh)
    if (m.env.type == codec::MeshType::kDeliver) {
      CHECK(m.now);
      deliver = m.env;
      found = true;
    }
  REQUIRE(found);
  // The owner's answer is not `now` (what it answers for waits for its fsync) ...
  const std::string owner = s.Owner(deliver.key);
  nodes::Effects ofx;
  s.core(owner).OnEnvelope(mine, std::move(deliver), ofx);
  codec::Envelope result;
  found = false;
  for (auto& m : ofx.mesh)
    if (m.env.type == codec::MeshType::kDeliverResult) {
      CHECK_FALSE(m.now);
      result = m.env;
      found = true;
    }
  REQUIRE(found);
  REQUIRE(s.core(owner).EndBatch(ofx).ok());
  // ... and the sender's shard passes it on at once.
  nodes::Effects sfx;
  s.core(mine).OnEnvelope(owner, std::move(result), sfx);
  REQUIRE(sfx.mesh.size() == 1);
  CHECK(sfx.mesh[0].env.type == codec::MeshType::kToClient);
  CHECK(sfx.mesh[0].env.ftype == static_cast<uint8_t>(codec::FrameType::kSent));
  CHECK(sfx.mesh[0].now);
  REQUIRE(s.core(mine).EndBatch(fx).ok());
  REQUIRE(s.core(mine).EndBatch(sfx).ok());
}
