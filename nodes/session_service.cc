#include "nodes/session_service.h"

#include <spdlog/spdlog.h>

#include <sys/epoll.h>

#include <filesystem>

namespace meshchat::nodes {

SessionService::SessionService(NodeContext& ctx)
    : ctx_(ctx), ring_(ctx.map.IdsWithRole(router::Role::kSession)) {
  const std::string dir = ctx.data_dir + "/lmdb";
  std::filesystem::create_directories(dir);
  store::LmdbOptions opts;
  opts.durable = false;  // commits are made durable by syncer_, off the loop thread
  opts.writemap = ctx.options.count("lmdb_writemap") && ctx.options.at("lmdb_writemap") == "1";
  if (auto it = ctx.options.find("lmdb_map_mb"); it != ctx.options.end())
    opts.map_size = std::stoull(it->second) << 20;
  auto kv = store::LmdbKvStore::Open(dir, opts);
  if (!kv.ok()) throw std::runtime_error(kv.status().ToString());
  kv_ = std::move(kv).value();
  // 1 ms between fsyncs: measured on the 2-core test machine, it doubled chats per CPU-second
  // at 2-5k msg/s for ~3 ms more median latency (bench/README.md).
  int64_t sync_interval_us = 1000;
  if (auto it = ctx.options.find("sync_interval_us"); it != ctx.options.end())
    sync_interval_us = std::stoll(it->second);
  syncer_ = std::make_unique<store::BackgroundSyncer>([env = &kv_->env()] { return env->Sync(); },
                                                      sync_interval_us);
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
  auto s = ctx_.reactor.AddFd(syncer_->notify_fd(), EPOLLIN, [this](uint32_t) { OnDurable(); });
  if (!s.ok()) throw std::runtime_error(s.ToString());
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
  for (auto& m : fx_.mesh) open_fx_.mesh.push_back(std::move(m));
  fx_.Clear();
  if (!syncing_) CommitOpenBatch();  // otherwise the batch grows until the fsync is done
}

void SessionService::CommitOpenBatch() {
  if (open_fx_.mesh.empty() && !kv_->dirty()) {
    (void)kv_->Commit();  // ends a read-only batch
    return;
  }
  if (Status s = core_->EndBatch(open_fx_); !s.ok()) {
    const int64_t now = ctx_.clock.MonoMs();
    if (now - last_commit_error_log_ms_ > 1000) {
      last_commit_error_log_ms_ = now;
      spdlog::error("store commit failed, nothing from this batch was acknowledged: {}",
                    s.ToString());
    }
    open_fx_.Clear();
    return;
  }
  waiting_.emplace_back(++batch_, std::move(open_fx_));
  open_fx_.Clear();
  syncer_->Request(batch_);
  syncing_ = true;
}

void SessionService::OnDurable() {
  Status err;
  const uint64_t durable = syncer_->Durable(err);
  if (!err.ok()) {
    // The disk refused: what waits may not be durable. Acknowledge none of it; clients and
    // channels retry, and the core resends from what the store holds.
    spdlog::error("store sync failed, {} batches not acknowledged: {}", waiting_.size(),
                  err.ToString());
    waiting_.clear();
    Effects dropped;
    core_->OnStoreLost(dropped);
    syncing_ = false;
    return;
  }
  while (!waiting_.empty() && waiting_.front().first <= durable) {
    for (auto& m : waiting_.front().second.mesh) {
      if (Status s = ctx_.mesh.Send(m.node, std::move(m.env)); !s.ok())
        spdlog::debug("mesh send to {} failed: {}", m.node, s.ToString());
    }
    waiting_.pop_front();
  }
  if (waiting_.empty()) {
    syncing_ = false;
    CommitOpenBatch();  // what accumulated during the fsync goes next
  }
}

}  // namespace meshchat::nodes
