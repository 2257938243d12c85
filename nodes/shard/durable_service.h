// A role whose state lives in LMDB (session, group): wires a core (plain class, no sockets)
// to the mesh and the store with pipelined group commit. While a background fsync runs
// (store/background_syncer.h) every loop turn writes into one open batch; when the fsync
// completes the batch commits (no fsync of its own) and the next fsync starts, at least
// `sync_interval_us` after the previous one. Effects wait until the fsync covering their batch
// completes: nothing is acknowledged before it is durable, and the loop never waits for disk.
// Effects marked `now` (nodes/shard/effects.h) depend on no write of this node and go at once.
//
// Replicated shards (nodes/shard/replication.h; cluster map `replica-of=`): the shard's
// primary sends every committed batch to its replicas at once, and a batch's effects wait
// for both its own fsync and the in-sync replicas' acks. A replica node runs no core traffic:
// it applies the primary's batches to its store and acknowledges each once it is durable.
//
// Core contract: Load(), OnEnvelope(from, env, fx), OnPeerUp(node, restarted, fx),
// OnPeerDown(node), OnTick(fx), EndBatch(fx) (commits; clears fx on failure),
// OnStoreLost(fx), Connections(), Unacked(); and for key hand-over (nodes/shard/handover.h)
// OnMapChanged(change, fx) and handover() (its Handover).
#pragma once

#include <spdlog/spdlog.h>
#include <sys/epoll.h>

#include <deque>
#include <filesystem>
#include <functional>
#include <memory>

#include "nodes/runtime/node_runner.h"
#include "nodes/shard/effects.h"
#include "nodes/shard/handover.h"
#include "nodes/shard/replication.h"
#include "store/background_syncer.h"
#include "store/lmdb_kv_store.h"

namespace meshchat::nodes {

template <typename Core>
class DurableService : public Service {
 public:
  using MakeCore = std::function<std::unique_ptr<Core>(store::KvStore& kv)>;

  DurableService(NodeContext& ctx, const MakeCore& make) : ctx_(ctx) {
    const std::string dir = ctx.data_dir + "/lmdb";
    std::filesystem::create_directories(dir);
    store::LmdbOptions opts;
    opts.durable = false;  // commits are made durable by syncer_, off the loop thread
    opts.writemap = ctx_.options.Int("lmdb_writemap", 0) == 1;
    opts.map_size = ctx_.options.Int("lmdb_map_mb", size_t{1024}) << 20;
    auto kv = store::LmdbKvStore::Open(dir, opts);
    if (!kv.ok()) throw std::runtime_error(kv.status().ToString());
    kv_ = std::move(kv).value();
    rec_ = std::make_unique<store::RecordingKvStore>(*kv_);
    // 1 ms between fsyncs: measured on the 2-core test machine, it doubled chats per
    // CPU-second at 2-5k msg/s for ~3 ms more median latency (bench/README.md).
    syncer_ = std::make_unique<store::BackgroundSyncer>([env = &kv_->env()] { return env->Sync(); },
                                                        ctx_.options.Int("sync_interval_us", 1000));
    core_ = make(*rec_);
    const auto replicas = ctx_.map.ReplicasOf(ctx_.self.id);
    if (!ctx_.self.replica_of.empty()) {
      replica_ = std::make_unique<ReplicaReplication>(*kv_, ctx_.clock, ctx_.self.replica_of);
    } else if (!replicas.empty()) {
      ReplicationConfig cfg;
      cfg.min_in_sync = ctx_.options.Int("repl_min_in_sync", cfg.min_in_sync);
      cfg.timeout_ms = ctx_.options.Int("repl_timeout_ms", cfg.timeout_ms);
      cfg.log_bytes = ctx_.options.Int("repl_log_mb", cfg.log_bytes >> 20) << 20;
      primary_ = std::make_unique<PrimaryReplication>(cfg, replicas, *kv_, ctx_.clock);
      rec_->set_recording(true);
    }
  }

  void Start() override {
    if (replica_) {
      // A replica: the store follows the primary; the core is never fed.
      if (Status s = replica_->Load(); !s.ok()) throw std::runtime_error(s.ToString());
      (void)kv_->Commit();
      // It says hello when the link to its primary comes up (OnPeerUp), and when the primary
      // has been silent for a while.
      ctx_.reactor.Every(250, [this] { replica_->OnTick(fx_); });
    } else {
      if (Status s = core_->Load(); !s.ok()) throw std::runtime_error(s.ToString());
      if (primary_) {
        auto pos = LoadReplPosition(*kv_);
        if (!pos.ok()) throw std::runtime_error(pos.status().ToString());
        primary_->Start(pos->seq);
      }
      if (Status s = kv_->Commit(); !s.ok()) throw std::runtime_error(s.ToString());
      JoinIfNew();
      ctx_.reactor.Every(250, [this] { core_->OnTick(fx_); });
    }
    ctx_.reactor.OnTurnEnd([this] { EndTurn(); });
    auto s = ctx_.reactor.AddFd(syncer_->notify_fd(), EPOLLIN, [this](uint32_t) { OnDurable(); });
    if (!s.ok()) throw std::runtime_error(s.ToString());
  }
  void OnEnvelope(const std::string& from, codec::Envelope&& env) override {
    using codec::MeshType;
    if (replica_) {
      if (env.type == MeshType::kReplBatch) {
        if (Status s = replica_->OnBatch(from, env, fx_); !s.ok()) {
          spdlog::error("replica: batch from {} not applied: {}", from, s.ToString());
          RestartReplica();
        }
      }
      return;  // a replica owns no keys: nothing else is for it
    }
    if (env.type == MeshType::kReplHello || env.type == MeshType::kReplAck) {
      if (!primary_) return;
      if (env.type == MeshType::kReplHello)
        primary_->OnHello(from, env, fx_);
      else
        primary_->OnAck(from, env);
      Release();
      return;
    }
    core_->OnEnvelope(from, std::move(env), fx_);
  }
  void OnPeerUp(const std::string& node, bool restarted) override {
    if (replica_) {
      if (node == replica_->primary()) replica_->Hello(fx_);
      return;
    }
    core_->OnPeerUp(node, restarted, fx_);
  }
  void OnPeerDown(const std::string& node) override {
    if (replica_) return;
    if (primary_) {
      primary_->OnPeerDown(node);
      Release();  // a replica out of the in-sync set holds nothing back
    }
    core_->OnPeerDown(node);
  }
  uint64_t Connections() const override { return core_->Connections(); }
  // A newer map: the service rebuilds its rings, then the core learns what changed (markers,
  // hand-over).
  void OnMapChanged(const router::ClusterMap& previous) override {
    RebuildRings();
    const MapChange c = MapChangeFor(previous, ctx_.map, ctx_.self.id, ctx_.self.role);
    if (Status s = core_->OnMapChanged(c, fx_); !s.ok())
      spdlog::error("map epoch {}: hand-over could not start: {}", c.epoch, s.ToString());
  }
  uint64_t HandoverPending() const override { return core_->handover().Pending(); }
  uint64_t QueueDepth() const override {
    uint64_t n = core_->Unacked();  // channel entries the peers have not confirmed
    for (const auto& w : waiting_) n += w.fx.mesh.size();  // waiting for the fsync
    return n + open_fx_.mesh.size();
  }
  int64_t CommitAgeMs() const override {
    return syncing_ ? ctx_.clock.MonoMs() - sync_started_ms_ : 0;
  }
  void FillReplication(codec::NodeStatus& st) const override {
    if (primary_) {
      st.repl_role = "primary";
      st.shard = ctx_.self.id;
      st.repl_term = primary_->term();
      st.repl_seq = primary_->seq();
      for (const auto& r : primary_->Replicas()) st.replicas.push_back({r.node, r.state, r.lag});
    } else if (replica_) {
      st.repl_role = "replica";
      st.shard = ctx_.self.replica_of;
      st.repl_term = replica_->position().term;
      st.repl_seq = replica_->position().seq;
    }
  }
  void OnLoad(const LoadState& state) override {
    if constexpr (requires(Core & c) { c.SetLoad(state); }) core_->SetLoad(state);
  }
  void WriteMetrics(MetricsText& m) const override {
    if constexpr (requires(const Core& c) { c.shed(); }) WriteShedMetrics(m, core_->shed());
    m.Counter("meshchat_store_batches_total", "store batches committed", batches_);
    m.Counter("meshchat_store_failures_total", "batches lost to a failed commit or sync",
              failures_);
    m.Gauge("meshchat_store_batches_waiting", "committed batches waiting for their fsync",
            static_cast<double>(waiting_.size()));
    m.Gauge("meshchat_handover_pending",
            "work left in a key hand-over after a map change (0 when settled)",
            static_cast<double>(core_->handover().Pending()));
    sync_latency_.Write(m, "meshchat_store_durable_seconds",
                        "from a batch's commit to its fsync completing");
    if (auto used = kv_->UsedBytes(); used.ok())
      m.Gauge("meshchat_store_bytes", "LMDB bytes in use", static_cast<double>(*used));
    WriteReplicationMetrics(m);
  }

 protected:
  NodeContext& context() { return ctx_; }
  // The rings the core routes by, from ctx.map (which was just replaced).
  virtual void RebuildRings() = 0;
  // A node added to a running cluster (`joined` is this map's epoch) with a new store takes
  // every key it owns over from the role's other nodes.
  void JoinIfNew() {
    if (!core_->handover().fresh() || ctx_.self.joined != ctx_.map.epoch) return;
    auto owners = ctx_.map.IdsWithRole(ctx_.self.role);
    std::vector<std::string> others;
    for (const auto& n : owners)
      if (n != ctx_.self.id) others.push_back(n);
    if (others.empty()) return;
    if (Status s = core_->handover().Begin(ctx_.map.epoch, std::move(others), std::move(owners));
        !s.ok())
      throw std::runtime_error(s.ToString());
  }
  Core& core() { return *core_; }
  const Core& core() const { return *core_; }

  // At the end of each loop turn, before the turn's effects join the open batch (presence:
  // publications, which are hints and wait for no disk).
  virtual void AfterTurn() {}

 private:
  struct Waiting {
    uint64_t batch;     // local batch number (the syncer's)
    uint64_t repl_seq;  // replicated batch it depends on (0: none)
    Effects fx;
  };

  void EndTurn() {
    AfterTurn();
    if (primary_) primary_->OnTurn(fx_);  // copy parts, in-sync timeouts
    for (auto& m : fx_.mesh) {
      if (m.now)
        Send(m);
      else
        open_fx_.mesh.push_back(std::move(m));
    }
    fx_.Clear();
    if (primary_) Release();           // acks and hand-overs of this turn
    if (!syncing_) CommitOpenBatch();  // otherwise the batch grows until the fsync is done
  }
  void CommitOpenBatch() {
    if (open_fx_.mesh.empty() && !kv_->dirty()) {
      (void)kv_->Commit();  // ends a read-only batch
      return;
    }
    if (replica_) {
      if (Status s = kv_->Commit(); !s.ok()) {
        spdlog::error("replica: store commit failed: {}", s.ToString());
        open_fx_.Clear();
        ++failures_;
        RestartReplica();
        return;
      }
      Committed(0);
      return;
    }
    uint64_t seq = 0;  // the replicated batch number this commit gets (0: nothing written)
    if (primary_ && kv_->dirty()) {
      seq = primary_->seq() + 1;
      if (Status s = SaveReplPosition(*rec_, primary_->term(), seq); !s.ok()) seq = 0;
    }
    if (Status s = core_->EndBatch(open_fx_); !s.ok()) {
      const int64_t now = ctx_.clock.MonoMs();
      if (now - last_error_log_ms_ > 1000) {
        last_error_log_ms_ = now;
        spdlog::error("store commit failed, nothing from this batch was acknowledged: {}",
                      s.ToString());
      }
      open_fx_.Clear();
      ++failures_;
      if (primary_) primary_->OnCommitFailed();
      return;
    }
    if (seq != 0) {
      Effects sends;  // to the replicas at once: their fsync runs alongside ours
      primary_->OnCommitted(seq, rec_->TakeCommitted(), sends);
      for (auto& m : sends.mesh) Send(m);
    }
    Committed(primary_ ? primary_->seq() : 0);
  }
  void Committed(uint64_t repl_seq) {
    waiting_.push_back({++batch_, repl_seq, std::move(open_fx_)});
    open_fx_.Clear();
    syncer_->Request(batch_);
    sync_started_ms_ = ctx_.clock.MonoMs();
    ++batches_;
    syncing_ = true;
  }
  void Send(Effects::MeshSend& m) {
    if (Status s = ctx_.mesh.Send(m.node, std::move(m.env)); !s.ok())
      spdlog::debug("mesh send to {} failed: {}", m.node, s.ToString());
  }
  void OnDurable() {
    Status err;
    const uint64_t durable = syncer_->Durable(err);
    if (!err.ok()) {
      // The disk refused: what waits may not be durable. Acknowledge none of it; clients and
      // channels retry, and the core resends from what the store holds.
      spdlog::error("store sync failed, {} batches not acknowledged: {}", waiting_.size(),
                    err.ToString());
      failures_ += waiting_.size();
      waiting_.clear();
      Effects dropped;
      if (replica_)
        RestartReplica();  // its acks are gone; the primary resends
      else
        core_->OnStoreLost(dropped);
      syncing_ = false;
      return;
    }
    sync_latency_.Observe(static_cast<double>(ctx_.clock.MonoMs() - sync_started_ms_) / 1000);
    durable_ = durable;
    Release();
    // One commit at a time waits for its fsync (LMDB without sync may reuse pages of the
    // last synced snapshot only once a newer one is synced); batches waiting for replicas do
    // not hold the next commit back.
    if (durable_ >= batch_) {
      syncing_ = false;
      CommitOpenBatch();  // what accumulated during the fsync goes next
    }
  }
  // Sends the effects of every batch durable here and, if replicated, on the in-sync replicas.
  void Release() {
    const uint64_t replicated = primary_ ? primary_->ReleasableUpTo() : UINT64_MAX;
    while (!waiting_.empty() && waiting_.front().batch <= durable_ &&
           waiting_.front().repl_seq <= replicated) {
      for (auto& m : waiting_.front().fx.mesh) Send(m);
      waiting_.pop_front();
    }
  }
  // The replica's store and its position disagree (a failed commit or apply): start from the
  // store again; the primary's next batch shows the gap and it resends or copies.
  void RestartReplica() {
    kv_->Rollback();
    if (Status s = replica_->Load(); !s.ok())
      spdlog::error("replica: cannot read its position: {}", s.ToString());
    (void)kv_->Commit();
  }
  void WriteReplicationMetrics(MetricsText& m) const {
    if (primary_) {
      for (const auto& r : primary_->Replicas())
        m.Gauge("meshchat_repl_lag_batches", "batches a replica has not acknowledged",
                static_cast<double>(r.lag), "replica=\"" + r.node + "\"");
      m.Gauge("meshchat_repl_in_sync", "replicas in the in-sync set",
              static_cast<double>(primary_->in_sync()));
      m.Counter("meshchat_repl_dropped_total", "replicas that left the in-sync set",
                primary_->dropped_from_sync());
      m.Counter("meshchat_repl_copies_total", "whole-store copies started to replicas",
                primary_->copies_started());
      m.Gauge("meshchat_repl_seq", "last batch committed on this shard",
              static_cast<double>(primary_->seq()));
    }
    if (replica_)
      m.Gauge("meshchat_repl_seq", "last batch applied on this replica",
              static_cast<double>(replica_->position().seq));
  }

  NodeContext& ctx_;
  std::unique_ptr<store::LmdbKvStore> kv_;
  std::unique_ptr<store::RecordingKvStore> rec_;  // what the core writes through
  std::unique_ptr<store::BackgroundSyncer> syncer_;
  std::unique_ptr<Core> core_;
  std::unique_ptr<PrimaryReplication> primary_;  // a shard head with replicas
  std::unique_ptr<ReplicaReplication> replica_;  // a replica (replica-of=)
  Effects fx_;                                   // effects of the current loop turn
  Effects open_fx_;                              // effects of the open batch
  bool syncing_ = false;
  uint64_t batch_ = 0;
  uint64_t durable_ = 0;         // highest local batch known durable
  std::deque<Waiting> waiting_;  // batches committed, effects not yet released
  int64_t last_error_log_ms_ = 0;
  int64_t sync_started_ms_ = 0;
  uint64_t batches_ = 0, failures_ = 0;
  LatencyBuckets sync_latency_;
};

}  // namespace meshchat::nodes
