#include "nodes/gateway_service.h"

#include <spdlog/spdlog.h>

namespace meshchat::nodes {
namespace {

ListenerConfig ListenerFor(const router::NodeInfo& self) {
  ListenerConfig cfg;
  if (!router::SplitHostPort(self.client, cfg.host, cfg.port))
    throw std::runtime_error("gateway " + self.id + " has a bad client endpoint");
  return cfg;
}

}  // namespace

GatewayService::GatewayService(NodeContext& ctx)
    : ctx_(ctx),
      sessions_(ctx.map.IdsWithRole(router::Role::kSession)),
      core_(GatewayConfig{ctx.self.id, ctx.secret}, ctx.clock, sessions_,
            [&mesh = ctx.mesh](const std::string& n) { return mesh.IsUp(n); }),
      listener_(ctx.reactor, ListenerFor(ctx.self),
                ClientListener::Callbacks{[this](uint64_t c) { core_.OnOpen(c); },
                                          [this](uint64_t c, const codec::FrameView& f) {
                                            core_.OnFrame(c, f, fx_);
                                            Apply();
                                          },
                                          [this](uint64_t c, codec::DecodeStatus s) {
                                            core_.OnBadFrame(c, s, fx_);
                                            Apply();
                                          },
                                          [this](uint64_t c) {
                                            core_.OnClosed(c, fx_);
                                            Apply();
                                          }}) {
  if (ctx.secret.empty()) throw std::runtime_error("a gateway needs --secret-file");
}

void GatewayService::Start() {
  listener_.Start();
  ctx_.reactor.Every(1000, [this] {
    core_.OnTick(fx_);
    Apply();
  });
  spdlog::info("accepting clients on {}", ctx_.self.client);
}

void GatewayService::BeginShutdown() {
  listener_.StopAccepting();
  core_.Shutdown(fx_);
  Apply();
}

void GatewayService::OnEnvelope(const std::string& from, codec::Envelope&& env) {
  core_.OnMesh(from, std::move(env), fx_);
  Apply();
}

void GatewayService::OnPeerUp(const std::string& node, bool /*restarted*/) {
  core_.OnPeerUp(node, fx_);
  Apply();
}

void GatewayService::Apply() {
  // Effects may be produced re-entrantly (a close triggers OnClosed); take them out first.
  while (!fx_.mesh.empty() || !fx_.writes.empty() || !fx_.closes.empty()) {
    Effects fx = std::move(fx_);
    fx_.Clear();
    for (auto& w : fx.writes) listener_.Write(w.conn, w.bytes);
    for (auto& m : fx.mesh) {
      if (Status s = ctx_.mesh.Send(m.node, std::move(m.env)); !s.ok() && m.fail_conn) {
        codec::Error e{codec::ErrorCode::kServiceUnavailable, "session shard unreachable; retry",
                       std::nullopt, false};
        listener_.Write(m.fail_conn, codec::EncodeMessageFrame(e));
      }
    }
    for (uint64_t c : fx.closes) listener_.CloseAfterFlush(c);
  }
}

}  // namespace meshchat::nodes
