// Session role: wires SessionCore to the mesh and carries out its effects.
#pragma once

#include "nodes/node_runner.h"
#include "nodes/session_core.h"
#include "router/hash_ring.h"

namespace meshchat::nodes {

class SessionService final : public Service {
 public:
  explicit SessionService(NodeContext& ctx);
  void Start() override;
  void OnEnvelope(const std::string& from, codec::Envelope&& env) override;
  void OnPeerUp(const std::string& node, bool restarted) override;
  void OnPeerDown(const std::string& node) override;
  uint64_t Connections() const override { return core_.directory_size(); }

 private:
  void Apply();

  NodeContext& ctx_;
  router::HashRing ring_;
  SessionCore core_;
  Effects fx_;
};

}  // namespace meshchat::nodes
