// Presence role: PresenceCore on an LMDB store with pipelined group commit (DurableService:
// last seen written once a second, privacy settings and contacts arriving over reliable
// channels) and a PUB socket on which it publishes changes of watched users; gateways
// subscribe to the users their clients watch. PUB/SUB carries only these hints: a lost one is
// corrected by the next change or the next query.
#pragma once

#include <zmq.hpp>

#include "nodes/presence/presence_core.h"
#include "nodes/shard/durable_service.h"
#include "router/hash_ring.h"

namespace meshchat::nodes {

struct PresenceRing {  // built before the service: the core's routing refers to it
  explicit PresenceRing(const router::ClusterMap& map)
      : presence(map.IdsWithRole(router::Role::kPresence)) {}
  router::HashRing presence;
};

class PresenceService final : private PresenceRing, public DurableService<PresenceCore> {
 public:
  explicit PresenceService(NodeContext& ctx);
  void Start() override;
  void RebuildRings() override { static_cast<PresenceRing&>(*this) = PresenceRing(context().map); }

 protected:
  void AfterTurn() override;

 private:
  zmq::socket_t pub_;
};

}  // namespace meshchat::nodes
