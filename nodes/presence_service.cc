#include "nodes/presence_service.h"

#include <spdlog/spdlog.h>

#include <filesystem>

namespace meshchat::nodes {

PresenceService::PresenceService(NodeContext& ctx)
    : ctx_(ctx), pub_(ctx.mesh.context(), zmq::socket_type::pub) {
  const std::string dir = ctx.data_dir + "/lmdb";
  std::filesystem::create_directories(dir);
  auto kv = store::LmdbKvStore::Open(dir, {});
  if (!kv.ok()) throw std::runtime_error(kv.status().ToString());
  kv_ = std::move(kv).value();
  PresenceConfig cfg;
  cfg.node_id = ctx.self.id;
  cfg.epoch = ctx.map.epoch;
  if (auto it = ctx.options.find("online_ms"); it != ctx.options.end())
    cfg.online_ms = std::stoll(it->second);
  if (auto it = ctx.options.find("presence_throttle_ms"); it != ctx.options.end())
    cfg.throttle_ms = std::stoll(it->second);
  core_ = std::make_unique<PresenceCore>(cfg, ctx.clock, *kv_);
}

void PresenceService::Start() {
  pub_.set(zmq::sockopt::linger, 0);
  pub_.set(zmq::sockopt::sndhwm, 100000);
  pub_.bind(ctx_.self.pub);
  ctx_.reactor.Every(250, [this] {
    core_->OnTick(published_);
    Apply();
  });
  ctx_.reactor.Every(1000, [this] {
    if (Status s = core_->Flush(); !s.ok())
      spdlog::warn("storing last-seen times failed (will retry): {}", s.ToString());
  });
}

void PresenceService::OnEnvelope(const std::string& from, codec::Envelope&& env) {
  core_->OnEnvelope(from, std::move(env), fx_, published_);
  Apply();
}

void PresenceService::Apply() {
  for (auto& m : fx_.mesh) (void)ctx_.mesh.Send(m.node, std::move(m.env));
  fx_.Clear();
  for (auto& p : published_) {
    // Two frames: "user\0" (subscriptions match it exactly) and the presence body.
    const std::string topic = p.user + '\0';
    (void)pub_.send(zmq::buffer(topic), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    (void)pub_.send(zmq::buffer(p.body), zmq::send_flags::dontwait);
  }
  published_.clear();
}

}  // namespace meshchat::nodes
