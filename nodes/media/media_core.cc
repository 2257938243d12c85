#include "nodes/media/media_core.h"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>

#include "codec/msgpack_view.h"
#include "codec/token.h"
#include "nodes/shard/records.h"

namespace meshchat::nodes {

using codec::DecodeStatus;
using codec::ErrorCode;
using codec::FrameType;
using codec::MeshType;

namespace {
constexpr size_t kHashReadBytes = 1 << 20;

// The client was already told (not found): only a store error fails the batch.
Status Answered(const Status& s) {
  return s.code() == Code::kNotFound ? Status::Ok() : s;
}
}  // namespace

std::string EncodeMeta(const MediaMeta& m) {
  std::string s;
  codec::Writer(s)
      .Array(9)
      .Str(m.owner)
      .Uint(m.size)
      .Str(m.type)
      .Bin(m.sha256)
      .Uint(m.created_ms)
      .Uint(m.next)
      .Bool(m.done)
      .Uint(m.refs)
      .Uint(m.gc_at_ms);
  return s;
}

bool DecodeMeta(std::string_view in, MediaMeta& out) {
  msgpack::zone zone;
  msgpack::object o;
  codec::UnpackLimits limits;
  limits.array = 9;
  limits.map = 0;
  limits.depth = 1;
  if (codec::BoundedUnpack(in, zone, o, limits) != DecodeStatus::kOk) return false;
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 9) return false;
  const msgpack::object* f = o.via.array.ptr;
  return codec::ReadStr(&f[0], out.owner, codec::kMaxIdBytes) == DecodeStatus::kOk &&
         codec::ReadUint(&f[1], out.size) == DecodeStatus::kOk &&
         codec::ReadStr(&f[2], out.type, codec::kMaxMediaTypeBytes) == DecodeStatus::kOk &&
         codec::ReadBytes(&f[3], out.sha256, codec::kSha256Bytes) == DecodeStatus::kOk &&
         codec::ReadUint(&f[4], out.created_ms) == DecodeStatus::kOk &&
         codec::ReadUint(&f[5], out.next) == DecodeStatus::kOk &&
         codec::ReadBool(&f[6], out.done) == DecodeStatus::kOk &&
         codec::ReadUint(&f[7], out.refs) == DecodeStatus::kOk &&
         codec::ReadUint(&f[8], out.gc_at_ms) == DecodeStatus::kOk;
}

MediaCore::MediaCore(MediaConfig cfg, const Clock& clock, store::KvStore& kv,
                     store::BlobStore& blobs, OwnerFn media_owner, PeerUpFn peer_up,
                     ChannelConfig channel_cfg)
    : cfg_(std::move(cfg)),
      clock_(clock),
      kv_(kv),
      blobs_(blobs),
      media_owner_(std::move(media_owner)),
      channel_(channel_cfg, kv, clock, std::move(peer_up)),
      handover_(cfg_.node_id, Tables(), kv, channel_) {
  SetHandoverHooks();
}

Status MediaCore::Load() {
  if (Status s = channel_.Load(); !s.ok()) return s;
  return handover_.Load();
}

void MediaCore::Fail(const Status& s) {
  if (!s.ok() && batch_error_.ok()) batch_error_ = s;
}

void MediaCore::Reply(const codec::Stamp& to, FrameType type, std::string body, Effects& fx) const {
  fx.ToClient(to, static_cast<uint8_t>(type), std::move(body));
}

void MediaCore::Error(const codec::Stamp& to, ErrorCode code, const std::string& msg,
                      const std::string& id, Effects& fx, std::optional<uint64_t> ref) const {
  codec::Error e{code, msg, ref, false};
  e.media = id;
  Reply(to, FrameType::kError, codec::Encode(e), fx);
}

void MediaCore::OnEnvelope(const std::string& from, codec::Envelope&& env, Effects& fx) {
  switch (env.type) {
    case MeshType::kClientFrame: {
      if (env.epoch > cfg_.epoch || env.key.empty() || media_owner_(env.key) != cfg_.node_id ||
          !handover_.Ready(env.key)) {
        codec::Envelope r;  // routed with another map, to the wrong node, or moving in: retry
        r.type = MeshType::kWrongOwner;
        r.key = env.key;
        r.stamp = env.stamp;
        fx.mesh.push_back({env.stamp.gateway.empty() ? from : env.stamp.gateway, std::move(r), 0});
        return;
      }
      return Fail(HandleFrame(env, fx));
    }
    case MeshType::kChanMsg:
      Fail(channel_.OnMessage(from, env, [&](const std::string& f, std::string_view p) {
        return HandleChannel(f, p);
      }));
      return StepHandover(fx);
    case MeshType::kChanAck: return Fail(channel_.OnAck(from, env, fx));
    default: return;
  }
}

Status MediaCore::HandleFrame(const codec::Envelope& env, Effects& fx) {
  std::string id;
  if (!codec::UnHex(env.key, id, codec::kMediaIdBytes))
    return Status::Ok();  // the gateway makes the key; a bad one is not from a gateway of ours
  if (env.ftype == static_cast<uint8_t>(FrameType::kUploadBegin)) return Begin(env, id, fx);
  std::string_view prefix, body;
  if (!codec::SplitMediaId(env.body, prefix, body) || prefix != id) return Status::Ok();
  switch (static_cast<FrameType>(env.ftype)) {
    case FrameType::kUploadChunk: return Chunk(env, id, body, fx);
    case FrameType::kUploadStatus: return StatusOf(env, id, fx);
    case FrameType::kFetch: return Fetch(env, id, body, fx);
    case FrameType::kMediaLinkReq: return Link(env, id, body, fx);
    default: return Status::Ok();
  }
}

Result<MediaMeta> MediaCore::Load(const std::string& id) {
  auto v = kv_.Get(kMediaTable, id);
  if (!v.ok()) return v.status();
  MediaMeta m;
  if (!DecodeMeta(*v, m)) return Status(Code::kInvalid, "corrupt media record");
  return m;
}

Status MediaCore::Save(const std::string& id, const MediaMeta& m, uint64_t old_gc_at) {
  if (old_gc_at != m.gc_at_ms) {
    if (old_gc_at != 0)
      if (Status s = kv_.Del(kGcTable, store::BigEndian64(old_gc_at) + id); !s.ok()) return s;
    if (Status s = kv_.Put(kGcTable, store::BigEndian64(m.gc_at_ms) + id, ""); !s.ok()) return s;
  }
  return kv_.Put(kMediaTable, id, EncodeMeta(m));
}

Result<uint64_t> MediaCore::OpenUploads(const std::string& user) {
  auto v = kv_.Get(kOpenTable, user);
  if (!v.ok())
    return v.status().code() == Code::kNotFound ? Result<uint64_t>(uint64_t{0}) : v.status();
  std::vector<uint64_t> n;
  if (!DecodeUints(*v, n, 1)) return Status(Code::kInvalid, "corrupt open-upload count");
  return n[0];
}

Status MediaCore::AddOpenUploads(const std::string& user, int delta) {
  auto n = OpenUploads(user);
  if (!n.ok()) return n.status();
  const uint64_t now = delta < 0 && *n == 0 ? 0 : *n + static_cast<uint64_t>(delta);
  return now == 0 ? kv_.Del(kOpenTable, user) : kv_.Put(kOpenTable, user, EncodeUints({now}));
}

Status MediaCore::Forget(const std::string& id, const MediaMeta& m) {
  if (!m.done)
    if (Status s = AddOpenUploads(m.owner, -1); !s.ok()) return s;
  if (Status s = kv_.Del(kGcTable, store::BigEndian64(m.gc_at_ms) + id); !s.ok()) return s;
  return kv_.Del(kMediaTable, id);
}

codec::UploadState MediaCore::StateOf(const std::string& id, const MediaMeta& m,
                                      uint64_t ref) const {
  codec::UploadState st{ref, id, m.size, m.next, cfg_.chunk_bytes, m.done, m.type, m.sha256, ""};
  if (m.done)
    st.ticket = codec::MediaTicket(codec::MediaRef{id, m.size, m.type, m.sha256, ""}, cfg_.secret);
  return st;
}

Status MediaCore::Begin(const codec::Envelope& env, const std::string& id, Effects& fx) {
  codec::UploadBegin b;
  const auto ds = codec::Decode(env.body, b);
  if (ds != DecodeStatus::kOk) {
    Error(env.stamp, ErrorCode::kBadRequest,
          "upload_begin body must be {ref, size, type, sha256 (32 bytes)}", "", fx);
    return Status::Ok();
  }
  if (b.size == 0) {
    Error(env.stamp, ErrorCode::kBadRequest, "size must be > 0", "", fx, b.ref);
    return Status::Ok();
  }
  if (b.size > cfg_.max_bytes) {
    Error(env.stamp, ErrorCode::kMediaTooLarge,
          "media over " + std::to_string(cfg_.max_bytes) + " bytes", "", fx, b.ref);
    return Status::Ok();
  }
  if (std::find(cfg_.types.begin(), cfg_.types.end(), b.type) == cfg_.types.end()) {
    Error(env.stamp, ErrorCode::kMediaType, "content type '" + b.type + "' not allowed", "", fx,
          b.ref);
    return Status::Ok();
  }
  auto open = OpenUploads(env.stamp.user);
  if (!open.ok()) return open.status();
  if (*open >= cfg_.max_open_uploads) {
    Error(env.stamp, ErrorCode::kRateLimited,
          "too many unfinished uploads; finish or wait for them to expire", "", fx, b.ref);
    return Status::Ok();
  }
  if (auto have = Load(id); have.ok() || have.status().code() != Code::kNotFound) {
    // 128 random bits do not collide; a store error does happen. Either way: retry.
    Error(env.stamp, ErrorCode::kServiceUnavailable, "could not start the upload; retry", "", fx,
          b.ref);
    return have.ok() ? Status::Ok() : have.status();
  }
  MediaMeta m;
  m.owner = env.stamp.user;
  m.size = b.size;
  m.type = b.type;
  m.sha256 = b.sha256;
  m.created_ms = static_cast<uint64_t>(clock_.WallMs());
  m.gc_at_ms = m.created_ms + static_cast<uint64_t>(cfg_.upload_grace_ms);
  if (Status s = Save(id, m, 0); !s.ok()) return s;
  if (Status s = AddOpenUploads(m.owner, +1); !s.ok()) return s;
  ++counters_.begun;
  Reply(env.stamp, FrameType::kUploadState, codec::Encode(StateOf(id, m, b.ref)), fx);
  return Status::Ok();
}

Status MediaCore::Chunk(const codec::Envelope& env, const std::string& id, std::string_view body,
                        Effects& fx) {
  codec::UploadChunk c;
  const auto ds = codec::Decode(body, c);
  if (ds == DecodeStatus::kTooLarge) {
    Error(env.stamp, ErrorCode::kMediaTooLarge,
          "chunk over " + std::to_string(codec::kMaxChunkBytes) + " bytes", id, fx);
    return Status::Ok();
  }
  if (ds != DecodeStatus::kOk || c.data.empty()) {
    Error(env.stamp, ErrorCode::kBadRequest, "upload_chunk body must be {off, data (not empty)}",
          id, fx);
    return Status::Ok();
  }
  auto m = Visible(env, id, nullptr, fx);
  if (!m.ok()) return Answered(m.status());
  const uint64_t end = c.off + c.data.size();
  if (m->done || (c.off < m->next && end <= m->next)) {  // a resend of what is stored
    Reply(env.stamp, FrameType::kUploadState, codec::Encode(StateOf(id, *m, 0)), fx);
    return Status::Ok();
  }
  if (end > m->size || end < c.off) {
    Error(env.stamp, ErrorCode::kMediaTooLarge,
          "chunk ends past the declared size " + std::to_string(m->size), id, fx);
    return Status::Ok();
  }
  if (c.off != m->next) {
    Error(env.stamp, ErrorCode::kBadOffset,
          "chunk at offset " + std::to_string(c.off) + "; expected " + std::to_string(m->next), id,
          fx);
    return Status::Ok();
  }
  if (Status s = blobs_.Write(codec::HexOf(id), c.off, c.data); !s.ok()) {
    // Every chunk a client resends fails the same way while the store is down: log once a
    // second at most (the metrics count them all).
    if (const int64_t now = clock_.MonoMs(); now - last_store_log_ms_ >= 1000) {
      last_store_log_ms_ = now;
      spdlog::warn("media write {} failed: {} ({} failures so far)", codec::HexOf(id), s.ToString(),
                   counters_.store_errors + 1);
    }
    ++counters_.store_errors;
    Error(env.stamp, ErrorCode::kMediaUnavailable, "media store unavailable; resend this chunk", id,
          fx);
    return Status::Ok();
  }
  const uint64_t old_gc = m->gc_at_ms;
  counters_.bytes_in += c.data.size();
  m->next = end;
  if (m->next == m->size) {
    auto same = HashMatches(id, *m);
    if (!same.ok()) {
      Error(env.stamp, ErrorCode::kMediaUnavailable,
            "media store unavailable while verifying; resend the last chunk", id, fx);
      return Status::Ok();  // `next` unchanged: the resend verifies again
    }
    if (!*same) {
      if (Status s = blobs_.Remove(codec::HexOf(id), m->size); !s.ok())
        spdlog::warn("removing mismatched media {}: {}", codec::HexOf(id), s.ToString());
      Error(env.stamp, ErrorCode::kHashMismatch,
            "the bytes do not match the declared sha256; upload discarded", id, fx);
      m->gc_at_ms = old_gc;
      ++counters_.mismatched;
      return Forget(id, *m);
    }
    m->done = true;
    ++counters_.completed;
    if (Status s = AddOpenUploads(m->owner, -1); !s.ok()) return s;
  }
  if (Status s = Save(id, *m, old_gc); !s.ok()) return s;
  Reply(env.stamp, FrameType::kUploadState, codec::Encode(StateOf(id, *m, 0)), fx);
  return Status::Ok();
}

Result<bool> MediaCore::HashMatches(const std::string& id, const MediaMeta& m) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
    return Status(Code::kIo, "sha256 init");
  std::string buf(static_cast<size_t>(std::min<uint64_t>(kHashReadBytes, m.size)), '\0');
  const std::string hex = codec::HexOf(id);
  uint64_t off = 0;
  while (off < m.size) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), m.size - off));
    auto got = blobs_.Read(hex, off, std::span<char>(buf.data(), want));
    if (!got.ok()) return got.status();
    if (*got == 0) return false;  // shorter than declared
    EVP_DigestUpdate(ctx.get(), buf.data(), *got);
    off += *got;
  }
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), out, &len) != 1) return Status(Code::kIo, "sha256 final");
  return std::string_view(reinterpret_cast<const char*>(out), len) == m.sha256;
}

Status MediaCore::StatusOf(const codec::Envelope& env, const std::string& id, Effects& fx) {
  auto m = Visible(env, id, nullptr, fx);
  if (!m.ok()) return Answered(m.status());
  Reply(env.stamp, FrameType::kUploadState, codec::Encode(StateOf(id, *m, 0)), fx);
  return Status::Ok();
}

Result<MediaMeta> MediaCore::Visible(const codec::Envelope& env, const std::string& id,
                                     const std::string* ticket, Effects& fx) {
  auto m = Load(id);
  const bool ok =
      m.ok() && (ticket ? MayRead(env.stamp, id, *m, *ticket) : m->owner == env.stamp.user);
  if (ok) return m;
  Error(env.stamp, ErrorCode::kMediaNotFound, ticket ? "no such media" : "no such upload", id, fx);
  if (!m.ok() && m.status().code() != Code::kNotFound) return m.status();  // a store error
  return Status(Code::kNotFound, "answered");
}

bool MediaCore::MayRead(const codec::Stamp& who, const std::string& id, const MediaMeta& m,
                        std::string_view ticket) const {
  if (!m.done) return false;
  if (m.owner == who.user) return true;
  const codec::MediaRef ref{id, m.size, m.type, m.sha256, std::string(ticket)};
  return codec::VerifyMediaTicket(ref, cfg_.secret) ||
         (!cfg_.previous_secret.empty() && codec::VerifyMediaTicket(ref, cfg_.previous_secret));
}

Status MediaCore::Fetch(const codec::Envelope& env, const std::string& id, std::string_view body,
                        Effects& fx) {
  codec::Fetch f;
  if (codec::Decode(body, f) != DecodeStatus::kOk) {
    Error(env.stamp, ErrorCode::kBadRequest, "fetch body must be {ticket, off, len}", id, fx);
    return Status::Ok();
  }
  auto m = Visible(env, id, &f.ticket, fx);
  if (!m.ok()) return Answered(m.status());
  if (f.off > m->size) {
    Error(env.stamp, ErrorCode::kBadOffset, "offset past the end", id, fx);
    return Status::Ok();
  }
  uint64_t len = f.len == 0 ? cfg_.chunk_bytes : std::min<uint64_t>(f.len, cfg_.chunk_bytes);
  len = std::min<uint64_t>(len, m->size - f.off);
  codec::MediaData d{id, f.off, m->size, m->type, std::string(static_cast<size_t>(len), '\0')};
  auto got = blobs_.Read(codec::HexOf(id), f.off, d.data);
  if (!got.ok()) {
    const bool gone = got.status().code() == Code::kNotFound;
    Error(env.stamp, gone ? ErrorCode::kMediaNotFound : ErrorCode::kMediaUnavailable,
          gone ? "no such media" : "media store unavailable; retry", id, fx);
    return Status::Ok();
  }
  d.data.resize(*got);
  counters_.bytes_out += *got;
  Reply(env.stamp, FrameType::kMediaData, codec::Encode(d), fx);
  return Status::Ok();
}

Status MediaCore::Link(const codec::Envelope& env, const std::string& id, std::string_view body,
                       Effects& fx) {
  codec::MediaLinkReq req;
  if (codec::Decode(body, req) != DecodeStatus::kOk) {
    Error(env.stamp, ErrorCode::kBadRequest, "media_link_req body must be {ticket, ttl}", id, fx);
    return Status::Ok();
  }
  auto m = Visible(env, id, &req.ticket, fx);
  if (!m.ok()) return Answered(m.status());
  if (cfg_.http_base.empty()) {
    Error(env.stamp, ErrorCode::kServiceUnavailable, "this media node serves no HTTP links", id,
          fx);
    return Status::Ok();
  }
  const uint64_t ttl = std::min(req.ttl == 0 ? cfg_.link_ttl_s : req.ttl, cfg_.max_link_ttl_s);
  const uint64_t exp = static_cast<uint64_t>(clock_.WallMs() / 1000) + ttl;
  const std::string hex = codec::HexOf(id);
  std::string type = m->type;  // [a-z0-9.+/-]: escape the two that mean something in a query
  std::string type_q;
  for (char c : type) type_q += c == '/' ? "%2F" : c == '+' ? "%2B" : std::string(1, c);
  const std::string url =
      cfg_.http_base + "/media/" + hex + "?u=" + env.stamp.user + "&e=" + std::to_string(exp) +
      "&n=" + std::to_string(m->size) + "&t=" + type_q +
      "&s=" + codec::UrlSignature(hex, env.stamp.user, exp, m->size, type, cfg_.secret);
  ++counters_.links;
  Reply(env.stamp, FrameType::kMediaLink, codec::Encode(codec::MediaLink{id, url, exp}), fx);
  return Status::Ok();
}

bool MediaCore::CheckUrl(std::string_view id_hex, std::string_view user, uint64_t exp,
                         uint64_t size, std::string_view type, std::string_view sig,
                         std::string_view secret, std::string_view previous, uint64_t now_s) {
  if (exp < now_s) return false;
  return codec::SameMac(codec::UrlSignature(id_hex, user, exp, size, type, secret), sig) ||
         (!previous.empty() &&
          codec::SameMac(codec::UrlSignature(id_hex, user, exp, size, type, previous), sig));
}

Status MediaCore::ApplyRef(std::string_view payload) {
  MediaRefRecord r;
  if (!DecodeRecord(payload, r)) {
    spdlog::error("undecodable media reference skipped");  // would block the channel forever
    return Status::Ok();
  }
  auto m = Load(r.id);
  if (!m.ok()) return m.status().code() == Code::kNotFound ? Status::Ok() : m.status();
  const uint64_t old_gc = m->gc_at_ms;
  // Kept as long as the longest-lived reference needs it: the retention after a plain
  // message, until a disappearing message vanishes, or for good when a permanent chat's
  // history holds it (kKeptForever sorts last in the collection index: never due). The first
  // reference replaces the upload grace period.
  const uint64_t until = r.until_ms ? r.until_ms
                                    : static_cast<uint64_t>(clock_.WallMs()) +
                                          static_cast<uint64_t>(cfg_.retention_ms);
  m->gc_at_ms = m->refs == 0 ? until : std::max(old_gc, until);
  ++m->refs;
  return Save(r.id, *m, old_gc);
}

void MediaCore::OnPeerUp(const std::string& node, bool, Effects& fx) {
  Fail(channel_.OnPeerUp(node, fx));
}

void MediaCore::OnTick(Effects& fx) {
  Fail(channel_.OnTick(fx));
  StepHandover(fx);
  if (handover_.active()) return;  // collection waits: rows half shipped must not be judged
  Fail(RemoveMovedBlobs());
  const uint64_t now = static_cast<uint64_t>(clock_.WallMs());
  auto due = store::DueKeys(kv_, kGcTable, now, cfg_.gc_batch);
  if (!due.ok()) return Fail(due.status());
  for (const auto& mark : *due) {
    const std::string id = mark.substr(8);
    auto m = Load(id);
    if (!m.ok()) {
      if (m.status().code() != Code::kNotFound) return Fail(m.status());
      continue;
    }
    // Bytes first: if the store is down the record stays and the next tick tries again.
    if (Status r = blobs_.Remove(codec::HexOf(id), m->size); !r.ok()) {
      if (const int64_t now = clock_.MonoMs(); now - last_store_log_ms_ >= 1000) {
        last_store_log_ms_ = now;
        spdlog::warn("media gc {}: {}", codec::HexOf(id), r.ToString());
      }
      return;
    }
    if (Status f = Forget(id, *m); !f.ok()) return Fail(f);
    ++collected_;
  }
}

Status MediaCore::EndBatch(Effects& fx) {
  Status s = channel_.CommitBatch(batch_error_, fx);
  if (!s.ok()) {
    handover_.Reload();  // its positions went back with the batch
  }
  return s;
}

void MediaCore::OnStoreLost(Effects& fx) {
  fx.Clear();
  channel_.OnCommitFailed();
  handover_.Reload();
}

}  // namespace meshchat::nodes
