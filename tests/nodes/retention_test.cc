// Temporary and permanent one-to-one chats, disappearing timers and history paging, on session
// shards wired by hand (no sockets) with a fake clock: expiry is tested without sleeping.
#include <catch2/catch.hpp>

#include "codec/history_messages.h"
#include "tests/nodes/shard_harness.h"
#include "tests/temp_dir.h"

using namespace meshchat;
using namespace meshchat::codec;
using namespace meshchat::test;

namespace {

struct Chat {
  Shards s{{"s1", "s2", "s3"}};
  std::string a = "alice", b = "bob";
  Stamp alice{"alice", "phone", 1, "gw1"}, bob{"bob", "phone", 2, "gw2"};
  uint64_t cid = 100;
  uint64_t rid = 1;

  Chat() {
    s.Connect(a, "phone", "gw1", 1);
    s.Connect(b, "phone", "gw2", 2);
  }
  void Mode(const Stamp& who, const std::string& peer, const std::string& mode, uint64_t timer) {
    s.Frame(who, FrameType::kChatMode, Encode(ChatMode{peer, ++cid, mode, timer}));
  }
  HistoryPage Page(const Stamp& who, const std::string& peer, uint64_t before,
                   std::optional<uint64_t> after, uint64_t limit) {
    auto& pages = s.Client(who.gateway, who.conn).pages;
    const size_t had = pages.size();
    s.Frame(who, FrameType::kHistory, Encode(History{++rid, peer, before, after, limit}));
    REQUIRE(pages.size() == had + 1);
    CHECK(pages.back().rid == rid);
    return pages.back();
  }
  // Entries waiting in `user`'s inbox on its shard.
  size_t Waiting(const std::string& user) {
    const std::string prefix = user + '\0';
    size_t n = 0;
    REQUIRE(s.store(s.Owner(user))
                .Scan("inbox", prefix,
                      [&](std::string_view k, std::string_view) {
                        if (k.substr(0, prefix.size()) != prefix) return false;
                        ++n;
                        return true;
                      })
                .ok());
    return n;
  }
  static std::vector<std::string> Bodies(const HistoryPage& p) {
    std::vector<std::string> out;
    for (const auto& m : p.messages) out.push_back(m.body);
    return out;
  }
};

}  // namespace

TEST_CASE("a chat is temporary by default: the server keeps no history", "[nodes][retention]") {
  Chat c;
  c.s.Send(c.alice, c.b, 1, "hi");
  c.s.AckAll(c.bob);
  auto page = c.Page(c.alice, c.b, 0, {}, 10);
  CHECK(page.mode == "temporary");
  CHECK(page.messages.empty());
  CHECK_FALSE(page.more);
}

TEST_CASE("permanent chat: announced, logged from then on, paged in order both ways",
          "[nodes][retention]") {
  Chat c;
  c.s.Send(c.alice, c.b, 1, "before");  // temporary: not kept
  c.Mode(c.bob, c.a, "permanent", 0);
  auto& alice_view = c.s.Client("gw1", 1);
  REQUIRE(!alice_view.pushes.empty());
  const Push& announce = alice_view.pushes.back();
  CHECK(announce.system);
  CHECK(announce.body == "bob made this chat permanent; disappearing messages off");
  CHECK(c.s.Client("gw2", 2).sent.back().seq == 2);  // the change has its place in the chat
  for (int i = 1; i <= 25; ++i)
    c.s.Send(i % 2 ? c.alice : c.bob, i % 2 ? c.b : c.a, 10 + i, "m" + std::to_string(i));
  c.s.AckAll(c.alice);
  c.s.AckAll(c.bob);

  auto latest = c.Page(c.bob, c.a, 0, {}, 10);
  CHECK(latest.mode == "permanent");
  REQUIRE(latest.messages.size() == 10);
  CHECK(latest.messages.front().body == "m16");
  CHECK(latest.messages.back().body == "m25");
  CHECK(latest.more);
  CHECK(latest.messages.front().chat == c.a);
  auto older = c.Page(c.bob, c.a, latest.messages.front().seq, {}, 10);
  CHECK(older.messages.front().body == "m6");
  auto oldest = c.Page(c.bob, c.a, older.messages.front().seq, {}, 10);
  REQUIRE(oldest.messages.size() == 6);  // the announcement and m1..m5; "before" was not kept
  CHECK(oldest.messages.front().system);
  CHECK(oldest.messages.back().body == "m5");
  CHECK_FALSE(oldest.more);
  auto forward = c.Page(c.alice, c.b, 0, oldest.messages.back().seq, 3);
  CHECK(Chat::Bodies(forward) == std::vector<std::string>{"m6", "m7", "m8"});
  CHECK(forward.more);
  // Page size is capped.
  CHECK(c.Page(c.alice, c.b, 0, {}, 100000).messages.size() == 26);
  // No limit (0) means the largest page, not one message.
  auto all = c.Page(c.alice, c.b, 0, {}, 0);
  CHECK(all.messages.size() == 26);
  CHECK_FALSE(all.more);
  // `after: 0` asks for the oldest page, forwards.
  auto first = c.Page(c.alice, c.b, 0, 0, 2);
  REQUIRE(first.messages.size() == 2);
  CHECK(first.messages.front().system);
  CHECK(first.messages.back().body == "m1");
  CHECK(first.more);
}

TEST_CASE("a new device resyncs: pending messages, then history it asks for",
          "[nodes][retention]") {
  Chat c;
  c.Mode(c.alice, c.b, "permanent", 0);
  for (int i = 1; i <= 5; ++i) c.s.Send(c.alice, c.b, 10 + i, "m" + std::to_string(i));
  c.s.AckAll(c.bob);  // bob's phone has everything
  c.s.Send(c.alice, c.b, 20, "while the tablet was new");
  c.s.Connect(c.b, "tablet", "gw1", 9);
  Stamp tablet{c.b, "tablet", 9, "gw1"};
  auto page = c.Page(tablet, c.a, 0, {}, 50);
  REQUIRE(page.messages.size() == 7);
  CHECK(page.messages.back().body == "while the tablet was new");
  CHECK(page.messages[1].body == "m1");
}

TEST_CASE("mode change mid-chat applies from that point", "[nodes][retention]") {
  Chat c;
  c.Mode(c.alice, c.b, "permanent", 0);
  c.s.Send(c.alice, c.b, 1, "kept");
  c.Mode(c.bob, c.a, "temporary", 0);
  c.s.Send(c.alice, c.b, 2, "not kept");
  auto page = c.Page(c.alice, c.b, 0, {}, 10);
  CHECK(page.mode == "temporary");
  // What was kept stays; the switch to temporary applies to itself and everything after.
  CHECK(Chat::Bodies(page) ==
        std::vector<std::string>{"alice made this chat permanent; disappearing messages off",
                                 "kept"});
}

TEST_CASE("disappearing messages: gone from history and inboxes at the timer, clients told",
          "[nodes][retention]") {
  Chat c;
  c.Mode(c.alice, c.b, "permanent", 3600);
  c.s.Send(c.alice, c.b, 1, "vanishes");
  auto& bob_view = c.s.Client("gw2", 2);
  REQUIRE(!bob_view.pushes.empty());
  const Push vanishing = bob_view.pushes.back();
  CHECK(vanishing.body == "vanishes");
  CHECK(vanishing.exp == vanishing.ts + 3'600'000);  // the client deletes it then
  c.Mode(c.alice, c.b, "permanent", 0);
  c.s.Send(c.alice, c.b, 2, "stays");
  c.s.Disconnect(c.b, "phone", "gw2", 2);  // bob never acknowledges
  CHECK(c.Page(c.alice, c.b, 0, {}, 10).messages.size() == 4);

  c.s.clock.Advance(3'600'000 - 1000);
  c.s.Tick();
  CHECK(c.Page(c.alice, c.b, 0, {}, 10).messages.size() == 4);
  c.s.clock.Advance(2'000 + 3'600'000 / 32);  // past the timer and its collection bucket
  c.s.Tick();
  auto page = c.Page(c.alice, c.b, 0, {}, 10);
  for (const auto& m : page.messages) CHECK(m.body != "vanishes");
  CHECK(page.messages.size() == 3);
  // bob's inbox no longer holds it: reconnecting, he gets only what remains.
  c.s.Connect(c.b, "phone", "gw2", 2);
  bool got_vanished = false;
  for (const auto& p : c.s.Client("gw2", 2).pushes)
    if (p.n > vanishing.n && p.body == "vanishes") got_vanished = true;
  CHECK_FALSE(got_vanished);
  // The sender is not told "expired": it vanished as meant to.
  for (const auto& r : c.s.Client("gw1", 1).receipts) CHECK(r.kind != ReceiptKind::kExpired);
}

TEST_CASE("chat_mode input is checked", "[nodes][retention]") {
  Chat c;
  c.Mode(c.alice, c.b, "forever", 0);
  c.Mode(c.alice, c.b, "permanent", kMaxTimerS + 1);
  c.Mode(c.alice, "bad id", "permanent", 0);
  auto& errors = c.s.Client("gw1", 1).errors;
  REQUIRE(errors.size() == 3);
  for (const auto& e : errors) CHECK(e.code == ErrorCode::kBadRequest);
  c.s.Frame(c.alice, FrameType::kHistory, "\xc1");
  CHECK(errors.size() == 4);
}

TEST_CASE("storage stays bounded: expired messages free their LMDB pages for reuse",
          "[nodes][retention][store]") {
  TempDir dir;
  nodes::SessionConfig cfg;
  cfg.send_rate = 1e9;  // this test is about storage, not rate limits
  cfg.send_burst = 1e9;
  Shards s({"s1", "s2"}, cfg, dir.path());
  Stamp alice{"alice", "phone", 1, "gw1"};
  s.Connect("alice", "phone", "gw1", 1);  // bob stays offline: everything waits for him
  s.Frame(alice, FrameType::kChatMode, Encode(ChatMode{"bob", 1, "permanent", 60}));
  const std::string body(2000, 'x');
  uint64_t cid = 10;
  std::vector<size_t> used;  // bytes in use after each round
  for (int round = 0; round < 6; ++round) {
    for (int i = 0; i < 400; ++i) s.Send(alice, "bob", ++cid, body);
    s.clock.Advance(62'000);  // every message of the round is past its 60 s timer
    for (int t = 0; t < 5; ++t) s.Tick();
    size_t total = 0;
    for (const char* id : {"s1", "s2"}) {
      auto u = s.store(id).UsedBytes();
      REQUIRE(u.ok());
      total += *u;
    }
    used.push_back(total);
  }
  INFO("bytes in use after each round: " << used[0] << " " << used[1] << " ... " << used[5]);
  // UsedBytes is LMDB's high-water mark (pages ever used). The first round sizes the trees;
  // later rounds reuse the pages freed by expiry: each wrote 400 x 2 KB messages into a log
  // and an inbox (1.6 MB), yet the mark moves by a few percent of that, which is the dedup
  // records (kept for the 30-day retention, ~60 bytes per message).
  const size_t written = 4 * 400 * 2000 * 2;
  CHECK(used[5] - used[1] < written / 10);
}

TEST_CASE("temporary chat: deleted once every device of the recipient has it, not before",
          "[nodes][retention]") {
  Chat c;
  c.s.Connect(c.b, "tablet", "gw1", 7);
  Stamp tablet{c.b, "tablet", 7, "gw1"};
  c.s.Send(c.alice, c.b, 1, "to both devices");
  REQUIRE(c.Waiting(c.b) == 1);
  c.s.AckAll(c.bob);  // the phone has it; the tablet does not yet
  CHECK(c.Waiting(c.b) == 1);
  c.s.AckAll(tablet);
  CHECK(c.Waiting(c.b) == 0);
}

TEST_CASE("temporary chat with a timer: undelivered messages vanish at the timer",
          "[nodes][retention]") {
  Chat c;
  c.Mode(c.alice, c.b, "temporary", 60);
  c.s.AckAll(c.bob);
  c.s.Disconnect(c.b, "phone", "gw2", 2);
  c.s.Send(c.alice, c.b, 1, "vanishes undelivered");
  REQUIRE(c.Waiting(c.b) == 1);
  c.s.clock.Advance(60'000 + 2'000);
  c.s.Tick();
  CHECK(c.Waiting(c.b) == 0);
  CHECK(c.Page(c.alice, c.b, 0, {}, 10).messages.empty());  // temporary: nothing kept anyway
  for (const auto& r : c.s.Client("gw1", 1).receipts) CHECK(r.kind != ReceiptKind::kExpired);
}
