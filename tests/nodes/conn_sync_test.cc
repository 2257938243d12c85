// A gateway and a session shard wired by hand (no sockets, fake clock): when one side alone
// decides the other was down, the connection directory must come back by itself
// (codec/conn_sync.h). Before it, a shard that stopped hearing a gateway forgot its
// connections while the gateway, which never saw the shard go, did not announce them again:
// the clients stayed connected, acked, and received nothing.
#include <catch2/catch.hpp>

#include <deque>
#include <functional>
#include <map>
#include <set>

#include "codec/client_messages.h"
#include "codec/conn_sync.h"
#include "codec/token.h"
#include "nodes/gateway/gateway_core.h"
#include "nodes/session/session_core.h"
#include "store/mem_kv_store.h"

using namespace meshchat;
using namespace meshchat::codec;
using namespace meshchat::nodes;

namespace {

const std::string kSecret = "conn-sync-test-secret-0123456789";

// gw1 and s1 (the only session shard), and what gw1 wrote to each client connection.
struct GatewayAndShard {
  FakeClock clock;
  router::HashRing ring{{"s1"}};
  store::MemKvStore kv;
  GatewayCore gw{GatewayConfig{"gw1", kSecret}, clock, ring,
                 [](const std::string&) { return true; }};
  SessionCore s1{ShardConfig(), clock, kv,
                 [this](std::string_view k) -> const std::string& { return ring.Owner(k); },
                 [](const std::string&) { return true; }};
  // Directions silenced: (from, to) pairs whose envelopes are lost.
  std::set<std::pair<std::string, std::string>> deaf;
  // Single envelopes lost in the middle of the s1 -> gw1 stream: the next one that arrives
  // tells gw1 of the gap first, as the mesh's link sequence does (router/mesh.h).
  std::function<bool(const Envelope&)> lose_to_gw;
  bool gap_pending = false;
  std::map<uint64_t, std::vector<Push>> pushes;
  std::map<uint64_t, std::vector<Sent>> sent;
  std::map<uint64_t, int> welcomed;

  static SessionConfig ShardConfig() {
    SessionConfig c;
    c.node_id = "s1";
    return c;
  }
  GatewayAndShard() {
    REQUIRE(s1.Load().ok());
    REQUIRE(kv.Commit().ok());
  }

  void Login(uint64_t conn, const std::string& user) {
    gw.OnOpen(conn);
    Frame(conn, FrameType::kHello,
          Encode(Hello{kProtocolVersion,
                       SignToken({user, "phone", clock.WallMs() / 1000 + 3600, conn}, kSecret)}));
  }
  void Frame(uint64_t conn, FrameType t, const std::string& body) {
    Effects fx;
    gw.OnFrame(conn, FrameView{static_cast<uint8_t>(t), body}, fx);
    FromGateway(fx);
  }
  void Close(uint64_t conn) {
    Effects fx;
    gw.OnClosed(conn, fx);
    FromGateway(fx);
  }
  void AckAll(uint64_t conn) {
    uint64_t n = 0;
    for (const auto& p : pushes[conn]) n = std::max(n, p.n);
    if (n) Frame(conn, FrameType::kAck, Encode(Ack{n}));
  }
  // Both cores' timers `seconds` times, a second apart.
  void Tick(int seconds) {
    for (int i = 0; i < seconds; ++i) {
      clock.Advance(1000);
      Effects g;
      gw.OnTick(g);
      FromGateway(g);
      Effects s;
      s1.OnTick(s);
      FromShard(s);
    }
  }

 private:
  std::deque<std::tuple<std::string, std::string, Envelope>> queue_;
  void FromGateway(Effects& fx) {
    for (auto& w : fx.writes) Written(w.conn, w.bytes);
    for (auto& m : fx.mesh) queue_.push_back({"gw1", m.node, std::move(m.env)});
    Run();
  }
  void FromShard(Effects& fx) {
    REQUIRE(s1.EndBatch(fx).ok());
    for (auto& m : fx.mesh) queue_.push_back({"s1", m.node, std::move(m.env)});
    Run();
  }
  void Run() {
    while (!queue_.empty()) {
      auto [from, to, env] = std::move(queue_.front());
      queue_.pop_front();
      if (deaf.count({from, to})) continue;
      if (env.epoch == 0) env.epoch = 1;
      Effects fx;
      if (from == "s1" && to == "gw1") {
        if (lose_to_gw && lose_to_gw(env)) {
          gap_pending = true;
          continue;
        }
        if (gap_pending) {
          gap_pending = false;
          gw.OnLinkGap("s1", fx);
        }
      }
      if (to == "s1") {
        s1.OnEnvelope(from, std::move(env), fx);
        REQUIRE(s1.EndBatch(fx).ok());
        for (auto& m : fx.mesh) queue_.push_back({"s1", m.node, std::move(m.env)});
      } else {
        gw.OnMesh(from, std::move(env), fx);
        for (auto& w : fx.writes) Written(w.conn, w.bytes);
        for (auto& m : fx.mesh) queue_.push_back({"gw1", m.node, std::move(m.env)});
      }
    }
  }
  void Written(uint64_t conn, std::string_view bytes) {
    while (!bytes.empty()) {
      FrameView f;
      size_t used = 0;
      REQUIRE(DecodeFrame(bytes, f, used) == DecodeStatus::kOk);
      switch (static_cast<FrameType>(f.type)) {
        case FrameType::kPush: {
          Push p;
          REQUIRE(Decode(f.body, p) == DecodeStatus::kOk);
          pushes[conn].push_back(p);
          break;
        }
        case FrameType::kSent: {
          Sent s;
          REQUIRE(Decode(f.body, s) == DecodeStatus::kOk);
          sent[conn].push_back(s);
          break;
        }
        case FrameType::kWelcome: ++welcomed[conn]; break;
        case FrameType::kAck: break;
        default: break;
      }
      bytes.remove_prefix(used);
    }
  }
};

}  // namespace

TEST_CASE("a shard that alone saw its gateway go down gets the gateway's connections back",
          "[nodes][conn_sync]") {
  GatewayAndShard m;
  m.Login(1, "alice");
  m.Login(2, "bob");
  REQUIRE(m.welcomed[1] == 1);
  REQUIRE(m.welcomed[2] == 1);
  m.Frame(1, FrameType::kSend, Encode(Send{"bob", 1, "before"}));
  REQUIRE(m.pushes[2].size() == 1);
  m.AckAll(2);

  // s1 stops hearing gw1 for longer than the heartbeat timeout; gw1 hears s1 all along.
  m.deaf.insert({"gw1", "s1"});
  m.Tick(4);
  m.s1.OnPeerDown("gw1");
  REQUIRE(m.s1.connections() == 0);
  m.deaf.clear();

  m.Frame(1, FrameType::kSend, Encode(Send{"bob", 2, "after"}));
  REQUIRE(m.sent[1].size() == 2);  // acknowledged: stored
  m.Tick(2);                       // one digest round at most
  REQUIRE(m.pushes[2].size() == 2);
  CHECK(m.pushes[2][1].body == "after");
  CHECK(m.s1.connections() == 2);
  CHECK(m.gw.resynced() == 2);
  CHECK(m.welcomed[2] == 1);  // no second welcome: the client never knew
  m.Tick(3);                  // and the views agree from then on
  CHECK(m.s1.conn_resyncs() == 1);
}

TEST_CASE("a connection closed while its close was lost is dropped at the shard",
          "[nodes][conn_sync]") {
  GatewayAndShard m;
  m.Login(1, "alice");
  m.Login(2, "bob");
  REQUIRE(m.s1.connections() == 2);
  m.deaf.insert({"gw1", "s1"});
  m.Close(2);  // its conn_close is lost
  m.deaf.clear();
  REQUIRE(m.s1.connections() == 2);
  m.Tick(2);
  CHECK(m.s1.connections() == 1);
  auto who = m.s1.inboxes().ConnectionsOf("bob");
  CHECK(who.empty());
  CHECK(m.s1.inboxes().ConnectionsOf("alice").size() == 1);
}

TEST_CASE("pushes lost in the middle of a link are pushed again before any later one",
          "[nodes][conn_sync]") {
  GatewayAndShard m;
  m.Login(1, "alice");
  m.Login(2, "bob");
  // The push of "two" is lost on its way from s1 to gw1; "three" arrives after it.
  bool lost = false;
  m.lose_to_gw = [&lost](const Envelope& e) {
    if (lost || e.type != MeshType::kToClient || e.ftype != static_cast<uint8_t>(FrameType::kPush))
      return false;
    Push p;
    return lost = Decode(e.body, p) == DecodeStatus::kOk && p.body == "two";
  };
  uint64_t cid = 0;
  for (const char* body : {"one", "two", "three"})
    m.Frame(1, FrameType::kSend, Encode(Send{"bob", ++cid, body}));
  m.lose_to_gw = nullptr;
  // What bob's app shows (pushes at or below the highest n seen are repeats): "three" never
  // came before "two", so no cumulative ack could cover the lost one.
  std::vector<std::string> bodies;
  uint64_t last_n = 0;
  for (const auto& p : m.pushes[2])
    if (p.n > last_n) {
      bodies.push_back(p.body);
      last_n = p.n;
    }
  REQUIRE(bodies == std::vector<std::string>{"one", "two", "three"});
  CHECK(m.gw.push_resyncs() == 1);
  // The `sent` for "three" was dropped while the resync was pending: alice resends it (same
  // cid) and gets it, with no second copy to bob.
  const size_t pushed = m.pushes[2].size();
  m.Frame(1, FrameType::kSend, Encode(Send{"bob", 3, "three"}));
  CHECK(m.sent[1].back().cid == 3);
  CHECK(m.pushes[2].size() == pushed);
}

TEST_CASE("connection digests: decode is bounded and checks what it is given", "[codec]") {
  ConnDigest d;
  d.Add(1);
  d.Add(65);
  ConnDigest back;
  REQUIRE(Decode(Encode(d), back) == DecodeStatus::kOk);
  CHECK(back == d);
  CHECK(Decode("\x80", back) == DecodeStatus::kMalformed);  // {} : no arrays

  ConnList l{{1, 2}, {1, 66, 2}, {"a", "b", "c"}};
  ConnList lb;
  REQUIRE(Decode(Encode(l), lb) == DecodeStatus::kOk);
  CHECK(lb == l);
  ConnList outside{{1}, {2}, {"a"}};  // conn 2 is not in bucket 1
  CHECK(Decode(Encode(outside), lb) == DecodeStatus::kMalformed);
  ConnList uneven{{1}, {1}, {}};
  CHECK(Decode(Encode(uneven), lb) == DecodeStatus::kMalformed);
  ConnList bad_bucket{{64}, {}, {}};
  CHECK(Decode(Encode(bad_bucket), lb) == DecodeStatus::kMalformed);
}
