#include "nodes/session/session_service.h"

namespace meshchat::nodes {

SessionService::SessionService(NodeContext& ctx)
    : SessionRings(ctx.map), DurableService<SessionCore>(ctx, [&ctx, this](store::KvStore& kv) {
        SessionConfig cfg;
        cfg.node_id = ctx.self.id;
        cfg.epoch = ctx.map.epoch;
        const NodeOptions& o = ctx.options;
        cfg.inbox_ttl_ms = o.Int("inbox_ttl_s", cfg.inbox_ttl_ms / 1000) * 1000;
        cfg.send_rate = o.Real("send_rate", cfg.send_rate);
        cfg.send_burst = o.Real("send_burst", cfg.send_burst);
        cfg.push_rto_initial_ms = o.Int("push_rto_ms", cfg.push_rto_initial_ms);
        cfg.push_window_bytes = o.Int("push_window_bytes", cfg.push_window_bytes);
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
