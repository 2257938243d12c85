// Bodies of client protocol frames (docs/PROTOCOL.md, "Messages"). Every body is one msgpack
// map with string keys; decoders ignore unknown keys and reject missing or mistyped ones.
// Decode never throws and never trusts a peer-supplied size (see msgpack_view.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "codec/frame.h"

namespace meshchat::codec {

inline constexpr uint64_t kProtocolVersion = 1;
inline constexpr size_t kMaxIdBytes = 64;  // user and device ids
inline constexpr size_t kMaxTokenBytes = 1024;
inline constexpr size_t kMaxBodyBytes = 65536;  // one chat message body
inline constexpr size_t kMaxErrorTextBytes = 256;

// User and device ids: 1..64 bytes of [A-Za-z0-9._@-].
bool IsValidId(std::string_view id);

enum class ErrorCode : uint16_t {
  kMalformedFrame = 1,
  kFrameTooLarge = 2,
  kUnknownType = 3,
  kNotAuthenticated = 4,
  kBadToken = 5,
  kTokenExpired = 6,
  kUnsupportedVersion = 7,
  kBadRequest = 8,
  kRecipientUnavailable = 9,
  kServiceUnavailable = 10,
  kAlreadyAuthenticated = 11,
  kHelloTimeout = 12,
  kShuttingDown = 13,
  kSlowConsumer = 14,
  kReplaced = 15,          // the same device connected again; this connection is closed
  kTooManyDevices = 16,    // the user already has the maximum number of devices connected
  kNotMember = 17,         // not a member of that group (or no such group: not revealed)
  kNotAdmin = 18,          // the operation needs a group admin
  kGroupExists = 19,       // create: the id is taken
  kGroupFull = 20,         // the member cap would be exceeded
  kRateLimited = 21,       // too many requests: retry after `retry_after` ms
  kMediaNotFound = 22,     // no such media, or not yours to see (the two are not told apart)
  kMediaTooLarge = 23,     // over the size limit, or a chunk past the declared size
  kMediaType = 24,         // content type not allowed
  kHashMismatch = 25,      // the bytes do not match the declared sha256: upload discarded
  kBadOffset = 26,         // a chunk not at the next expected offset (the error says which)
  kMediaUnavailable = 27,  // the media store is slow or down: retry later
  kMediaIncomplete = 28,   // a message references media that is not fully uploaded
};
const char* ErrorCodeName(ErrorCode c);

struct Hello {
  uint64_t version = kProtocolVersion;
  std::string token;
  bool operator==(const Hello&) const = default;
};

struct Welcome {
  std::string user;
  std::string device;
  uint64_t conn = 0;  // connection id, unique on this gateway
  std::string node;   // gateway node id
  uint64_t time_ms = 0;
  bool operator==(const Welcome&) const = default;
};

inline constexpr size_t kMediaIdBytes = 16;  // 128 random bits, made by the server
inline constexpr size_t kSha256Bytes = 32;
inline constexpr size_t kMaxMediaTypeBytes = 64;

// A reference to uploaded media, carried in a message instead of the bytes. `ticket` is the
// server's signature over the other fields, given to the uploader when the upload completed;
// it proves the media is complete, and whoever holds it (the uploader, the participants of a
// chat whose message carried it) may fetch the media.
struct MediaRef {
  std::string id;  // kMediaIdBytes raw bytes
  uint64_t size = 0;
  std::string type;
  std::string sha256;  // kSha256Bytes raw bytes
  std::string ticket;  // kSha256Bytes raw bytes
  bool operator==(const MediaRef&) const = default;
};

struct Send {
  std::string to;
  uint64_t cid = 0;  // client message id, chosen by the sender, > 0
  std::string body;
  bool app = false;  // sent by the app on its own (a retry), not by the user: not activity
  std::optional<MediaRef> media{};
  bool operator==(const Send&) const = default;
};

// The server's ack of a send: the message is stored durably and has its place in the chat.
struct Sent {
  uint64_t cid = 0;
  std::string to;
  uint64_t seq = 0;  // the message's sequence in the chat: its server id
  uint64_t ts = 0;   // server time (ms since epoch) the message was accepted
  bool operator==(const Sent&) const = default;
};

// A message for this device. `n` is its position in the user's inbox (what ack refers to);
// `chat` is the other party (the sender, or the recipient for the user's own messages sent
// from another device); `seq` is the message's sequence in that chat.
struct Push {
  uint64_t n = 0;
  std::string chat;
  std::string from;
  std::string from_device;
  uint64_t seq = 0;
  uint64_t cid = 0;
  uint64_t ts = 0;
  std::string body;
  std::string group;    // set for a group message (`chat` is then the group too)
  bool system = false;  // a group system message (membership, name): body is its text
  std::optional<MediaRef> media{};
  uint64_t exp = 0;  // disappearing message: delete it at this time (ms since epoch); 0 = never
  bool operator==(const Push&) const = default;
};

// Cumulative: this device has processed every push and receipt with position <= n.
struct Ack {
  uint64_t n = 0;
  bool operator==(const Ack&) const = default;
};

enum class ReceiptKind : uint8_t { kDelivered = 1, kRead = 2, kExpired = 3 };
const char* ReceiptKindName(ReceiptKind k);

// About messages this user sent in `chat`: every one of them with sequence <= seq has been
// delivered to (or read by) the other party; `expired` names one message that expired
// undelivered. Read implies delivered.
struct Receipt {
  uint64_t n = 0;
  std::string chat;
  ReceiptKind kind = ReceiptKind::kDelivered;
  uint64_t seq = 0;
  bool operator==(const Receipt&) const = default;
};

// The user has read `chat` up to sequence `seq` (`group`: chat is a group id).
struct Read {
  std::string chat;
  uint64_t seq = 0;
  bool group = false;
  bool app = false;  // not the user opening the chat (e.g. a sync): not activity
  bool operator==(const Read&) const = default;
};

struct Ping {
  uint64_t t = 0;  // opaque to the server: echoed back in pong
  bool operator==(const Ping&) const = default;
};

struct Bye {
  std::string reason;
  bool operator==(const Bye&) const = default;
};

struct Error {
  ErrorCode code = ErrorCode::kBadRequest;
  std::string msg;
  std::optional<uint64_t> cid;  // the send this error answers, when it answers one
  bool fatal = false;           // the server closes the connection after a fatal error
  uint64_t retry_after = 0;     // rate_limited: milliseconds to wait before trying again
  std::string media{};          // the media id (raw) this error is about, if any
  bool operator==(const Error&) const = default;
};

// A media reference as a nested map value (inside send, push, group_send).
std::string Encode(const MediaRef& m);
DecodeStatus Decode(std::string_view body, MediaRef& out);

std::string Encode(const Hello& m);
std::string Encode(const Welcome& m);
std::string Encode(const Send& m);
std::string Encode(const Sent& m);
std::string Encode(const Push& m);
std::string Encode(const Ack& m);
std::string Encode(const Receipt& m);
std::string Encode(const Read& m);
std::string Encode(const Ping& m);
std::string Encode(const Bye& m);
std::string Encode(const Error& m);

// Each returns kOk, kTooLarge (a field over its limit) or kMalformed. `body` is a frame body.
DecodeStatus Decode(std::string_view body, Hello& out);
DecodeStatus Decode(std::string_view body, Welcome& out);
DecodeStatus Decode(std::string_view body, Send& out);
DecodeStatus Decode(std::string_view body, Sent& out);
DecodeStatus Decode(std::string_view body, Push& out);
DecodeStatus Decode(std::string_view body, Ack& out);
DecodeStatus Decode(std::string_view body, Receipt& out);
DecodeStatus Decode(std::string_view body, Read& out);
DecodeStatus Decode(std::string_view body, Ping& out);
DecodeStatus Decode(std::string_view body, Bye& out);
DecodeStatus Decode(std::string_view body, Error& out);

// Frame type for each body, so callers can write EncodeFrame(TypeOf(m), Encode(m)).
// clang-format off
constexpr FrameType TypeOf(const Hello&) { return FrameType::kHello; }
constexpr FrameType TypeOf(const Welcome&) { return FrameType::kWelcome; }
constexpr FrameType TypeOf(const Send&) { return FrameType::kSend; }
constexpr FrameType TypeOf(const Sent&) { return FrameType::kSent; }
constexpr FrameType TypeOf(const Push&) { return FrameType::kPush; }
constexpr FrameType TypeOf(const Ack&) { return FrameType::kAck; }
constexpr FrameType TypeOf(const Bye&) { return FrameType::kBye; }
constexpr FrameType TypeOf(const Receipt&) { return FrameType::kReceipt; }
constexpr FrameType TypeOf(const Read&) { return FrameType::kRead; }
constexpr FrameType TypeOf(const Error&) { return FrameType::kError; }
// clang-format on

template <typename M>
std::string EncodeMessageFrame(const M& m) {
  return EncodeFrame(static_cast<uint8_t>(TypeOf(m)), Encode(m));
}

}  // namespace meshchat::codec
