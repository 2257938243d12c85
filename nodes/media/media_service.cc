#include "nodes/media/media_service.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <sstream>

#include "store/localdir_blob_store.h"
#include "store/rados_blob_store.h"

namespace meshchat::nodes {

namespace {
double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

Status TimedBlobStore::Write(std::string_view id, uint64_t offset, std::string_view data) {
  const auto t0 = std::chrono::steady_clock::now();
  Status s = inner_->Write(id, offset, data);
  std::lock_guard lock(mu_);
  write_.Observe(SecondsSince(t0));
  return s;
}

Result<size_t> TimedBlobStore::Read(std::string_view id, uint64_t offset, std::span<char> out) {
  const auto t0 = std::chrono::steady_clock::now();
  auto r = inner_->Read(id, offset, out);
  std::lock_guard lock(mu_);
  read_.Observe(SecondsSince(t0));
  return r;
}

Status TimedBlobStore::Remove(std::string_view id, uint64_t size) {
  return inner_->Remove(id, size);
}

void TimedBlobStore::WriteMetrics(MetricsText& m) const {
  std::lock_guard lock(mu_);
  write_.Write(m, "meshchat_media_store_write_seconds",
               "blob store write latency (RADOS op, or pwrite + fdatasync)");
  read_.Write(m, "meshchat_media_store_read_seconds", "blob store read latency");
}

MediaParts::MediaParts(const NodeContext& ctx) : media(ctx.map.IdsWithRole(router::Role::kMedia)) {
  const std::string kind = ctx.options.Text("media", "localdir");
  std::unique_ptr<store::BlobStore> store;
  if (kind == "localdir") {
    store = std::make_unique<store::LocalDirBlobStore>(ctx.data_dir + "/media");
  } else if (kind == "rados") {
    store::RadosOptions o;
    o.conf_file = ctx.options.Text("ceph_conf");
    if (o.conf_file.empty()) throw std::runtime_error("media=rados needs --opt ceph_conf=FILE");
    o.pool = ctx.options.Text("ceph_pool", o.pool);
    o.client = ctx.options.Text("ceph_user", o.client);
    o.op_timeout_s = static_cast<int>(ctx.options.Int("ceph_timeout_s", 5));
    auto rados = std::make_unique<store::RadosBlobStore>(o);
    // Not fatal: the node serves (and chat flows) while Ceph is down; uploads get a
    // retryable error and the store reconnects by itself.
    if (Status s = rados->Connect(); !s.ok())
      spdlog::warn("media: RADOS not reachable yet ({}); will retry", s.ToString());
    store = std::move(rados);
  } else {
    throw std::runtime_error("--opt media must be localdir or rados, not '" + kind + "'");
  }
  blobs = std::make_unique<TimedBlobStore>(std::move(store));
}

MediaService::MediaService(NodeContext& ctx)
    : MediaParts(ctx),
      DurableService<MediaCore>(
          ctx,
          [&ctx, this](store::KvStore& kv) {
            if (ctx.secret.empty()) throw std::runtime_error("a media node needs --secret-file");
            MediaConfig cfg;
            cfg.node_id = ctx.self.id;
            cfg.epoch = ctx.map.epoch;
            cfg.secret = ctx.secret;
            cfg.previous_secret = ctx.previous_secret;
            cfg.max_bytes = static_cast<uint64_t>(ctx.options.Int("max_mb", 64)) << 20;
            cfg.http_base = ctx.options.Text("http_base");
            if (auto types = ctx.options.Text("media_types"); !types.empty()) {
              cfg.types.clear();  // comma-separated content types
              std::stringstream ss(types);
              for (std::string t; std::getline(ss, t, ',');)
                if (!t.empty()) cfg.types.push_back(t);
            }
            cfg.upload_grace_ms = ctx.options.Int("upload_grace_s", 86400) * 1000;
            cfg.retention_ms = ctx.options.Int("retention_s", 2592000) * 1000;
            return std::make_unique<MediaCore>(
                cfg, ctx.clock, kv, *blobs,
                [this](std::string_view k) -> const std::string& { return media.Owner(k); },
                [&mesh = ctx.mesh](const std::string& n) { return mesh.IsUp(n); });
          }),
      ctx_(ctx) {}

void MediaService::WriteMetrics(MetricsText& m) const {
  DurableService<MediaCore>::WriteMetrics(m);
  const auto& c = core().counters();
  m.Counter("meshchat_media_uploads_begun_total", "uploads begun", c.begun);
  m.Counter("meshchat_media_uploads_completed_total", "uploads complete and verified", c.completed);
  m.Counter("meshchat_media_hash_mismatches_total", "uploads discarded: sha256 mismatch",
            c.mismatched);
  m.Counter("meshchat_media_bytes_in_total", "media bytes stored", c.bytes_in);
  m.Counter("meshchat_media_bytes_out_total", "media bytes served over the mesh", c.bytes_out);
  m.Counter("meshchat_media_store_errors_total", "blob store writes that failed", c.store_errors);
  m.Counter("meshchat_media_links_total", "signed HTTP links issued", c.links);
  m.Counter("meshchat_media_collected_total", "media garbage-collected", core().collected());
  blobs->WriteMetrics(m);
}

void MediaService::Start() {
  DurableService<MediaCore>::Start();
  const std::string listen = ctx_.options.Text("http_listen");
  if (listen.empty()) return;
  std::string host;
  uint16_t port = 0;
  if (!router::SplitHostPort(listen, host, port))
    throw std::runtime_error("--opt http_listen wants HOST:PORT, got '" + listen + "'");
  http_ = std::make_unique<MediaHttpServer>(host, port, *blobs, ctx_.secret, ctx_.previous_secret,
                                            ctx_.clock);
  spdlog::info("media: {} blob store, HTTP links on {}", blobs->Kind(), listen);
}

}  // namespace meshchat::nodes
