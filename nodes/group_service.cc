#include "nodes/group_service.h"

namespace meshchat::nodes {

GroupService::GroupService(NodeContext& ctx)
    : GroupRings(ctx.map), DurableService<GroupCore>(ctx, [&ctx, this](store::KvStore& kv) {
        if (sessions.empty()) throw std::runtime_error("a group node needs session nodes");
        GroupConfig cfg;
        cfg.node_id = ctx.self.id;
        cfg.epoch = ctx.map.epoch;
        if (auto it = ctx.options.find("group_member_cap"); it != ctx.options.end())
          cfg.member_cap = std::stoull(it->second);
        if (auto it = ctx.options.find("large_group"); it != ctx.options.end())
          cfg.large_group = std::stoull(it->second);
        if (auto it = ctx.options.find("inbox_ttl_s"); it != ctx.options.end())
          cfg.ttl_ms = std::stoll(it->second) * 1000;
        if (auto it = ctx.options.find("group_fanout_rate"); it != ctx.options.end())
          cfg.fanout_rate = std::stod(it->second);
        if (auto it = ctx.options.find("group_fanout_burst"); it != ctx.options.end())
          cfg.fanout_burst = std::stod(it->second);
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
