// Media role: MediaCore on an LMDB store (DurableService), with the blob store the options
// choose and, when configured, the HTTP endpoint for signed links.
//
// Options (--opt KEY=VALUE): media=localdir|rados (default localdir, under DATA/media);
// ceph_conf, ceph_pool (meshchat), ceph_user (admin), ceph_timeout_s (5); max_mb (64);
// http_listen=HOST:PORT and http_base=URL prefix clients are given; upload_grace_s,
// retention_s.
#pragma once

#include <memory>

#include "nodes/durable_service.h"
#include "nodes/media_core.h"
#include "nodes/media_http.h"
#include "router/hash_ring.h"
#include "store/blob_store.h"

namespace meshchat::nodes {

// Built before the service (base-from-member): the core refers to the ring and the blobs.
struct MediaParts {
  explicit MediaParts(const NodeContext& ctx);
  router::HashRing media;
  std::unique_ptr<store::BlobStore> blobs;
};

class MediaService final : private MediaParts, public DurableService<MediaCore> {
 public:
  explicit MediaService(NodeContext& ctx);
  void Start() override;
  void WriteMetrics(MetricsText& m) const override;

 private:
  NodeContext& ctx_;
  std::unique_ptr<MediaHttpServer> http_;
};

}  // namespace meshchat::nodes
