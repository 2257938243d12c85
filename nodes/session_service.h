// Session role: wires SessionCore to the mesh and an LMDB store, and commits once per loop
// turn before carrying out the turn's effects (group commit).
#pragma once

#include <memory>

#include "nodes/node_runner.h"
#include "nodes/session_core.h"
#include "router/hash_ring.h"
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

  NodeContext& ctx_;
  router::HashRing ring_;
  std::unique_ptr<store::LmdbKvStore> kv_;
  std::unique_ptr<SessionCore> core_;
  Effects fx_;
  int64_t last_commit_error_log_ms_ = 0;
};

}  // namespace meshchat::nodes
