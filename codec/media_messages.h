// Media frames (docs/PROTOCOL.md, "Media"). Frames about one existing media item (chunk,
// status, fetch, link request) start with the 16 raw bytes of its id, then a msgpack map: the
// gateway routes them to the media id's shard from that prefix, without decoding the body.
// upload_begin has no prefix: the gateway draws a fresh random id and routes by it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "codec/client_messages.h"

namespace meshchat::codec {

inline constexpr size_t kMaxChunkBytes = 256 << 10;  // one upload chunk or fetched range
inline constexpr uint64_t kMaxUrlBytes = 1024;

struct UploadBegin {
  uint64_t ref = 0;  // chosen by the client, echoed in the answer (several uploads at once)
  uint64_t size = 0;
  std::string type;    // content type, e.g. image/jpeg
  std::string sha256;  // of the whole content, 32 raw bytes
  bool operator==(const UploadBegin&) const = default;
};

struct UploadState {
  uint64_t ref = 0;  // the begin's ref (0 when answering a chunk or status)
  std::string id;    // 16 raw bytes
  uint64_t size = 0;
  uint64_t next = 0;   // bytes durably stored: the next chunk's offset
  uint64_t chunk = 0;  // largest chunk the server takes
  bool done = false;   // complete and verified
  std::string type;
  std::string sha256;
  std::string ticket;  // when done: what a message's media reference carries
  bool operator==(const UploadState&) const = default;
};

struct UploadChunk {
  uint64_t off = 0;
  std::string data;
  bool operator==(const UploadChunk&) const = default;
};

struct Fetch {
  std::string ticket;  // from the media reference (the uploader's own ticket works too)
  uint64_t off = 0;
  uint64_t len = 0;  // at most kMaxChunkBytes
  bool operator==(const Fetch&) const = default;
};

struct MediaData {
  std::string id;
  uint64_t off = 0;
  uint64_t size = 0;  // of the whole media
  std::string type;
  std::string data;
  bool operator==(const MediaData&) const = default;
};

struct MediaLinkReq {
  std::string ticket;
  uint64_t ttl = 0;  // seconds the URL stays valid (0: the server's default); capped
  bool operator==(const MediaLinkReq&) const = default;
};

struct MediaLink {
  std::string id;
  std::string url;
  uint64_t exp = 0;  // unix seconds
  bool operator==(const MediaLink&) const = default;
};

// An empty map: upload_status has nothing but the id prefix.
struct UploadStatus {
  bool operator==(const UploadStatus&) const = default;
};

std::string Encode(const UploadBegin& m);
std::string Encode(const UploadState& m);
std::string Encode(const UploadChunk& m);
std::string Encode(const UploadStatus& m);
std::string Encode(const Fetch& m);
std::string Encode(const MediaData& m);
std::string Encode(const MediaLinkReq& m);
std::string Encode(const MediaLink& m);
DecodeStatus Decode(std::string_view body, UploadBegin& out);
DecodeStatus Decode(std::string_view body, UploadState& out);
DecodeStatus Decode(std::string_view body, UploadChunk& out);
DecodeStatus Decode(std::string_view body, UploadStatus& out);
DecodeStatus Decode(std::string_view body, Fetch& out);
DecodeStatus Decode(std::string_view body, MediaData& out);
DecodeStatus Decode(std::string_view body, MediaLinkReq& out);
DecodeStatus Decode(std::string_view body, MediaLink& out);

// clang-format off
constexpr FrameType TypeOf(const UploadBegin&) { return FrameType::kUploadBegin; }
constexpr FrameType TypeOf(const UploadState&) { return FrameType::kUploadState; }
constexpr FrameType TypeOf(const UploadChunk&) { return FrameType::kUploadChunk; }
constexpr FrameType TypeOf(const UploadStatus&) { return FrameType::kUploadStatus; }
constexpr FrameType TypeOf(const Fetch&) { return FrameType::kFetch; }
constexpr FrameType TypeOf(const MediaData&) { return FrameType::kMediaData; }
constexpr FrameType TypeOf(const MediaLinkReq&) { return FrameType::kMediaLinkReq; }
constexpr FrameType TypeOf(const MediaLink&) { return FrameType::kMediaLink; }
// clang-format on

// The id prefix of frames about one media item.
bool HasMediaIdPrefix(uint8_t type);
// A frame of such a type: the id, then the encoded message.
template <typename M>
std::string EncodeMediaFrame(std::string_view id, const M& m) {
  return EncodeFrame(static_cast<uint8_t>(TypeOf(m)), std::string(id) + Encode(m));
}
// Splits a prefixed body; false if it is shorter than an id.
bool SplitMediaId(std::string_view body, std::string_view& id, std::string_view& rest);

std::string HexOf(std::string_view raw);
// Lowercase hex of exactly `raw_len` bytes back to raw; false if it is anything else.
bool UnHex(std::string_view hex, std::string& raw, size_t raw_len);

// The ticket of a complete upload: HMAC over id, size, type and hash with the cluster secret.
std::string MediaTicket(const MediaRef& ref, std::string_view secret);
bool VerifyMediaTicket(const MediaRef& ref, std::string_view secret);

// The signature of an HTTP download URL: binds media id, user, expiry, size and type.
std::string UrlSignature(std::string_view id_hex, std::string_view user, uint64_t exp,
                         uint64_t size, std::string_view type, std::string_view secret);

}  // namespace meshchat::codec
