// Session role: wires SessionCore to the mesh and an LMDB store, with pipelined group commit:
// while a background fsync runs (store/background_syncer.h), every loop turn writes into one
// open batch; when the fsync completes, that batch commits (no fsync of its own) and the next
// fsync starts. Effects wait until the fsync covering their batch completes. So there is one
// LMDB commit and one fsync per fsync period, however many messages arrive, and the loop never
// waits for the disk.
#pragma once

#include <deque>
#include <memory>

#include "nodes/node_runner.h"
#include "nodes/session_core.h"
#include "router/hash_ring.h"
#include "store/background_syncer.h"
#include "store/lmdb_kv_store.h"

namespace meshchat::nodes {

class SessionService final : public Service {
 public:
  explicit SessionService(NodeContext& ctx);
  void Start() override;
  void OnEnvelope(const std::string& from, codec::Envelope&& env) override;
  void OnPeerUp(const std::string& node, bool restarted) override;
  void OnPeerDown(const std::string& node) override;
  uint64_t Connections() const override { return core_->connections(); }

 private:
  void EndTurn();
  void CommitOpenBatch();
  void OnDurable();

  NodeContext& ctx_;
  router::HashRing ring_;
  std::unique_ptr<store::LmdbKvStore> kv_;
  std::unique_ptr<SessionCore> core_;
  Effects fx_;
  std::unique_ptr<store::BackgroundSyncer> syncer_;
  Effects open_fx_;                                   // effects of the open batch
  bool syncing_ = false;                              // a background fsync is running
  uint64_t batch_ = 0;                                // id of the last committed batch
  std::deque<std::pair<uint64_t, Effects>> waiting_;  // effects of batches not yet durable
  int64_t last_commit_error_log_ms_ = 0;
};

}  // namespace meshchat::nodes
