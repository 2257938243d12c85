// The media owner: the media node a media id hashes to (on the media ring). It keeps each
// item's metadata (owner, size, type, sha256, how far the upload got, references) in LMDB and
// its bytes in a blob store (local directory or Ceph RADOS, injected).
//
// Upload: begin (the gateway drew the random id) -> chunks at the next offset, each written
// durably to the blob store before the metadata moves on -> on the last byte the blob is read
// back and hashed; a match completes it and hands the uploader a ticket (an HMAC over id,
// size, type and hash), a mismatch deletes it. Nothing is served before completion, so a
// half-written or failed upload is never visible. Resuming = asking upload_status and going
// on from `next`; a resent chunk that is already stored is acknowledged again.
//
// Access: the uploader, or whoever presents the ticket (it travels only in messages, to the
// chat's participants). Anyone else gets media_not_found, exactly as for an id that does not
// exist. Garbage collection: incomplete uploads and media never referenced by a message go
// `upload_grace` after creation; referenced media `retention` after the last reference.
#pragma once

#include <string>
#include <vector>

#include "codec/media_messages.h"
#include "nodes/shard/channel.h"
#include "nodes/shard/handover.h"
#include "nodes/shard/shard_context.h"
#include "store/blob_store.h"

namespace meshchat::nodes {

struct MediaConfig {
  std::string node_id;
  uint64_t epoch = 1;
  std::string secret;                // signs tickets and URLs
  std::string previous_secret;       // being rotated out: still verifies them
  uint64_t max_bytes = 64ull << 20;  // largest upload
  uint64_t chunk_bytes = 256 << 10;  // largest chunk taken / range served
  std::vector<std::string> types = {"image/jpeg", "image/png",      "image/gif", "image/webp",
                                    "image/heic", "video/mp4",      "audio/ogg", "audio/mpeg",
                                    "audio/mp4",  "application/pdf"};
  int64_t upload_grace_ms = 24LL * 3600 * 1000;
  int64_t retention_ms = 30LL * 24 * 3600 * 1000;
  uint64_t link_ttl_s = 3600;       // default lifetime of an HTTP link...
  uint64_t max_link_ttl_s = 86400;  // ...and the most a client may ask for
  std::string http_base;            // e.g. http://127.0.0.1:9300 ("" = no HTTP links)
  size_t gc_batch = 64;             // items collected per tick at most
  uint64_t max_open_uploads = 16;   // unfinished uploads per user on this node
};

// What the store keeps per media id.
struct MediaMeta {
  std::string owner;
  uint64_t size = 0;
  std::string type;
  std::string sha256;
  uint64_t created_ms = 0;
  uint64_t next = 0;  // bytes durably stored
  bool done = false;
  uint64_t refs = 0;  // messages that referenced it
  uint64_t gc_at_ms = 0;
  bool operator==(const MediaMeta&) const = default;
};
std::string EncodeMeta(const MediaMeta& m);
bool DecodeMeta(std::string_view in, MediaMeta& out);

class MediaCore {
 public:
  using OwnerFn = nodes::OwnerFn;
  using PeerUpFn = nodes::PeerUpFn;

  MediaCore(MediaConfig cfg, const Clock& clock, store::KvStore& kv, store::BlobStore& blobs,
            OwnerFn media_owner, PeerUpFn peer_up, ChannelConfig channel_cfg = {});

  Status Load();
  Status OnMapChanged(const MapChange& change, Effects& fx);
  // Its key hand-over: DurableService asks it whether this node joins, and how much is left.
  Handover& handover() { return handover_; }
  const Handover& handover() const { return handover_; }
  void OnEnvelope(const std::string& from, codec::Envelope&& env, Effects& fx);
  void OnPeerUp(const std::string& node, bool restarted, Effects& fx);
  void OnPeerDown(const std::string&) {}
  void OnTick(Effects& fx);  // resends channel acks' peers, collects garbage
  Status EndBatch(Effects& fx);
  uint64_t Unacked() const { return channel_.Unacked(); }
  void SetEpoch(uint64_t epoch) { cfg_.epoch = epoch; }  // a newer map was taken
  void OnStoreLost(Effects& fx);
  uint64_t Connections() const { return 0; }
  uint64_t collected() const { return collected_; }
  struct Counters {
    uint64_t begun = 0, completed = 0, mismatched = 0, bytes_in = 0, bytes_out = 0,
             store_errors = 0, links = 0;
  };
  const Counters& counters() const { return counters_; }

  // For the HTTP endpoint: is this URL's signature valid (by `secret`, or by `previous` if
  // not empty) and unexpired at `now_s`?
  static bool CheckUrl(std::string_view id_hex, std::string_view user, uint64_t exp, uint64_t size,
                       std::string_view type, std::string_view sig, std::string_view secret,
                       std::string_view previous, uint64_t now_s);

 private:
  static constexpr std::string_view kMediaTable = "media";     // id (raw) -> MediaMeta
  static constexpr std::string_view kGcTable = "mediagc";      // gc_at (BE64) + id -> ""
  static constexpr std::string_view kOpenTable = "mediaopen";  // user -> unfinished uploads
  // be64(when) + id (raw) -> [size]: bytes of items that moved to another node, removed from
  // our own blob store once that is long durable.
  static constexpr std::string_view kMovedTable = "mediamoved";
  static std::vector<HandoverTable> Tables();
  void SetHandoverHooks();
  Status HandleChannel(const std::string& from, std::string_view payload);
  void StepHandover(Effects& fx);
  Status RemoveMovedBlobs();
  Status HandleFrame(const codec::Envelope& env, Effects& fx);
  Status Begin(const codec::Envelope& env, const std::string& id, Effects& fx);
  Status Chunk(const codec::Envelope& env, const std::string& id, std::string_view body,
               Effects& fx);
  Status StatusOf(const codec::Envelope& env, const std::string& id, Effects& fx);
  Status Fetch(const codec::Envelope& env, const std::string& id, std::string_view body,
               Effects& fx);
  Status Link(const codec::Envelope& env, const std::string& id, std::string_view body,
              Effects& fx);
  Status ApplyRef(std::string_view payload);
  // Reads back the whole blob and compares its sha256 with the declared one.
  Result<bool> HashMatches(const std::string& id, const MediaMeta& m);
  Result<MediaMeta> Load(const std::string& id);  // kNotFound if absent
  Status Save(const std::string& id, const MediaMeta& m, uint64_t old_gc_at);
  Status Forget(const std::string& id, const MediaMeta& m);
  // Unfinished uploads per user: counted so one user cannot open unbounded many.
  Result<uint64_t> OpenUploads(const std::string& user);
  Status AddOpenUploads(const std::string& user, int delta);
  // The item if `env`'s user may see it: with `ticket`, a reader (owner or ticket holder) of
  // complete media; without, its uploader. Otherwise the client is told media_not_found and
  // the result is kNotFound (or the store's error).
  Result<MediaMeta> Visible(const codec::Envelope& env, const std::string& id,
                            const std::string* ticket, Effects& fx);
  bool MayRead(const codec::Stamp& who, const std::string& id, const MediaMeta& m,
               std::string_view ticket) const;
  codec::UploadState StateOf(const std::string& id, const MediaMeta& m, uint64_t ref) const;
  void Reply(const codec::Stamp& to, codec::FrameType type, std::string body, Effects& fx) const;
  void Error(const codec::Stamp& to, codec::ErrorCode code, const std::string& msg,
             const std::string& id, Effects& fx, std::optional<uint64_t> ref = std::nullopt) const;
  void Fail(const Status& s);

  MediaConfig cfg_;
  const Clock& clock_;
  store::KvStore& kv_;
  store::BlobStore& blobs_;
  OwnerFn media_owner_;
  ReliableChannel channel_;
  Handover handover_;
  Status batch_error_;
  uint64_t collected_ = 0;
  Counters counters_;
  int64_t last_store_log_ms_ = -1'000'000;
};

}  // namespace meshchat::nodes
