// Several SessionCores wired by hand (no sockets), each on its own in-memory store, with a
// FakeClock. Envelopes between shards go through a queue the test can drop from; what reaches
// gateways is kept per connection, decoded. One envelope is one batch: the harness commits
// after each and releases effects only if the commit succeeds, as the service does.
#pragma once

#include <algorithm>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "codec/client_messages.h"
#include "codec/history_messages.h"
#include "nodes/session/session_core.h"
#include "router/hash_ring.h"
#include "store/lmdb_kv_store.h"
#include "store/mem_kv_store.h"

namespace meshchat::test {

// A map change for a node whose role's owners go from `before` to `after` (epoch `epoch`),
// with `writers` as the nodes that send it markers and whose markers it waits for.
inline nodes::MapChange RingChange(uint64_t epoch, std::vector<std::string> before,
                                   std::vector<std::string> after,
                                   std::vector<std::string> writers) {
  nodes::MapChange c;
  c.epoch = epoch;
  std::sort(before.begin(), before.end());
  std::sort(after.begin(), after.end());
  c.own_ring_changed = c.keyed_rings_changed = before != after;
  c.old_owners = std::move(before);
  c.new_owners = std::move(after);
  c.marker_to = writers;
  c.senders = std::move(writers);
  return c;
}

struct ClientView {
  std::vector<codec::Push> pushes;
  std::vector<codec::Receipt> receipts;
  std::vector<codec::Sent> sent;
  std::vector<codec::Error> errors;
  std::vector<codec::HistoryPage> pages;
  int welcomed = 0;
  int refused = 0;
  int typing = 0;  // typing notices
  bool closed = false;
};

class Shards {
 public:
  // `lmdb_dir`: each shard on a real LMDB environment under it instead of in memory.
  explicit Shards(std::vector<std::string> ids = {"s1", "s2"}, nodes::SessionConfig base = {},
                  const std::string& lmdb_dir = "")
      : ring_(ids), base_(base), lmdb_dir_(lmdb_dir) {
    for (const auto& id : ids) AddShard(id, ids);
  }
  // A shard on a new store whose map has the session ring `ring` (its own view: shards can
  // run different maps while one spreads).
  void AddShard(const std::string& id, const std::vector<std::string>& ring) {
    auto& s = shards_[id];
    if (lmdb_dir_.empty()) {
      auto mem = std::make_unique<store::MemKvStore>();
      s.mem = mem.get();
      s.kv = std::move(mem);
    } else {
      std::filesystem::create_directories(lmdb_dir_ + "/" + id);
      store::LmdbOptions opts;
      opts.map_size = 256 << 20;
      auto kv = store::LmdbKvStore::Open(lmdb_dir_ + "/" + id, opts);
      REQUIRE(kv.ok());
      s.kv = std::move(kv).value();
    }
    s.ring = router::HashRing(ring);
    s.core = MakeCore(id, base_);
  }

  FakeClock clock;
  std::set<std::string> down;  // nodes considered unreachable
  std::function<bool(const std::string& from, const std::string& to,
                     const codec::Envelope& e)>
      drop;  // return true to lose an envelope in transit

  nodes::SessionCore& core(const std::string& id) { return *shards_.at(id).core; }
  store::MemKvStore& kv(const std::string& id) {
    REQUIRE(shards_.at(id).mem);  // in-memory shards only (fault injection, counts)
    return *shards_.at(id).mem;
  }
  store::KvStore& store(const std::string& id) { return *shards_.at(id).kv; }
  const std::string& Owner(std::string_view key) const { return ring_.Owner(key); }
  ClientView& Client(const std::string& gw, uint64_t conn) { return clients_[{gw, conn}]; }
  // Every shard at load `state` (nodes/load_levels.h).
  void SetLoad(const nodes::LoadState& state) {
    for (auto& [id, s] : shards_) s.core->SetLoad(state);
  }

  // Sends an envelope to `to` as if from `from`, and runs the mesh until it is quiet.
  void Post(const std::string& from, const std::string& to, codec::Envelope env) {
    queue_.push_back({from, to, std::move(env)});
    Run();
  }
  void Run() {
    for (int guard = 0; guard < 100000 && !queue_.empty(); ++guard) {
      auto [from, to, env] = std::move(queue_.front());
      queue_.pop_front();
      if (drop && drop(from, to, env)) continue;
      auto it = shards_.find(to);
      if (it == shards_.end()) {
        ToGateway(to, env);
        continue;
      }
      if (down.count(to)) continue;
      if (env.epoch == 0) env.epoch = 1;
      nodes::Effects fx;
      it->second.core->OnEnvelope(from, std::move(env), fx);
      Finish(to, fx);
    }
  }
  // Timers of every shard, then the resulting traffic.
  void Tick() {
    for (auto& [id, s] : shards_) {
      if (down.count(id)) continue;
      nodes::Effects fx;
      s.core->OnTick(fx);
      Finish(id, fx);
    }
    Run();
  }
  void PeerUp(const std::string& node) {
    for (auto& [id, s] : shards_) {
      if (id == node || down.count(id)) continue;
      nodes::Effects fx;
      s.core->OnPeerUp(node, false, fx);
      Finish(id, fx);
    }
    Run();
  }
  // Replaces a shard's core by a fresh one on the same store: a crash and restart.
  void Restart(const std::string& id, nodes::SessionConfig cfg = {}) {
    shards_.at(id).kv->Rollback();
    shards_.at(id).core = MakeCore(id, cfg);
  }
  // Shard `id` takes a map whose session ring is `ring` (epoch `epoch`), as the node runner
  // does: its routing switches, then its core learns what changed.
  void TakeMap(const std::string& id, const std::vector<std::string>& ring, uint64_t epoch) {
    auto& s = shards_.at(id);
    std::vector<std::string> others;  // only session shards here: they are all the writers
    for (const auto& n : s.ring.nodes())
      if (n != id) others.push_back(n);
    const nodes::MapChange c = RingChange(epoch, s.ring.nodes(), ring, others);
    s.ring = router::HashRing(ring);
    nodes::Effects fx;
    REQUIRE(s.core->OnMapChanged(c, fx).ok());
    Finish(id, fx);
    Run();
  }
  // Where gateways send a user's frames from now on.
  void SetGatewayRing(const std::vector<std::string>& ring) { ring_ = router::HashRing(ring); }

  // Client-side helpers: stamps as a gateway would.
  void Connect(const std::string& user, const std::string& device, const std::string& gw,
               uint64_t conn) {
    codec::Envelope e;
    e.type = codec::MeshType::kConnOpen;
    e.key = user;
    e.stamp = {user, device, conn, gw};
    Post(gw, Owner(user), std::move(e));
  }
  void Disconnect(const std::string& user, const std::string& device, const std::string& gw,
                  uint64_t conn) {
    codec::Envelope e;
    e.type = codec::MeshType::kConnClose;
    e.key = user;
    e.stamp = {user, device, conn, gw};
    Post(gw, Owner(user), std::move(e));
  }
  void Frame(const codec::Stamp& from, codec::FrameType t, std::string body) {
    codec::Envelope e;
    e.type = codec::MeshType::kClientFrame;
    e.key = from.user;
    e.stamp = from;
    e.ftype = static_cast<uint8_t>(t);
    e.body = std::move(body);
    Post(from.gateway, Owner(from.user), std::move(e));
  }
  void Send(const codec::Stamp& from, const std::string& to, uint64_t cid, std::string body) {
    Frame(from, codec::FrameType::kSend, codec::Encode(codec::Send{to, cid, std::move(body)}));
  }
  void Ack(const codec::Stamp& from, uint64_t n) {
    Frame(from, codec::FrameType::kAck, codec::Encode(codec::Ack{n}));
  }
  void Read(const codec::Stamp& from, const std::string& chat, uint64_t seq) {
    Frame(from, codec::FrameType::kRead, codec::Encode(codec::Read{chat, seq}));
  }
  // Acks everything this connection was pushed so far.
  void AckAll(const codec::Stamp& who) {
    auto& v = Client(who.gateway, who.conn);
    uint64_t n = 0;
    for (auto& p : v.pushes) n = std::max(n, p.n);
    for (auto& r : v.receipts) n = std::max(n, r.n);
    if (n) Ack(who, n);
  }

 private:
  struct Shard {
    std::unique_ptr<store::KvStore> kv;
    store::MemKvStore* mem = nullptr;
    std::unique_ptr<nodes::SessionCore> core;
    router::HashRing ring;  // the session ring of this shard's map
  };
  std::unique_ptr<nodes::SessionCore> MakeCore(const std::string& id, nodes::SessionConfig cfg) {
    auto& s = shards_.at(id);
    cfg.node_id = id;
    cfg.epoch = 1;
    auto core = std::make_unique<nodes::SessionCore>(
        cfg, clock, *s.kv,
        [ring = &s.ring](std::string_view k) -> const std::string& { return ring->Owner(k); },
        [this](const std::string& n) { return !down.count(n); });
    REQUIRE(core->Load().ok());
    REQUIRE(s.kv->Commit().ok());
    return core;
  }
  struct InFlight {
    std::string from, to;
    codec::Envelope env;
  };
  void Finish(const std::string& id, nodes::Effects& fx) {
    if (!shards_.at(id).core->EndBatch(fx).ok()) return;  // effects were cleared
    for (auto& m : fx.mesh) queue_.push_back({id, m.node, std::move(m.env)});
  }
  void ToGateway(const std::string& gw, const codec::Envelope& env) {
    auto& c = clients_[{gw, env.stamp.conn}];
    using codec::FrameType;
    switch (env.type) {
      case codec::MeshType::kConnOpened: (env.arg == 0 ? c.welcomed : c.refused)++; return;
      case codec::MeshType::kCloseConn: c.closed = true; return;
      case codec::MeshType::kToClient: break;
      default: return;
    }
    switch (static_cast<FrameType>(env.ftype)) {
      case FrameType::kPush: return Append(env.body, c.pushes);
      case FrameType::kReceipt: return Append(env.body, c.receipts);
      case FrameType::kSent: return Append(env.body, c.sent);
      case FrameType::kError: return Append(env.body, c.errors);
      case FrameType::kHistoryPage: return Append(env.body, c.pages);
      case FrameType::kTypingNotice: ++c.typing; return;
      default: return;
    }
  }
  // Decodes a frame body the shard produced (it must be well formed) onto the client's list.
  template <typename T>
  static void Append(const std::string& body, std::vector<T>& into) {
    T v;
    REQUIRE(codec::Decode(body, v) == codec::DecodeStatus::kOk);
    into.push_back(std::move(v));
  }

  router::HashRing ring_;  // the gateways' session ring
  nodes::SessionConfig base_;
  std::string lmdb_dir_;
  std::map<std::string, Shard> shards_;
  std::deque<InFlight> queue_;
  std::map<std::pair<std::string, uint64_t>, ClientView> clients_;
};

}  // namespace meshchat::test
