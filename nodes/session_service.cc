#include "nodes/session_service.h"

#include <spdlog/spdlog.h>

namespace meshchat::nodes {

SessionService::SessionService(NodeContext& ctx)
    : ctx_(ctx),
      ring_(ctx.map.IdsWithRole(router::Role::kSession)),
      core_(
          SessionConfig{ctx.self.id, ctx.map.epoch}, ctx.clock,
          [this](std::string_view user) -> const std::string& { return ring_.Owner(user); },
          [&mesh = ctx.mesh](const std::string& n) { return mesh.IsUp(n); }) {}

void SessionService::Start() {
  ctx_.reactor.Every(250, [this] {
    core_.OnTick(fx_);
    Apply();
  });
}

void SessionService::OnEnvelope(const std::string& from, codec::Envelope&& env) {
  core_.OnEnvelope(from, std::move(env), fx_);
  Apply();
}

void SessionService::OnPeerUp(const std::string& node, bool restarted) {
  // A restarted gateway's old connections died with it; it re-announces the live ones.
  if (restarted) core_.ForgetGateway(node);
}

void SessionService::OnPeerDown(const std::string& node) {
  core_.ForgetGateway(node);
}

void SessionService::Apply() {
  for (auto& m : fx_.mesh) {
    if (Status s = ctx_.mesh.Send(m.node, std::move(m.env)); !s.ok())
      spdlog::debug("mesh send to {} failed: {}", m.node, s.ToString());
  }
  fx_.Clear();
}

}  // namespace meshchat::nodes
