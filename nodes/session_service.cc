#include "nodes/session_service.h"

#include <spdlog/spdlog.h>

#include <filesystem>

namespace meshchat::nodes {

SessionService::SessionService(NodeContext& ctx)
    : ctx_(ctx), ring_(ctx.map.IdsWithRole(router::Role::kSession)) {
  const std::string dir = ctx.data_dir + "/lmdb";
  std::filesystem::create_directories(dir);
  store::LmdbOptions opts;
  if (auto it = ctx.options.find("lmdb_map_mb"); it != ctx.options.end())
    opts.map_size = std::stoull(it->second) << 20;
  auto kv = store::LmdbKvStore::Open(dir, opts);
  if (!kv.ok()) throw std::runtime_error(kv.status().ToString());
  kv_ = std::move(kv).value();
  SessionConfig cfg;
  cfg.node_id = ctx.self.id;
  cfg.epoch = ctx.map.epoch;
  if (auto it = ctx.options.find("inbox_ttl_s"); it != ctx.options.end())
    cfg.inbox_ttl_ms = std::stoll(it->second) * 1000;
  core_ = std::make_unique<SessionCore>(
      cfg, ctx.clock, *kv_,
      [this](std::string_view key) -> const std::string& { return ring_.Owner(key); },
      [&mesh = ctx.mesh](const std::string& n) { return mesh.IsUp(n); });
}

void SessionService::Start() {
  if (Status s = core_->Load(); !s.ok()) throw std::runtime_error(s.ToString());
  if (Status s = kv_->Commit(); !s.ok()) throw std::runtime_error(s.ToString());
  ctx_.reactor.Every(250, [this] { core_->OnTick(fx_); });
  ctx_.reactor.OnTurnEnd([this] { EndTurn(); });
}

void SessionService::OnEnvelope(const std::string& from, codec::Envelope&& env) {
  core_->OnEnvelope(from, std::move(env), fx_);
}

void SessionService::OnPeerUp(const std::string& node, bool restarted) {
  core_->OnPeerUp(node, restarted, fx_);
}

void SessionService::OnPeerDown(const std::string& node) {
  core_->OnPeerDown(node);
}

void SessionService::EndTurn() {
  if (fx_.mesh.empty() && !kv_->dirty()) {
    (void)kv_->Commit();  // ends a read-only batch (keeping table handles it opened)
    return;
  }
  if (Status s = core_->EndBatch(fx_); !s.ok()) {
    const int64_t now = ctx_.clock.MonoMs();
    if (now - last_commit_error_log_ms_ > 1000) {
      last_commit_error_log_ms_ = now;
      spdlog::error("store commit failed, nothing from this batch was acknowledged: {}",
                    s.ToString());
    }
  }
  for (auto& m : fx_.mesh) {
    if (Status s = ctx_.mesh.Send(m.node, std::move(m.env)); !s.ok())
      spdlog::debug("mesh send to {} failed: {}", m.node, s.ToString());
  }
  fx_.Clear();
}

}  // namespace meshchat::nodes
