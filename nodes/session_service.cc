#include "nodes/session_service.h"

namespace meshchat::nodes {

SessionService::SessionService(NodeContext& ctx)
    : SessionRings(ctx.map), DurableService<SessionCore>(ctx, [&ctx, this](store::KvStore& kv) {
        SessionConfig cfg;
        cfg.node_id = ctx.self.id;
        cfg.epoch = ctx.map.epoch;
        if (auto it = ctx.options.find("inbox_ttl_s"); it != ctx.options.end())
          cfg.inbox_ttl_ms = std::stoll(it->second) * 1000;
        if (auto it = ctx.options.find("send_rate"); it != ctx.options.end())
          cfg.send_rate = std::stod(it->second);
        if (auto it = ctx.options.find("send_burst"); it != ctx.options.end())
          cfg.send_burst = std::stod(it->second);
        if (auto it = ctx.options.find("push_rto_ms"); it != ctx.options.end())
          cfg.push_rto_initial_ms = std::stoll(it->second);
        if (auto it = ctx.options.find("push_window_bytes"); it != ctx.options.end())
          cfg.push_window_bytes = std::stoull(it->second);
        cfg.secret = ctx.secret;
        cfg.previous_secret = ctx.previous_secret;
        auto core = std::make_unique<SessionCore>(
            cfg, ctx.clock, kv,
            [this](std::string_view key) -> const std::string& { return sessions.Owner(key); },
            [&mesh = ctx.mesh](const std::string& n) { return mesh.IsUp(n); },
            [this](std::string_view key) -> const std::string& {
              static const std::string kNone;  // no group nodes in the map
              return groups.empty() ? kNone : groups.Owner(key);
            },
            [this](std::string_view key) -> const std::string& {
              static const std::string kNone;  // no presence nodes in the map
              return presence.empty() ? kNone : presence.Owner(key);
            });
        core->SetMediaOwner([this](std::string_view key) -> const std::string& {
          static const std::string kNone;  // no media nodes in the map
          return media.empty() ? kNone : media.Owner(key);
        });
        return core;
      }) {}

}  // namespace meshchat::nodes
