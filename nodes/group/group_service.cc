#include "nodes/group/group_service.h"

namespace meshchat::nodes {

GroupService::GroupService(NodeContext& ctx)
    : GroupRings(ctx.map), DurableService<GroupCore>(ctx, [&ctx, this](store::KvStore& kv) {
        if (sessions.empty()) throw std::runtime_error("a group node needs session nodes");
        GroupConfig cfg;
        cfg.node_id = ctx.self.id;
        cfg.epoch = ctx.map.epoch;
        const NodeOptions& o = ctx.options;
        cfg.member_cap = o.Int("group_member_cap", cfg.member_cap);
        cfg.large_group = o.Int("large_group", cfg.large_group);
        cfg.ttl_ms = o.Int("inbox_ttl_s", cfg.ttl_ms / 1000) * 1000;
        cfg.fanout_rate = o.Real("group_fanout_rate", cfg.fanout_rate);
        cfg.fanout_burst = o.Real("group_fanout_burst", cfg.fanout_burst);
        auto core = std::make_unique<GroupCore>(
            cfg, ctx.clock, kv,
            [this](std::string_view k) -> const std::string& { return sessions.Owner(k); },
            [this](std::string_view k) -> const std::string& { return groups.Owner(k); },
            [&mesh = ctx.mesh](const std::string& n) { return mesh.IsUp(n); });
        if (!media.empty())
          core->SetMediaOwner(
              [this](std::string_view k) -> const std::string& { return media.Owner(k); });
        return core;
      }) {}

}  // namespace meshchat::nodes
