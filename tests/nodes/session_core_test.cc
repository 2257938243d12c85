// SessionCore without sockets: two shards wired by hand, on a fake clock.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "codec/client_messages.h"
#include "nodes/session_core.h"
#include "router/hash_ring.h"

using namespace meshchat;
using namespace meshchat::codec;
using namespace meshchat::nodes;

namespace {

struct Shards {
  FakeClock clock;
  router::HashRing ring{{"s1", "s2"}};
  std::set<std::string> up{"s1", "s2", "gw1", "gw2"};
  std::map<std::string, std::unique_ptr<SessionCore>> shard;
  std::vector<Effects::MeshSend> to_gateways;  // what reached gateways

  Shards() {
    for (const char* id : {"s1", "s2"}) {
      shard[id] = std::make_unique<SessionCore>(
          SessionConfig{id, 1, 5000}, clock,
          [this](std::string_view u) -> const std::string& { return ring.Owner(u); },
          [this](const std::string& n) { return up.count(n) > 0; });
    }
  }
  // Delivers `env` from `from` to `node`, then everything that causes, until quiet.
  void Deliver(const std::string& from, const std::string& node, Envelope env) {
    std::vector<std::tuple<std::string, std::string, Envelope>> q{{from, node, std::move(env)}};
    while (!q.empty()) {
      auto [src, dst, e] = std::move(q.front());
      q.erase(q.begin());
      if (!shard.count(dst)) {
        to_gateways.push_back({dst, std::move(e), 0});
        continue;
      }
      if (!up.count(dst)) continue;  // lost in transit
      Effects fx;
      e.epoch = e.epoch ? e.epoch : 1;
      shard[dst]->OnEnvelope(src, std::move(e), fx);
      for (auto& m : fx.mesh) q.emplace_back(dst, m.node, std::move(m.env));
    }
  }
  void Connect(const std::string& user, const std::string& device, uint64_t conn,
               const std::string& gw) {
    Envelope e;
    e.type = MeshType::kConnOpen;
    e.key = user;
    e.stamp = Stamp{user, device, conn, gw};
    Deliver(gw, ring.Owner(user), std::move(e));
  }
  void ClientFrame(const Stamp& from, FrameType t, std::string body) {
    Envelope e;
    e.type = MeshType::kClientFrame;
    e.key = from.user;
    e.stamp = from;
    e.ftype = static_cast<uint8_t>(t);
    e.body = std::move(body);
    Deliver(from.gateway, ring.Owner(from.user), std::move(e));
  }
  // Frames that reached gateways for `user`, by type.
  std::vector<std::pair<Stamp, FrameView>> FramesFor(const std::string& user, FrameType t) {
    std::vector<std::pair<Stamp, FrameView>> out;
    for (auto& m : to_gateways)
      if (m.env.type == MeshType::kToClient && m.env.stamp.user == user &&
          m.env.ftype == static_cast<uint8_t>(t))
        out.push_back({m.env.stamp, FrameView{m.env.ftype, m.env.body}});
    return out;
  }
};

// Users whose shards differ, so messages cross between shards.
std::pair<std::string, std::string> CrossShardPair(const router::HashRing& ring) {
  for (int i = 0;; ++i) {
    std::string a = "a" + std::to_string(i), b = "b" + std::to_string(i);
    if (ring.Owner(a) != ring.Owner(b)) return {a, b};
  }
}

}  // namespace

TEST_CASE("a message to an online user is pushed to every device, then acked sent",
          "[nodes]") {
  Shards s;
  auto [alice, bob] = CrossShardPair(s.ring);
  s.Connect(alice, "phone", 1, "gw1");
  s.Connect(bob, "phone", 2, "gw2");
  s.Connect(bob, "laptop", 3, "gw1");
  s.ClientFrame({alice, "phone", 1, "gw1"}, FrameType::kSend, Encode(Send{bob, 42, "hello"}));

  auto pushes = s.FramesFor(bob, FrameType::kPush);
  REQUIRE(pushes.size() == 2);
  Push p;
  REQUIRE(Decode(pushes[0].second.body, p) == DecodeStatus::kOk);
  CHECK(p.from == alice);
  CHECK(p.from_device == "phone");
  CHECK(p.cid == 42);
  CHECK(p.body == "hello");
  std::set<std::string> gws{pushes[0].first.gateway, pushes[1].first.gateway};
  CHECK(gws == std::set<std::string>{"gw1", "gw2"});

  auto sent = s.FramesFor(alice, FrameType::kSent);
  REQUIRE(sent.size() == 1);
  Sent ack;
  REQUIRE(Decode(sent[0].second.body, ack) == DecodeStatus::kOk);
  CHECK(ack.cid == 42);
  CHECK(ack.id == p.id);
  CHECK(sent[0].first == Stamp{alice, "phone", 1, "gw1"});
}

TEST_CASE("a message to an offline user is refused with its cid", "[nodes]") {
  Shards s;
  auto [alice, bob] = CrossShardPair(s.ring);
  s.Connect(alice, "phone", 1, "gw1");
  s.ClientFrame({alice, "phone", 1, "gw1"}, FrameType::kSend, Encode(Send{bob, 5, "x"}));
  auto errs = s.FramesFor(alice, FrameType::kError);
  REQUIRE(errs.size() == 1);
  Error e;
  REQUIRE(Decode(errs[0].second.body, e) == DecodeStatus::kOk);
  CHECK(e.code == ErrorCode::kRecipientUnavailable);
  CHECK(e.cid == std::optional<uint64_t>(5));
  CHECK(s.FramesFor(alice, FrameType::kSent).empty());
}

TEST_CASE("invalid sends get bad_request and go nowhere", "[nodes]") {
  Shards s;
  Stamp alice{"alice", "phone", 1, "gw1"};
  s.Connect("alice", "phone", 1, "gw1");
  s.ClientFrame(alice, FrameType::kSend, "\xc1");                          // not msgpack
  s.ClientFrame(alice, FrameType::kSend, Encode(Send{"bad id", 1, "x"}));  // invalid recipient
  s.ClientFrame(alice, FrameType::kSend, Encode(Send{"bob", 0, "x"}));     // cid 0
  s.ClientFrame(alice, FrameType::kSend,
                Encode(Send{"bob", 1, std::string(kMaxBodyBytes + 1, 'x')}));  // too big
  auto errs = s.FramesFor("alice", FrameType::kError);
  REQUIRE(errs.size() == 4);
  for (auto& [stamp, f] : errs) {
    Error e;
    REQUIRE(Decode(f.body, e) == DecodeStatus::kOk);
    CHECK(e.code == ErrorCode::kBadRequest);
    CHECK_FALSE(e.fatal);
  }
  CHECK(s.FramesFor("bob", FrameType::kPush).empty());
}

TEST_CASE("disconnect and gateway loss remove directory entries", "[nodes]") {
  Shards s;
  s.Connect("bob", "phone", 2, "gw2");
  s.Connect("bob", "laptop", 3, "gw1");
  auto& owner = *s.shard[s.ring.Owner("bob")];
  CHECK(owner.DevicesOf("bob").size() == 2);
  Envelope close;
  close.type = MeshType::kConnClose;
  close.key = "bob";
  close.stamp = Stamp{"bob", "laptop", 3, "gw1"};
  s.Deliver("gw1", s.ring.Owner("bob"), close);
  CHECK(owner.DevicesOf("bob") == std::vector<DeviceConn>{{"phone", "gw2", 2}});
  owner.ForgetGateway("gw2");
  CHECK(owner.DevicesOf("bob").empty());
  CHECK(owner.directory_size() == 0);
}

TEST_CASE("a recipient shard that never answers times the send out", "[nodes]") {
  Shards s;
  auto [alice, bob] = CrossShardPair(s.ring);
  s.Connect(alice, "phone", 1, "gw1");
  // The recipient's shard is believed up, but the deliver is lost in transit: we call the
  // sender's shard directly and drop what it emits.
  auto& alice_shard = *s.shard[s.ring.Owner(alice)];
  Effects fx;
  Envelope e;
  e.type = MeshType::kClientFrame;
  e.epoch = 1;
  e.key = alice;
  e.stamp = Stamp{alice, "phone", 1, "gw1"};
  e.ftype = static_cast<uint8_t>(FrameType::kSend);
  e.body = Encode(Send{bob, 9, "x"});
  alice_shard.OnEnvelope("gw1", std::move(e), fx);
  REQUIRE(fx.mesh.size() == 1);  // the deliver, which we drop
  fx.Clear();
  s.clock.Advance(4999);
  alice_shard.OnTick(fx);
  CHECK(fx.mesh.empty());
  s.clock.Advance(2);
  alice_shard.OnTick(fx);
  REQUIRE(fx.mesh.size() == 1);
  Error err;
  REQUIRE(Decode(fx.mesh[0].env.body, err) == DecodeStatus::kOk);
  CHECK(err.code == ErrorCode::kServiceUnavailable);
  CHECK(err.cid == std::optional<uint64_t>(9));
}

TEST_CASE("a shard refuses keys it does not own and stale epochs", "[nodes]") {
  Shards s;
  const std::string user = "zed";
  const std::string owner = s.ring.Owner(user);
  const std::string other = owner == "s1" ? "s2" : "s1";
  Effects fx;
  Envelope e;
  e.type = MeshType::kConnOpen;
  e.epoch = 1;
  e.key = user;
  e.stamp = Stamp{user, "d", 1, "gw1"};
  s.shard[other]->OnEnvelope("gw1", Envelope(e), fx);
  REQUIRE(fx.mesh.size() == 1);
  CHECK(fx.mesh[0].env.type == MeshType::kWrongOwner);
  CHECK(s.shard[other]->directory_size() == 0);
  fx.Clear();
  e.epoch = 2;
  s.shard[owner]->OnEnvelope("gw1", Envelope(e), fx);
  REQUIRE(fx.mesh.size() == 1);
  CHECK(fx.mesh[0].env.type == MeshType::kWrongOwner);
}

TEST_CASE("server message ids increase strictly", "[nodes]") {
  Shards s;
  auto [alice, bob] = CrossShardPair(s.ring);
  s.Connect(alice, "phone", 1, "gw1");
  s.Connect(bob, "phone", 2, "gw2");
  for (uint64_t cid = 1; cid <= 50; ++cid)
    s.ClientFrame({alice, "phone", 1, "gw1"}, FrameType::kSend, Encode(Send{bob, cid, "m"}));
  uint64_t last = 0;
  for (auto& [st, f] : s.FramesFor(bob, FrameType::kPush)) {
    Push p;
    REQUIRE(Decode(f.body, p) == DecodeStatus::kOk);
    CHECK(p.id > last);
    last = p.id;
  }
}
