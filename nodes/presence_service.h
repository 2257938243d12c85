// Presence role: PresenceCore on an LMDB store (last seen and privacy, committed once a
// second) and a PUB socket on which it publishes changes of watched users; gateways subscribe
// to the users their clients watch. PUB/SUB carries only these hints: a lost one is corrected
// by the next change or the next query.
#pragma once

#include <memory>

#include "nodes/node_runner.h"
#include "nodes/presence_core.h"
#include "store/lmdb_kv_store.h"

namespace meshchat::nodes {

class PresenceService final : public Service {
 public:
  explicit PresenceService(NodeContext& ctx);
  void Start() override;
  void OnEnvelope(const std::string& from, codec::Envelope&& env) override;
  uint64_t Connections() const override { return core_->users(); }

 private:
  void Apply();

  NodeContext& ctx_;
  std::unique_ptr<store::LmdbKvStore> kv_;
  std::unique_ptr<PresenceCore> core_;
  zmq::socket_t pub_;
  Effects fx_;
  std::vector<Publication> published_;
};

}  // namespace meshchat::nodes
