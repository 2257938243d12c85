// Keys moving between session shards when the ring changes (nodes/handover.h), without
// sockets: shards take the new map one after the other while clients keep sending, and every
// acknowledged message still reaches its recipient once and in order.
#include <catch2/catch.hpp>

#include <set>

#include "client/media_transfer.h"
#include "nodes/handover.h"
#include "nodes/media_core.h"
#include "nodes/presence_core.h"
#include "nodes/records.h"
#include "store/mem_blob_store.h"
#include "store/mem_kv_store.h"
#include "tests/nodes/shard_harness.h"

using namespace meshchat;
using namespace meshchat::codec;
using meshchat::test::Shards;

TEST_CASE("hand-over payloads round-trip and bad ones are refused", "[nodes][handover]") {
  nodes::HandoverRows rows{7, "inbox", {{std::string("a\0b", 3), "v1"}, {"k2", ""}}};
  nodes::HandoverRows back;
  REQUIRE(nodes::DecodeRecord(nodes::EncodeRecord(rows), back));
  CHECK(back == rows);
  CHECK(nodes::KindOf(nodes::EncodeRecord(rows)) == nodes::PayloadKind::kHandoverRows);
  nodes::HandoverMarker m;
  REQUIRE(nodes::DecodeRecord(nodes::EncodeRecord(nodes::HandoverMarker{3}), m));
  CHECK(m.epoch == 3);
  CHECK(nodes::KindOf(nodes::EncodeRecord(nodes::HandoverDone{3})) ==
        nodes::PayloadKind::kHandoverDone);
  nodes::HandoverDone d;
  CHECK_FALSE(nodes::DecodeRecord(nodes::EncodeRecord(nodes::HandoverMarker{3}), d));  // kind
  nodes::HandoverState st;
  st.epoch = 4;
  st.active = true;
  st.old_ring = {"s1", "s2"};
  st.new_ring = {"s1", "s2", "s3"};
  st.senders = {"s2", "g1"};
  st.table = 2;
  st.from = std::string("x\0y", 3);
  nodes::HandoverState st2;
  REQUIRE(nodes::DecodeRecord(nodes::EncodeRecord(st), st2));
  CHECK(st2 == st);
  // Truncated, or a row without its value: refused, not a crash.
  std::string enc = nodes::EncodeRecord(rows);
  CHECK_FALSE(nodes::DecodeRecord(std::string_view(enc).substr(0, enc.size() - 1), back));
  std::string odd;
  msgpack::sbuffer sb;
  msgpack::packer<msgpack::sbuffer> pk(sb);
  pk.pack_array(4).pack(5).pack(1).pack(std::string("inbox")).pack_array(1).pack(std::string("k"));
  CHECK_FALSE(nodes::DecodeRecord(std::string_view(sb.data(), sb.size()), back));
}

TEST_CASE("a row's routing key skips a time prefix and ends at the first NUL",
          "[nodes][handover]") {
  CHECK(nodes::RoutingKeyOf("alice", 0) == "alice");
  CHECK(nodes::RoutingKeyOf(std::string("alice\0bob", 9), 0) == "alice");
  CHECK(nodes::RoutingKeyOf(std::string("12345678a|b\0x", 13), 8) == "a|b");
  CHECK(nodes::RoutingKeyOf("short", 8).empty());
}

TEST_CASE("what a map change means for a node", "[nodes][handover]") {
  auto parse = [](const std::string& text) {
    auto m = router::ClusterMap::Parse(text);
    REQUIRE(m.ok());
    return *m;
  };
  const std::string nodes =
      "node gw1 gateway mesh=tcp://127.0.0.1:1 client=127.0.0.1:2\n"
      "node s1 session mesh=tcp://127.0.0.1:3\n"
      "node s2 session mesh=tcp://127.0.0.1:4\n"
      "node g1 group mesh=tcp://127.0.0.1:5\n";
  auto before = parse("epoch 1\n" + nodes);
  auto added = parse("epoch 2\n" + nodes + "node s3 session mesh=tcp://127.0.0.1:6 joined=2\n");
  auto c = nodes::MapChangeFor(before, added, "s1", router::Role::kSession);
  CHECK(c.epoch == 2);
  CHECK(c.keyed_rings_changed);
  CHECK(c.own_ring_changed);
  CHECK(c.marker_to == std::vector<std::string>{"s2", "g1"});  // not gateways, not s3
  CHECK(c.new_owners == std::vector<std::string>{"s1", "s2", "s3"});
  auto g = nodes::MapChangeFor(before, added, "g1", router::Role::kGroup);
  CHECK(g.keyed_rings_changed);     // g1 sends markers: it fans out to session shards...
  CHECK_FALSE(g.own_ring_changed);  // ...but hands nothing over
  // s2 leaving: it owns nothing any more, but still gets markers (it runs until removed).
  auto leaving = parse("epoch 2\n" + std::string(nodes).replace(nodes.find("tcp://127.0.0.1:4"), 17,
                                                                "tcp://127.0.0.1:4 leaving"));
  auto l = nodes::MapChangeFor(before, leaving, "s1", router::Role::kSession);
  CHECK(l.new_owners == std::vector<std::string>{"s1"});
  CHECK(l.marker_to == std::vector<std::string>{"s2", "g1"});
  // Only a gateway changed: no markers, no hand-over.
  auto gw =
      parse("epoch 2\n" + nodes + "node gw2 gateway mesh=tcp://127.0.0.1:7 client=127.0.0.1:8\n");
  auto n = nodes::MapChangeFor(before, gw, "s1", router::Role::kSession);
  CHECK_FALSE(n.keyed_rings_changed);
  CHECK_FALSE(n.own_ring_changed);
}

namespace {

// Senders (connected) write to recipients (offline until the end) in several rounds while
// the ring changes; every message is resent with its cid until its `sent` arrives.
struct Chat {
  Shards& sh;
  std::vector<std::pair<std::string, std::string>> pairs;  // sender, recipient
  std::map<std::string, std::vector<std::string>> want;    // recipient -> bodies in order
  std::map<std::pair<std::string, uint64_t>, std::pair<std::string, std::string>> unacked;
  uint64_t next_cid = 1;

  Stamp SenderStamp(size_t i) const { return Stamp{pairs[i].first, "phone", 100 + i, "gw1"}; }
  void Round(int k) {
    for (size_t i = 0; i < pairs.size(); ++i) {
      const std::string body = pairs[i].first + ":" + std::to_string(k);
      unacked[{pairs[i].first, next_cid}] = {pairs[i].second, body};
      sh.Send(SenderStamp(i), pairs[i].second, next_cid++, body);
    }
    Collect();
  }
  // Acked (`sent`) messages leave `unacked`, in the order of their cids per sender.
  void Collect() {
    for (size_t i = 0; i < pairs.size(); ++i) {
      auto& v = sh.Client("gw1", 100 + i);
      for (const auto& s : v.sent)
        if (auto it = unacked.find({pairs[i].first, s.cid}); it != unacked.end()) {
          want[it->second.first].push_back(it->second.second);
          unacked.erase(it);
        }
      v.sent.clear();
    }
  }
  void ResendUnacked() {
    auto copy = unacked;
    for (const auto& [key, msg] : copy)
      for (size_t i = 0; i < pairs.size(); ++i)
        if (pairs[i].first == key.first) sh.Send(SenderStamp(i), msg.first, key.second, msg.second);
    Collect();
  }
  void ConnectSenders() {
    for (size_t i = 0; i < pairs.size(); ++i) sh.Connect(pairs[i].first, "phone", "gw1", 100 + i);
  }
};

std::vector<std::string> Received(Shards& sh, const std::string& user, uint64_t conn) {
  sh.Connect(user, "phone", "gw2", conn);
  for (int i = 0; i < 20; ++i) {  // push windows and acks
    sh.AckAll({user, "phone", conn, "gw2"});
    sh.Tick();
  }
  std::map<uint64_t, std::string> by_n;  // a resent push has its first one's n
  for (const auto& p : sh.Client("gw2", conn).pushes) by_n[p.n] = p.body;
  std::vector<std::string> out;
  for (const auto& [n, body] : by_n) out.push_back(body);
  return out;
}

void SettleHandover(Shards& sh, const std::vector<std::string>& ids) {
  for (int i = 0; i < 40; ++i) {
    bool busy = false;
    for (const auto& id : ids) busy |= sh.core(id).handover().Pending() != 0;
    if (!busy) return;
    sh.clock.Advance(300);
    sh.Tick();
  }
  FAIL("hand-over did not finish");
}

}  // namespace

TEST_CASE("session keys move to an added shard and from a leaving one, nothing lost or doubled",
          "[nodes][handover]") {
  Shards sh({"s1", "s2"});
  Chat chat{sh, {}, {}, {}};
  for (int i = 0; i < 30; ++i)  // pair 23: its chat stays on s1, its recipient moves s2 -> s3
    chat.pairs.push_back({"u" + std::to_string(i), "r" + std::to_string(i)});
  chat.ConnectSenders();
  chat.Round(0);
  chat.Round(1);
  REQUIRE(chat.unacked.empty());

  // s3 joins at epoch 2. s1 takes the map first: for a while s1 and s2 route differently.
  const std::vector<std::string> ring3{"s1", "s2", "s3"};
  sh.AddShard("s3", ring3);
  REQUIRE(sh.core("s3").handover().Begin(2, {"s1", "s2"}, ring3).ok());
  sh.TakeMap("s1", ring3, 2);
  chat.Round(2);  // some refused (moving keys), some stashed at s3, some applied at old owners
  sh.TakeMap("s2", ring3, 2);
  chat.Round(3);
  sh.SetGatewayRing(ring3);
  chat.ConnectSenders();  // gateways announce their connections to the new owners
  SettleHandover(sh, ring3);
  chat.ResendUnacked();
  chat.Round(4);
  REQUIRE(chat.unacked.empty());

  // Nothing of a moved key stays behind at its old owner.
  for (const std::string id : {"s1", "s2"}) {
    router::HashRing ring(ring3);
    int foreign = 0;
    REQUIRE(sh.store(id)
                .Scan("inbox", "",
                      [&](std::string_view k, std::string_view) {
                        foreign += ring.Owner(nodes::RoutingKeyOf(k, 0)) != id;
                        return true;
                      })
                .ok());
    CHECK(foreign == 0);
  }

  // s2 leaves: its keys go to s1 and s3; s2 stays in the mesh until it shipped everything.
  const std::vector<std::string> ring13{"s1", "s3"};
  // s1 switches first: what it sends by the new map reaches s3 before s3 knows that map (a
  // regression: s3 applied such entries at once, and s2's rows arriving later overwrote them).
  sh.TakeMap("s1", ring13, 3);
  chat.Round(5);
  sh.TakeMap("s2", ring13, 3);
  chat.Round(6);
  sh.TakeMap("s3", ring13, 3);
  sh.SetGatewayRing(ring13);
  chat.ConnectSenders();
  SettleHandover(sh, ring3);
  chat.ResendUnacked();
  chat.Round(7);
  REQUIRE(chat.unacked.empty());
  CHECK(sh.kv("s2").Count("inbox") == 0);
  CHECK(sh.kv("s2").Count("user") == 0);

  // Every acknowledged message, once, in order; resending old cids made no copies.
  for (size_t i = 0; i < chat.pairs.size(); ++i) {
    const auto& [from, to] = chat.pairs[i];
    INFO(from << " -> " << to);
    CHECK(Received(sh, to, 500 + i) == chat.want[to]);
    CHECK(chat.want[to].size() == 8);
  }
}

TEST_CASE("a hand-over survives a failed commit and a restart of the old owner",
          "[nodes][handover]") {
  Shards sh({"s1", "s2"});
  Chat chat{sh, {}, {}, {}};
  for (int i = 0; i < 8; ++i)
    chat.pairs.push_back({"u" + std::to_string(i), "r" + std::to_string(i)});
  chat.ConnectSenders();
  chat.Round(0);
  const std::vector<std::string> ring3{"s1", "s2", "s3"};
  sh.AddShard("s3", ring3);
  REQUIRE(sh.core("s3").handover().Begin(2, {"s1", "s2"}, ring3).ok());
  sh.TakeMap("s1", ring3, 2);
  sh.Restart("s1");  // waiting for s2's marker: the state is stored, it resumes
  CHECK(sh.core("s1").handover().Pending() != 0);
  sh.TakeMap("s2", ring3, 2);
  sh.kv("s1").FailNextCommit();  // the first shipping batch is lost: it ships again
  sh.clock.Advance(300);
  sh.Tick();
  sh.SetGatewayRing(ring3);
  chat.ConnectSenders();
  SettleHandover(sh, ring3);
  chat.Round(1);
  chat.ResendUnacked();
  REQUIRE(chat.unacked.empty());
  for (size_t i = 0; i < chat.pairs.size(); ++i) {
    const auto& [from, to] = chat.pairs[i];
    INFO(from << " -> " << to);
    CHECK(Received(sh, to, 500 + i) == chat.want[to]);
    CHECK(chat.want[to].size() == 2);
  }
}

TEST_CASE("read receipts put off under load move with their user and are sent after",
          "[nodes][handover][overload]") {
  Shards sh({"s1", "s2"});
  const std::vector<std::string> ring3{"s1", "s2", "s3"};
  router::HashRing before({"s1", "s2"}), after(ring3);
  // A reader whose key moves to s3, and a writer whose key stays.
  std::string reader, writer;
  for (int i = 0; reader.empty() || writer.empty(); ++i) {
    const std::string u = "user" + std::to_string(i);
    if (reader.empty() && after.Owner(u) == "s3") reader = u;
    if (writer.empty() && after.Owner(u) == before.Owner(u)) writer = u;
  }
  const Stamp w{writer, "phone", 1, "gw1"}, r{reader, "phone", 2, "gw1"};
  sh.Connect(writer, "phone", "gw1", 1);
  sh.Connect(reader, "phone", "gw1", 2);
  sh.Send(w, reader, 1, "read me");
  sh.Send(w, reader, 2, "and me");
  sh.AckAll(r);
  sh.AckAll(w);
  for (const char* id : {"s1", "s2"}) sh.core(id).SetLoad({nodes::LoadLevel::kDelayReceipts});
  sh.Read(r, writer, 2);  // stored at the reader's old shard, not sent
  auto& wv = sh.Client("gw1", 1);
  auto reads = [&] {
    size_t n = 0;
    for (const auto& rc : wv.receipts) n += rc.kind == ReceiptKind::kRead && rc.seq == 2;
    return n;
  };
  CHECK(reads() == 0);
  CHECK(sh.kv(before.Owner(reader)).Count("readlater") == 1);

  sh.AddShard("s3", ring3);
  sh.core("s3").SetLoad({nodes::LoadLevel::kDelayReceipts});
  REQUIRE(sh.core("s3").handover().Begin(2, {"s1", "s2"}, ring3).ok());
  sh.TakeMap("s1", ring3, 2);
  sh.TakeMap("s2", ring3, 2);
  sh.SetGatewayRing(ring3);
  sh.Connect(writer, "phone", "gw1", 1);
  SettleHandover(sh, ring3);
  for (const char* id : {"s1", "s2"}) CHECK(sh.kv(id).Count("readlater") == 0);
  // Load falls everywhere: the new owner sends it.
  for (const char* id : {"s1", "s2", "s3"}) sh.core(id).SetLoad({});
  for (int i = 0; i < 5 && reads() == 0; ++i) {
    sh.clock.Advance(300);
    sh.Tick();
  }
  CHECK(reads() == 1);
  CHECK(sh.kv("s3").Count("readlater") == 0);
}

TEST_CASE("a shard refuses requests for keys still moving in, and answers them after",
          "[nodes][handover]") {
  Shards sh({"s1"});
  const std::vector<std::string> ring2{"s1", "s2"};
  sh.AddShard("s2", ring2);
  REQUIRE(sh.core("s2").handover().Begin(2, {"s1"}, ring2).ok());
  router::HashRing r(ring2);
  std::string mover;
  for (int i = 0; !mover.size(); ++i)
    if (r.Owner("m" + std::to_string(i)) == "s2") mover = "m" + std::to_string(i);
  sh.SetGatewayRing(ring2);
  sh.Connect(mover, "phone", "gw1", 1);
  CHECK(sh.Client("gw1", 1).welcomed == 0);  // not yet: the gateway announces it again
  sh.Send({mover, "phone", 1, "gw1"}, "x", 1, "early");
  CHECK(sh.Client("gw1", 1).sent.empty());
  sh.TakeMap("s1", ring2, 2);
  SettleHandover(sh, ring2);
  sh.Connect(mover, "phone", "gw1", 1);
  CHECK(sh.Client("gw1", 1).welcomed == 1);
  sh.Send({mover, "phone", 1, "gw1"}, "x", 1, "now");
  CHECK(sh.Client("gw1", 1).sent.size() == 1);
}

namespace {

// Nodes of one role (presence or media) and a session node's channel, wired by hand:
// envelopes are routed by node name until the mesh is quiet; every handler's batch commits
// before its effects go. `make` builds a core for a node.
template <typename Core>
struct RoleMesh {
  FakeClock clock;
  struct Node {
    store::MemKvStore kv;
    store::MemBlobStore own_blobs;
    router::HashRing ring;
    std::unique_ptr<Core> core;
  };
  using MakeFn = std::function<std::unique_ptr<Core>(const std::string& id, Node& n)>;
  MakeFn make;
  std::map<std::string, Node> nodes;
  store::MemKvStore s1_kv;
  nodes::ReliableChannel s1{{}, s1_kv, clock, [](const std::string&) { return true; }};
  std::deque<std::pair<std::string, nodes::Effects::MeshSend>> queue;  // from, send
  std::vector<codec::Envelope> to_gateway;

  explicit RoleMesh(MakeFn m) : make(std::move(m)) {
    REQUIRE(s1.Load().ok());
    REQUIRE(s1_kv.Commit().ok());
  }
  void Add(const std::string& id, const std::vector<std::string>& ring) {
    Node& n = nodes[id];
    n.ring = router::HashRing(ring);
    n.core = make(id, n);
    REQUIRE(n.core->Load().ok());
    REQUIRE(n.kv.Commit().ok());
  }
  void Finish(const std::string& id, nodes::Effects& fx) {
    REQUIRE(nodes.at(id).core->EndBatch(fx).ok());
    for (auto& m : fx.mesh) queue.push_back({id, std::move(m)});
  }
  void Run() {
    while (!queue.empty()) {
      auto [from, m] = std::move(queue.front());
      queue.pop_front();
      if (m.node == "s1") {  // acks for the session node's channel
        nodes::Effects fx;
        REQUIRE(s1.OnAck(from, m.env, fx).ok());
        REQUIRE(s1_kv.Commit().ok());
        continue;
      }
      if (!nodes.count(m.node)) {
        to_gateway.push_back(std::move(m.env));
        continue;
      }
      nodes::Effects fx;
      nodes.at(m.node).core->OnEnvelope(from, std::move(m.env), fx);
      Finish(m.node, fx);
    }
  }
  // The session node appends a payload for `dest` on its channel.
  void FromSession(const std::string& dest, std::string payload) {
    nodes::Effects fx;
    REQUIRE(s1.Append(dest, std::move(payload), fx).ok());
    REQUIRE(s1_kv.Commit().ok());
    for (auto& m : fx.mesh) queue.push_back({"s1", std::move(m)});
    Run();
  }
  void TakeMap(const std::string& id, const std::vector<std::string>& ring, uint64_t epoch) {
    Node& n = nodes.at(id);
    const nodes::MapChange c = test::RingChange(epoch, n.ring.nodes(), ring, {"s1"});
    n.ring = router::HashRing(ring);
    nodes::Effects fx;
    REQUIRE(n.core->OnMapChanged(c, fx).ok());
    Finish(id, fx);
    Run();
  }
  void Tick() {
    for (auto& [id, n] : nodes) {
      nodes::Effects fx;
      n.core->OnTick(fx);
      Finish(id, fx);
    }
    Run();
  }
  // One envelope to `node` as if from s1 or a gateway; returns what went to gateways.
  std::vector<codec::Envelope> Deliver(const std::string& node, codec::Envelope e) {
    to_gateway.clear();
    nodes::Effects fx;
    nodes.at(node).core->OnEnvelope("s1", std::move(e), fx);
    Finish(node, fx);
    Run();
    return std::move(to_gateway);
  }
  void Settle() {
    for (int i = 0; i < 12; ++i) {
      clock.Advance(250);
      Tick();
    }
  }
};

Presence Query(RoleMesh<nodes::PresenceCore>& m, const std::string& node, const std::string& target,
               const std::string& asker) {
  codec::Envelope e;
  e.type = codec::MeshType::kPresenceQuery;
  e.key = target;
  e.stamp = {asker, "d", 1, "gw1"};
  auto out = m.Deliver(node, std::move(e));
  REQUIRE(out.size() == 1);
  Presence p;
  if (Decode(out[0].body, p) != DecodeStatus::kOk) p.user = "error";
  return p;
}

}  // namespace

TEST_CASE("presence settings move to a new presence node, also those sent while moving",
          "[nodes][handover][presence]") {
  RoleMesh<nodes::PresenceCore> m([&m](const std::string& id, auto& n) {
    return std::make_unique<nodes::PresenceCore>(
        nodes::PresenceConfig{id, 1, 5000, 1000}, m.clock, n.kv,
        [r = &n.ring](std::string_view k) -> const std::string& { return r->Owner(k); },
        [](const std::string&) { return true; });
  });
  m.Add("p1", {"p1"});
  const router::HashRing one({"p1"}), two({"p1", "p2"});
  std::vector<std::string> movers;
  for (int i = 0; movers.size() < 3; ++i)
    if (two.Owner("w" + std::to_string(i)) == "p2") movers.push_back("w" + std::to_string(i));
  for (const auto& u : movers)  // hidden from everyone but their contact "pal"
    m.FromSession(one.Owner(u), nodes::EncodeRecord(nodes::PresenceSetting{u, 1, "pal"}));
  // Last seen: activity, stored by the once-a-second write.
  for (const auto& u : movers) {
    codec::Envelope a;
    a.type = codec::MeshType::kActivity;
    a.key = u;
    a.arg = static_cast<uint64_t>(m.clock.WallMs());
    a.body = nodes::EncodeUints({0});
    nodes::Effects fx;
    m.nodes.at("p1").core->OnEnvelope("s1", std::move(a), fx);
    m.Finish("p1", fx);
  }
  const uint64_t seen = static_cast<uint64_t>(m.clock.WallMs());
  for (int i = 0; i < 4; ++i) m.Tick();

  m.Add("p2", {"p1", "p2"});
  REQUIRE(m.nodes.at("p2").core->handover().Begin(2, {"p1"}, {"p1", "p2"}).ok());
  CHECK(Query(m, "p2", movers[0], "pal").user == "error");  // moving in: retry
  // Sent by the new map before p1 even took it: stashed at p2, applied after the rows.
  m.FromSession(two.Owner(movers[1]),
                nodes::EncodeRecord(nodes::PresenceSetting{movers[1], 2, ""}));
  m.TakeMap("p1", {"p1", "p2"}, 2);  // waits for s1's marker
  CHECK(m.nodes.at("p1").core->handover().Pending() != 0);
  m.FromSession("p1", nodes::EncodeRecord(nodes::HandoverMarker{2}));
  m.Settle();
  CHECK(m.nodes.at("p1").core->handover().Pending() == 0);
  CHECK(m.nodes.at("p2").core->handover().Pending() == 0);
  CHECK(m.nodes.at("p1").kv.Count("ppriv") == 0);  // nothing of the movers stayed behind
  // The contact sees them, with the last seen they had; a stranger sees nothing.
  CHECK(Query(m, "p2", movers[0], "pal").last_seen == seen);
  CHECK(Query(m, "p2", movers[0], "stranger").last_seen == 0);
  CHECK(Query(m, "p2", movers[2], "pal").last_seen == seen);
  // The setting sent while moving applied after the moved rows (nobody, not contacts).
  CHECK(Query(m, "p2", movers[1], "pal").last_seen == 0);
  // p1 no longer answers for them.
  CHECK(Query(m, "p1", movers[0], "pal").user == "error");
}

namespace {

const std::string kMediaSecret = "0123456789abcdef0123456789abcdef";

// A client frame about media `id` to `node`, as a gateway routes it; the frames back.
std::vector<codec::Envelope> MediaFrame(RoleMesh<nodes::MediaCore>& m, const std::string& node,
                                        FrameType type, const std::string& id, std::string body) {
  codec::Envelope e;
  e.type = codec::MeshType::kClientFrame;
  e.epoch = 1;
  e.key = HexOf(id);
  e.stamp = Stamp{"alice", "d1", 7, "gw1"};
  e.ftype = static_cast<uint8_t>(type);
  e.body = type == FrameType::kUploadBegin ? std::move(body) : id + body;
  return m.Deliver(node, std::move(e));
}

template <typename T>
std::optional<T> As(const std::vector<codec::Envelope>& out) {
  T t;
  if (out.size() != 1 || out[0].ftype != static_cast<uint8_t>(TypeOf(T{})) ||
      Decode(out[0].body, t) != DecodeStatus::kOk)
    return std::nullopt;
  return t;
}

// Media ids whose owner is `want` once the ring is {m1, m2}.
std::string MediaIdFor(const std::string& want, char seed) {
  router::HashRing two({"m1", "m2"});
  for (int i = 0;; ++i) {
    std::string id(16, seed);
    id[0] = static_cast<char>(i);
    id[1] = static_cast<char>(i >> 8);
    if (two.Owner(HexOf(id)) == want) return id;
  }
}

}  // namespace

TEST_CASE("media moves to a new media node: metadata, bytes, half-done uploads, references",
          "[nodes][handover][media]") {
  const bool shared = GENERATE(false, true);  // a node's own directory, or one RADOS pool
  INFO("shared store: " << shared);
  store::MemBlobStore pool;
  pool.shared = true;
  RoleMesh<nodes::MediaCore> m([&](const std::string& id, auto& n) {
    nodes::MediaConfig cfg;
    cfg.node_id = id;
    cfg.secret = kMediaSecret;
    cfg.chunk_bytes = 1000;
    return std::make_unique<nodes::MediaCore>(
        cfg, m.clock, n.kv, shared ? pool : n.own_blobs,
        [r = &n.ring](std::string_view k) -> const std::string& { return r->Owner(k); },
        [](const std::string&) { return true; });
  });
  m.Add("m1", {"m1"});
  const std::string a = MediaIdFor("m2", 'a'), b = MediaIdFor("m2", 'b'), c = MediaIdFor("m1", 'c');
  const std::string data(2500, 'x'), half(2500, 'y');
  auto upload = [&](const std::string& id, const std::string& bytes, uint64_t upto) {
    auto st = As<UploadState>(
        MediaFrame(m, "m1", FrameType::kUploadBegin, id,
                   Encode(UploadBegin{1, bytes.size(), "image/png", client::Sha256(bytes)})));
    REQUIRE(st);
    for (uint64_t off = 0; off < upto; off += 1000) {
      st = As<UploadState>(MediaFrame(m, "m1", FrameType::kUploadChunk, id,
                                      Encode(UploadChunk{off, bytes.substr(off, 1000)})));
      REQUIRE(st);
    }
    return *st;
  };
  const std::string ticket = upload(a, data, 2500).ticket;  // complete
  REQUIRE_FALSE(ticket.empty());
  upload(b, half, 1000);  // 1000 of 2500 bytes
  upload(c, data, 2500);  // stays on m1
  m.FromSession("m1", nodes::EncodeRecord(nodes::MediaRefRecord{a, "a|b", 0}));
  CHECK(m.nodes.at("m1").kv.Count("mediaopen") == 1);

  m.Add("m2", {"m1", "m2"});
  REQUIRE(m.nodes.at("m2").core->handover().Begin(2, {"m1"}, {"m1", "m2"}).ok());
  // A reference sent by the new map before m1 switched: stashed at m2 until a's row is there.
  m.FromSession("m2", nodes::EncodeRecord(nodes::MediaRefRecord{a, "a|c", 0}));
  CHECK_FALSE(As<UploadState>(MediaFrame(m, "m2", FrameType::kUploadStatus, a, "")));
  m.TakeMap("m1", {"m1", "m2"}, 2);
  m.FromSession("m1", nodes::EncodeRecord(nodes::HandoverMarker{2}));
  m.Settle();
  CHECK(m.nodes.at("m1").core->handover().Pending() == 0);
  CHECK(m.nodes.at("m2").core->handover().Pending() == 0);

  // a is served by m2, whole; m1 no longer knows it; c stayed.
  auto fetched =
      As<MediaData>(MediaFrame(m, "m2", FrameType::kFetch, a, Encode(Fetch{ticket, 0, 2500})));
  REQUIRE(fetched);
  CHECK(fetched->data == data.substr(0, fetched->data.size()));
  CHECK(fetched->data.size() == 1000);  // one chunk per range
  auto last =
      As<MediaData>(MediaFrame(m, "m2", FrameType::kFetch, a, Encode(Fetch{ticket, 2000, 500})));
  REQUIRE(last);
  CHECK(last->data == data.substr(2000));
  CHECK_FALSE(As<UploadState>(MediaFrame(m, "m1", FrameType::kUploadStatus, a, "")));
  CHECK(As<UploadState>(MediaFrame(m, "m1", FrameType::kUploadStatus, c, "")));
  // b resumes at m2 where it stopped, and completes (the hash covers the moved bytes too).
  auto st = As<UploadState>(MediaFrame(m, "m2", FrameType::kUploadStatus, b, ""));
  REQUIRE(st);
  CHECK(st->next == 1000);
  CHECK(m.nodes.at("m1").kv.Count("mediaopen") == 0);  // the open upload moved with it
  CHECK(m.nodes.at("m2").kv.Count("mediaopen") == 1);
  for (uint64_t off = 1000; off < 2500; off += 1000)
    st = As<UploadState>(MediaFrame(m, "m2", FrameType::kUploadChunk, b,
                                    Encode(UploadChunk{off, half.substr(off, 1000)})));
  REQUIRE(st);
  CHECK(st->done);
  CHECK(m.nodes.at("m2").kv.Count("mediaopen") == 0);

  // The old copy of the bytes: removed from m1's own store a while later; never from a shared one.
  m.clock.Advance(11'000);
  m.Tick();
  char byte;
  const auto left = (shared ? pool : m.nodes.at("m1").own_blobs).Read(HexOf(a), 0, {&byte, 1});
  CHECK(left.ok() == shared);
}
