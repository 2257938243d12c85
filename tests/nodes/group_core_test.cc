// GroupCore without sockets, on an in-memory store and a fake clock.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "codec/presence_messages.h"
#include "nodes/group/group_core.h"
#include "router/hash_ring.h"
#include "store/mem_kv_store.h"

using namespace meshchat;
using namespace meshchat::codec;
using namespace meshchat::nodes;

namespace {

struct Owner {
  FakeClock clock;
  store::MemKvStore kv;
  router::HashRing sessions{{"s1", "s2"}};
  const std::string self = "g1";
  std::unique_ptr<GroupCore> core;
  Effects fx;

  explicit Owner(size_t large = 256) {
    GroupConfig cfg;
    cfg.node_id = self;
    cfg.large_group = large;
    cfg.member_cap = 5;
    core = std::make_unique<GroupCore>(
        cfg, clock, kv,
        [this](std::string_view k) -> const std::string& { return sessions.Owner(k); },
        [this](std::string_view) -> const std::string& { return self; },
        [](const std::string&) { return true; });
    REQUIRE(core->Load().ok());
    REQUIRE(kv.Commit().ok());
  }
  // Sends an envelope and ends the batch, as the service would.
  void Post(MeshType type, const Stamp& who, const std::string& group, std::string body) {
    fx.Clear();
    Envelope e;
    e.type = type;
    e.epoch = 1;
    e.key = group;
    e.stamp = who;
    e.body = std::move(body);
    core->OnEnvelope("s1", std::move(e), fx);
    REQUIRE(core->EndBatch(fx).ok());
  }
  // A member's cursors arriving over the channel from a session shard, then a tick (trimming
  // runs on the tick).
  void Cursor(const std::string& group, const std::string& user, uint64_t delivered,
              uint64_t read) {
    Envelope e;
    e.type = MeshType::kChanMsg;
    e.req = ++chan_seq;
    e.arg = 77;
    e.epoch = 1;
    e.body = EncodeRecord(GroupCursor{group, user, delivered, read});
    fx.Clear();
    core->OnEnvelope("s1", std::move(e), fx);
    REQUIRE(core->EndBatch(fx).ok());
    fx.Clear();
    core->OnTick(fx);
    REQUIRE(core->EndBatch(fx).ok());
  }
  uint64_t chan_seq = 0;
  GroupResult Result() {
    for (auto& m : fx.mesh)
      if (m.env.type == MeshType::kToClient &&
          m.env.ftype == static_cast<uint8_t>(FrameType::kGroupResult)) {
        GroupResult r;
        REQUIRE(Decode(m.env.body, r) == DecodeStatus::kOk);
        return r;
      }
    FAIL("no group result");
    return {};
  }
  std::vector<InboxAppend> FanOut() {
    std::vector<InboxAppend> out;
    for (auto& m : fx.mesh)
      if (m.env.type == MeshType::kChanMsg) {
        InboxAppend a;
        REQUIRE(DecodeRecord(m.env.body, a));
        out.push_back(a);
      }
    return out;
  }
};

const Stamp kAlice{"alice", "phone", 1, "gw1"};

GroupRequest Req(const std::string& op, std::vector<std::string> users = {}) {
  return GroupRequest{op, 1, "crew", std::move(users), "", 0, 0};
}

}  // namespace

TEST_CASE("fan-out is one channel entry per session shard, listing its members",
          "[nodes][groups]") {
  Owner o;
  o.Post(MeshType::kGroupOp, kAlice, "crew", Encode(Req("create", {"bob", "carol", "dave"})));
  REQUIRE(o.Result().ok);
  o.Post(MeshType::kGroupSend, kAlice, "crew", Encode(GroupSend{"crew", 7, "hi"}));
  auto entries = o.FanOut();
  std::set<std::string> shards;
  size_t users = 0;
  for (auto& m : o.fx.mesh)
    if (m.env.type == MeshType::kChanMsg) shards.insert(m.node);
  for (auto& a : entries) {
    users += a.users.size();
    CHECK(a.entry.group == "crew");
    CHECK(a.entry.seq == 2);  // after the creation notice
    CHECK(a.entry.body == "hi");
  }
  CHECK(users == 4);
  CHECK(entries.size() == shards.size());  // not one per member
}

TEST_CASE("non-members, non-admins, duplicates and the member cap", "[nodes][groups]") {
  Owner o;
  o.Post(MeshType::kGroupOp, kAlice, "crew", Encode(Req("create", {"bob"})));
  const Stamp bob{"bob", "pc", 2, "gw2"}, eve{"eve", "pc", 3, "gw2"};
  o.Post(MeshType::kGroupOp, eve, "crew", Encode(Req("info")));
  CHECK(o.Result().code == ErrorCode::kNotMember);
  o.Post(MeshType::kGroupOp, eve, "nope", Encode(GroupRequest{"info", 1, "nope", {}, "", 0, 0}));
  CHECK(o.Result().code == ErrorCode::kNotMember);  // same answer: existence not revealed
  o.Post(MeshType::kGroupOp, bob, "crew", Encode(Req("add", {"eve"})));
  CHECK(o.Result().code == ErrorCode::kNotAdmin);
  o.Post(MeshType::kGroupOp, kAlice, "crew", Encode(Req("add", {"c", "d", "e", "f"})));
  CHECK(o.Result().code == ErrorCode::kGroupFull);  // cap 5
  o.Post(MeshType::kGroupSend, eve, "crew", Encode(GroupSend{"crew", 1, "x"}));
  CHECK(o.FanOut().empty());
  o.Post(MeshType::kGroupSend, kAlice, "crew", Encode(GroupSend{"crew", 9, "once"}));
  CHECK(o.FanOut().size() >= 1);
  o.Post(MeshType::kGroupSend, kAlice, "crew", Encode(GroupSend{"crew", 9, "once"}));
  CHECK(o.FanOut().empty());  // a retry: acked again, not sent again
}

TEST_CASE("large groups get hints, and pull serves the log from the join point",
          "[nodes][groups]") {
  Owner o(/*large=*/2);
  o.Post(MeshType::kGroupOp, kAlice, "crew", Encode(Req("create", {"bob", "carol"})));
  o.Post(MeshType::kGroupSend, kAlice, "crew", Encode(GroupSend{"crew", 1, "m1"}));
  CHECK(o.FanOut().empty());
  size_t hints = 0;
  for (auto& m : o.fx.mesh) hints += m.env.type == MeshType::kGroupHint;
  CHECK(hints == 3);
  o.Post(MeshType::kGroupOp, kAlice, "crew", Encode(Req("add", {"dave"})));
  o.Post(MeshType::kGroupSend, kAlice, "crew", Encode(GroupSend{"crew", 2, "m2"}));
  const Stamp dave{"dave", "d", 4, "gw1"};
  o.Post(MeshType::kGroupOp, dave, "crew", Encode(Req("pull")));
  auto r = o.Result();
  REQUIRE(r.ok);
  std::vector<std::string> bodies;
  for (auto& p : r.messages) bodies.push_back(p.body);
  CHECK(bodies == std::vector<std::string>{"alice added dave", "m2"});  // not m1: before he joined
}

TEST_CASE("receipt cursors only move forward - read implies delivered", "[nodes][groups]") {
  Owner o;
  o.Post(MeshType::kGroupOp, kAlice, "crew", Encode(Req("create", {"bob", "carol"})));
  o.Cursor("crew", "bob", 5, 0);
  o.Cursor("crew", "bob", 3, 0);    // older: ignored
  o.Cursor("crew", "carol", 0, 4);  // read 4 implies delivered 4
  auto req = Req("receipts");
  req.seq = 4;
  o.Post(MeshType::kGroupOp, kAlice, "crew", Encode(req));
  auto r = o.Result();
  CHECK(r.total == 2);
  CHECK(r.delivered == 2);
  CHECK(r.read == 1);
}

TEST_CASE("group retention: admins set the mode, history from the join point, timers",
          "[nodes][groups][retention]") {
  Owner o;
  const Stamp bob{"bob", "pc", 2, "gw2"}, carol{"carol", "pc", 3, "gw2"};
  o.Post(MeshType::kGroupOp, kAlice, "crew", Encode(Req("create", {"bob"})));
  auto history = [&](const Stamp& who, uint64_t before, uint64_t limit) {
    GroupRequest r = Req("history");
    r.seq = before;
    r.limit = limit;
    o.Post(MeshType::kGroupOp, who, "crew", Encode(r));
    return o.Result();
  };
  o.Post(MeshType::kGroupSend, kAlice, "crew", Encode(GroupSend{"crew", 1, "not kept"}));
  CHECK(history(kAlice, 0, 10).messages.empty());  // temporary by default
  CHECK(history(kAlice, 0, 10).mode == "temporary");

  GroupRequest mode = Req("mode");
  mode.mode = "permanent";
  o.Post(MeshType::kGroupOp, bob, "crew", Encode(mode));
  CHECK(o.Result().code == ErrorCode::kNotAdmin);
  mode.mode = "forever";
  o.Post(MeshType::kGroupOp, kAlice, "crew", Encode(mode));
  CHECK(o.Result().code == ErrorCode::kBadRequest);
  mode.mode = "permanent";
  o.Post(MeshType::kGroupOp, kAlice, "crew", Encode(mode));
  REQUIRE(o.Result().ok);
  auto announce = o.FanOut();
  REQUIRE(!announce.empty());
  CHECK(announce[0].entry.system);
  CHECK(announce[0].entry.body == "alice made this group permanent; disappearing messages off");

  for (int i = 1; i <= 5; ++i)
    o.Post(MeshType::kGroupSend, kAlice, "crew",
           Encode(GroupSend{"crew", 10 + static_cast<uint64_t>(i), "m" + std::to_string(i)}));
  o.Post(MeshType::kGroupOp, kAlice, "crew", Encode(Req("add", {"carol"})));
  o.Post(MeshType::kGroupSend, bob, "crew", Encode(GroupSend{"crew", 20, "m6"}));

  auto page = history(bob, 0, 3);
  REQUIRE(page.messages.size() == 3);
  CHECK(page.messages.back().body == "m6");
  CHECK(page.more);
  auto all = history(bob, 0, 100);
  CHECK(all.messages.size() == 8);  // announcement, m1..m5, "added carol", m6
  CHECK(all.messages.front().system);
  auto carols = history(carol, 0, 100);  // from her join point: "added carol", m6
  REQUIRE(carols.messages.size() == 2);
  CHECK(carols.messages[0].system);
  CHECK(carols.messages[1].body == "m6");
  CHECK_FALSE(carols.more);

  mode.timer = 60;
  o.Post(MeshType::kGroupOp, kAlice, "crew", Encode(mode));
  o.Post(MeshType::kGroupSend, kAlice, "crew", Encode(GroupSend{"crew", 30, "vanishes"}));
  auto sent = o.FanOut();
  REQUIRE(!sent.empty());
  CHECK(sent[0].entry.vanish_ms == sent[0].entry.ts + 60'000);
  CHECK(history(bob, 0, 100).messages.back().body == "vanishes");
  o.clock.Advance(60'001);
  o.fx.Clear();
  o.core->OnTick(o.fx);
  REQUIRE(o.core->EndBatch(o.fx).ok());
  auto after = history(bob, 0, 100);
  CHECK(after.messages.back().body != "vanishes");
  CHECK(after.timer == 60);
  GroupRequest pull = Req("pull");
  o.Post(MeshType::kGroupOp, bob, "crew", Encode(pull));
  for (const auto& m : o.Result().messages) CHECK(m.body != "vanishes");  // gone from the log too
}

TEST_CASE("the group log keeps entries for the retention only", "[nodes][groups][retention]") {
  Owner o;
  o.Post(MeshType::kGroupOp, kAlice, "crew", Encode(Req("create", {"bob"})));
  for (uint64_t i = 1; i <= 3; ++i)
    o.Post(MeshType::kGroupSend, kAlice, "crew", Encode(GroupSend{"crew", i, "old"}));
  o.clock.Advance(20LL * 24 * 3600 * 1000);
  o.Post(MeshType::kGroupSend, kAlice, "crew", Encode(GroupSend{"crew", 9, "newer"}));
  auto pull = [&] {
    o.Post(MeshType::kGroupOp, kAlice, "crew", Encode(Req("pull")));
    return o.Result().messages.size();
  };
  CHECK(pull() == 5);
  o.clock.Advance(11LL * 24 * 3600 * 1000);  // the first four are past 30 days (and a bucket)
  o.fx.Clear();
  o.core->OnTick(o.fx);
  REQUIRE(o.core->EndBatch(o.fx).ok());
  CHECK(pull() == 1);
  o.clock.Advance(20LL * 24 * 3600 * 1000);
  o.fx.Clear();
  o.core->OnTick(o.fx);
  REQUIRE(o.core->EndBatch(o.fx).ok());
  CHECK(pull() == 0);
  CHECK(o.kv.UsedBytes().ok());
}

TEST_CASE("a temporary group's log drops what every member has received",
          "[nodes][groups][retention]") {
  Owner o;
  o.Post(MeshType::kGroupOp, kAlice, "crew", Encode(Req("create", {"bob"})));
  for (uint64_t i = 1; i <= 4; ++i)
    o.Post(MeshType::kGroupSend, kAlice, "crew", Encode(GroupSend{"crew", i, "m"}));
  auto cursor = [&](const std::string& user, uint64_t delivered) {
    o.Cursor("crew", user, delivered, 0);
  };
  auto pulled = [&] {
    o.Post(MeshType::kGroupOp, kAlice, "crew", Encode(Req("pull")));
    return o.Result().messages.size();
  };
  CHECK(pulled() == 5);
  cursor("alice", 5);
  CHECK(pulled() == 5);  // bob has not received them yet
  cursor("bob", 3);
  CHECK(pulled() == 2);  // 1..3 reached everyone
  cursor("bob", 5);
  CHECK(pulled() == 0);
}

TEST_CASE("a sender's own messages count as delivered to and read by it, for receipts and trimming",
          "[nodes][groups][retention]") {
  Owner o;
  const Stamp bob{"bob", "phone", 2, "gw1"};
  o.Post(MeshType::kGroupOp, kAlice, "crew", Encode(Req("create", {"bob"})));  // seq 1
  auto cursor = [&](const std::string& user, uint64_t delivered, uint64_t read) {
    o.Cursor("crew", user, delivered, read);
  };
  auto send = [&](const Stamp& who, uint64_t cid) {
    o.Post(MeshType::kGroupSend, who, "crew", Encode(GroupSend{"crew", cid, "m"}));
  };
  // Cursors of [delivered, read] for each member, as `receipts` reports them, asked by `who`.
  auto rows = [&](const Stamp& who, uint64_t seq) {
    auto req = Req("receipts");
    req.seq = seq;
    o.Post(MeshType::kGroupOp, who, "crew", Encode(req));
    auto r = o.Result();
    std::map<std::string, std::pair<uint64_t, uint64_t>> out;
    for (const auto& m : r.members) out[m.user] = {m.delivered, m.read};
    return std::make_pair(out, r);
  };
  auto pulled = [&] {
    o.Post(MeshType::kGroupOp, kAlice, "crew", Encode(Req("pull")));
    return o.Result().messages.size();
  };
  cursor("alice", 1, 1);
  cursor("bob", 1, 1);
  send(kAlice, 1);  // seq 2
  send(kAlice, 2);  // seq 3
  CHECK(rows(bob, 3).first["alice"] == std::make_pair<uint64_t, uint64_t>(3, 3));
  send(bob, 1);     // seq 4: not yet delivered to alice
  send(kAlice, 3);  // seq 5
  CHECK(rows(bob, 5).first["alice"] == std::make_pair<uint64_t, uint64_t>(3, 3));
  cursor("alice", 4, 0);  // alice has bob's message, so everything up to her own 5
  CHECK(rows(bob, 5).first["alice"] == std::make_pair<uint64_t, uint64_t>(5, 3));
  cursor("alice", 4, 4);  // and has read it
  auto [cur, r] = rows(bob, 5);
  CHECK(cur["alice"] == std::make_pair<uint64_t, uint64_t>(5, 5));
  CHECK(r.total == 1);  // bob asks about alice's message: alice is the one other member
  CHECK(r.delivered == 1);
  CHECK(r.read == 1);
  // Temporary group: once bob has everything, nothing waits for alice's own messages.
  CHECK(pulled() > 0);
  cursor("bob", 5, 0);
  CHECK(pulled() == 0);
}

TEST_CASE("group history pages forwards too", "[nodes][groups][retention]") {
  Owner o;
  o.Post(MeshType::kGroupOp, kAlice, "crew", Encode(Req("create", {"bob"})));
  GroupRequest mode = Req("mode");
  mode.mode = "permanent";
  o.Post(MeshType::kGroupOp, kAlice, "crew", Encode(mode));
  for (uint64_t i = 1; i <= 5; ++i)
    o.Post(MeshType::kGroupSend, kAlice, "crew",
           Encode(GroupSend{"crew", i, "m" + std::to_string(i)}));
  GroupRequest h = Req("history");
  h.after = 3;  // the mode notice is 2, m1 is 3
  h.limit = 2;
  o.Post(MeshType::kGroupOp, kAlice, "crew", Encode(h));
  auto page = o.Result();
  REQUIRE(page.messages.size() == 2);
  CHECK(page.messages[0].body == "m2");
  CHECK(page.messages[1].body == "m3");
  CHECK(page.more);
  h.after = 5;
  h.limit = 10;
  o.Post(MeshType::kGroupOp, kAlice, "crew", Encode(h));
  page = o.Result();
  REQUIRE(page.messages.size() == 2);
  CHECK(page.messages[1].body == "m5");
  CHECK_FALSE(page.more);
}

namespace {
const MediaRef kGroupPic{std::string(16, 'i'), 5, "image/png", std::string(32, 's'),
                         std::string(32, 't')};

// Sends kGroupPic in a group with the given mode; returns what reached media node "m1".
std::vector<MediaRefRecord> SendPicture(Owner& o, const std::string& mode, uint64_t timer) {
  o.core->SetMediaOwner([](std::string_view) -> const std::string& {
    static const std::string kM1 = "m1";
    return kM1;
  });
  o.Post(MeshType::kGroupOp, kAlice, "crew", Encode(Req("create", {"bob"})));
  GroupRequest m = Req("mode");
  m.mode = mode;
  m.timer = timer;
  o.Post(MeshType::kGroupOp, kAlice, "crew", Encode(m));
  o.Post(MeshType::kGroupSend, kAlice, "crew", Encode(GroupSend{"crew", 5, "pic", kGroupPic}));
  std::vector<MediaRefRecord> refs;
  for (auto& e : o.fx.mesh) {
    MediaRefRecord r;
    if (e.node == "m1" && e.env.type == MeshType::kChanMsg && DecodeRecord(e.env.body, r))
      refs.push_back(r);
  }
  return refs;
}
}  // namespace

TEST_CASE("group media references reach the media node with the vanish time",
          "[nodes][groups][media]") {
  Owner o;
  auto refs = SendPicture(o, "temporary", 60);
  REQUIRE(refs.size() == 1);
  CHECK(refs[0].id == kGroupPic.id);
  CHECK(refs[0].chat == "crew");
  CHECK(refs[0].until_ms == static_cast<uint64_t>(o.clock.WallMs()) + 60'000);
}

TEST_CASE("group media in a permanent group is kept for good", "[nodes][groups][media]") {
  Owner o;
  auto refs = SendPicture(o, "permanent", 0);
  bool kept = false;
  for (const auto& r : refs) kept = r.until_ms == MediaRefRecord::kKeptForever;
  CHECK(kept);
}

TEST_CASE("a group sending faster than its fan-out limit is refused before storing",
          "[nodes][groups][overload]") {
  // 5 members; 10 deliveries a second, bursts of 10: two messages at once, then one per 0.5 s.
  FakeClock clock;
  store::MemKvStore kv;
  router::HashRing sessions{{"s1"}};
  const std::string self = "g1";
  GroupConfig cfg;
  cfg.node_id = self;
  cfg.fanout_rate = 10;
  cfg.fanout_burst = 10;
  GroupCore core(
      cfg, clock, kv, [&](std::string_view k) -> const std::string& { return sessions.Owner(k); },
      [&](std::string_view) -> const std::string& { return self; },
      [](const std::string&) { return true; });
  REQUIRE(core.Load().ok());
  REQUIRE(kv.Commit().ok());
  Effects fx;
  auto post = [&](MeshType type, std::string body) {
    fx.Clear();
    Envelope e;
    e.type = type;
    e.epoch = 1;
    e.key = "crew";
    e.stamp = kAlice;
    e.body = std::move(body);
    core.OnEnvelope("s1", std::move(e), fx);
    REQUIRE(core.EndBatch(fx).ok());
  };
  auto frames = [&](FrameType t) {
    std::vector<std::string> out;
    for (auto& m : fx.mesh)
      if (m.env.type == MeshType::kToClient && m.env.ftype == static_cast<uint8_t>(t))
        out.push_back(m.env.body);
    return out;
  };
  post(MeshType::kGroupOp, Encode(Req("create", {"bob", "carol", "dave", "erin"})));
  for (uint64_t cid = 1; cid <= 2; ++cid) {
    post(MeshType::kGroupSend, Encode(GroupSend{"crew", cid, "hi"}));
    CHECK(frames(FrameType::kSent).size() == 1);
  }
  post(MeshType::kGroupSend, Encode(GroupSend{"crew", 3, "too soon"}));
  REQUIRE(frames(FrameType::kError).size() == 1);
  codec::Error err;
  REQUIRE(Decode(frames(FrameType::kError)[0], err) == DecodeStatus::kOk);
  CHECK(err.code == ErrorCode::kRateLimited);
  CHECK(err.cid == 3u);
  CHECK(err.retry_after == 501);
  CHECK(kv.Count("glog") == 3);  // the create's system message and two messages: not the third
  post(MeshType::kGroupSend, Encode(GroupSend{"crew", 2, "hi"}));  // a retry: answered anyway
  CHECK(frames(FrameType::kSent).size() == 1);
  clock.Advance(501);
  post(MeshType::kGroupSend, Encode(GroupSend{"crew", 3, "now"}));
  CHECK(frames(FrameType::kSent).size() == 1);
}

TEST_CASE("group owner under load: typing shed at level 1, heavy sender refused at level 3",
          "[nodes][groups][overload]") {
  Owner o;
  o.Post(MeshType::kGroupOp, kAlice, "crew", Encode(Req("create", {"bob", "carol"})));
  const Stamp bob{"bob", "pc", 2, "gw2"};
  o.core->SetLoad({nodes::LoadLevel::kShedHints, false});
  o.Post(MeshType::kTyping, kAlice, "crew", Encode(Typing{"crew", true, true}));
  CHECK(o.fx.mesh.empty());
  CHECK(o.core->shed().typing == 1);

  o.core->SetLoad({nodes::LoadLevel::kRefuseHeavy, false});
  uint64_t cid = 1;
  for (int i = 0; i < 20; ++i) {
    o.Post(MeshType::kGroupSend, kAlice, "crew", Encode(GroupSend{"crew", cid++, "a"}));
    CHECK(o.FanOut().size() >= 1);  // the first window has no heavy senders yet
  }
  o.Post(MeshType::kGroupSend, bob, "crew", Encode(GroupSend{"crew", 1, "b"}));
  o.clock.Advance(1000);
  o.Post(MeshType::kGroupSend, kAlice, "crew", Encode(GroupSend{"crew", cid, "a"}));
  CHECK(o.FanOut().empty());
  bool refused = false;
  for (auto& m : o.fx.mesh)
    if (m.env.ftype == static_cast<uint8_t>(FrameType::kError)) {
      Error e;
      REQUIRE(Decode(m.env.body, e) == DecodeStatus::kOk);
      refused = e.code == ErrorCode::kRateLimited && e.cid == cid && e.retry_after == 1000;
    }
  CHECK(refused);
  o.Post(MeshType::kGroupSend, bob, "crew", Encode(GroupSend{"crew", 2, "b"}));
  CHECK(o.FanOut().size() >= 1);  // the light sender is not refused
  o.Post(MeshType::kGroupSend, kAlice, "crew", Encode(GroupSend{"crew", 3, "a"}));
  CHECK(o.FanOut().empty());  // a retry of a stored message is still answered, not re-sent
  CHECK(o.core->shed().sends_refused == 1);
}
