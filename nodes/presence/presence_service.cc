#include "nodes/presence/presence_service.h"

namespace meshchat::nodes {

PresenceService::PresenceService(NodeContext& ctx)
    : PresenceRing(ctx.map),
      DurableService<PresenceCore>(
          ctx,
          [&ctx, this](store::KvStore& kv) {
            PresenceConfig cfg;
            cfg.node_id = ctx.self.id;
            cfg.epoch = ctx.map.epoch;
            cfg.online_ms = ctx.options.Int("online_ms", cfg.online_ms);
            cfg.throttle_ms = ctx.options.Int("presence_throttle_ms", cfg.throttle_ms);
            return std::make_unique<PresenceCore>(
                cfg, ctx.clock, kv,
                [this](std::string_view k) -> const std::string& { return presence.Owner(k); },
                [&mesh = ctx.mesh](const std::string& n) { return mesh.IsUp(n); });
          }),
      pub_(ctx.mesh.context(), zmq::socket_type::pub) {}

void PresenceService::Start() {
  pub_.set(zmq::sockopt::linger, 0);
  pub_.set(zmq::sockopt::sndhwm, 100000);
  if (!context().curve.empty()) {  // gateways subscribe with their keys, like mesh peers
    router::MakeCurveServer(pub_, context().curve);
    context().zap->Watch(pub_, "presence pub");
  }
  pub_.bind(context().self.pub);
  DurableService<PresenceCore>::Start();
}

void PresenceService::AfterTurn() {
  for (const auto& p : core().TakePublications()) {
    // Two frames: "user\0" (subscriptions match it exactly) and the presence body.
    const std::string topic = p.user + '\0';
    (void)pub_.send(zmq::buffer(topic), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    (void)pub_.send(zmq::buffer(p.body), zmq::send_flags::dontwait);
  }
}

}  // namespace meshchat::nodes
