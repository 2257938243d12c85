// Keys of presence and media nodes moving when their ring changes (nodes/shard/handover.h), without
// sockets: the nodes of one role and a session node's channel wired by hand.
#include <catch2/catch.hpp>

#include "client/media_transfer.h"
#include "nodes/media/media_core.h"
#include "nodes/presence/presence_core.h"
#include "nodes/shard/handover.h"
#include "nodes/shard/records.h"
#include "store/mem_blob_store.h"
#include "store/mem_kv_store.h"
#include "tests/nodes/shard_harness.h"

using namespace meshchat;
using namespace meshchat::codec;

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
