// Media role: MediaCore on an LMDB store (DurableService), with the blob store the options
// choose and, when configured, the HTTP endpoint for signed links.
//
// Options (--opt KEY=VALUE): media=localdir|rados (default localdir, under DATA/media);
// ceph_conf, ceph_pool (meshchat), ceph_user (admin), ceph_timeout_s (5); max_mb (64);
// media_types (comma-separated allowed content types; default: common image/video/audio/pdf);
// http_listen=HOST:PORT and http_base=URL prefix clients are given; upload_grace_s,
// retention_s.
#pragma once

#include <memory>
#include <mutex>

#include "nodes/media/media_core.h"
#include "nodes/media/media_http.h"
#include "nodes/shard/durable_service.h"
#include "router/hash_ring.h"
#include "store/blob_store.h"

namespace meshchat::nodes {

// Times every blob store call (RADOS or disk latency for the metrics). Thread-safe: the HTTP
// thread reads through it too.
class TimedBlobStore final : public store::BlobStore {
 public:
  explicit TimedBlobStore(std::unique_ptr<store::BlobStore> inner) : inner_(std::move(inner)) {}
  Status Write(std::string_view id, uint64_t offset, std::string_view data) override;
  Result<size_t> Read(std::string_view id, uint64_t offset, std::span<char> out) override;
  Status Remove(std::string_view id, uint64_t size) override;
  const char* Kind() const override { return inner_->Kind(); }
  bool Shared() const override { return inner_->Shared(); }
  void WriteMetrics(MetricsText& m) const;

 private:
  std::unique_ptr<store::BlobStore> inner_;
  mutable std::mutex mu_;
  LatencyBuckets write_, read_;
};

// Built before the service (base-from-member): the core refers to the ring and the blobs.
struct MediaParts {
  explicit MediaParts(const NodeContext& ctx);
  router::HashRing media;
  std::unique_ptr<TimedBlobStore> blobs;
};

class MediaService final : private MediaParts, public DurableService<MediaCore> {
 public:
  explicit MediaService(NodeContext& ctx);
  void Start() override;
  void WriteMetrics(MetricsText& m) const override;
  void RebuildRings() override {
    media = router::HashRing(ctx_.map.IdsWithRole(router::Role::kMedia));
  }

 private:
  NodeContext& ctx_;
  std::unique_ptr<MediaHttpServer> http_;
};

}  // namespace meshchat::nodes
