// Group role: GroupCore on an LMDB store with pipelined group commit (DurableService).
#pragma once

#include "nodes/group/group_core.h"
#include "nodes/shard/durable_service.h"
#include "router/hash_ring.h"

namespace meshchat::nodes {

struct GroupRings {
  explicit GroupRings(const router::ClusterMap& map)
      : sessions(map.IdsWithRole(router::Role::kSession)),
        groups(map.IdsWithRole(router::Role::kGroup)),
        media(map.IdsWithRole(router::Role::kMedia)) {}
  router::HashRing sessions;
  router::HashRing groups;
  router::HashRing media;
};

class GroupService final : private GroupRings, public DurableService<GroupCore> {
 public:
  explicit GroupService(NodeContext& ctx);
  void RebuildRings() override { static_cast<GroupRings&>(*this) = GroupRings(context().map); }
};

}  // namespace meshchat::nodes
