// Client protocol framing (docs/PROTOCOL.md, "Framing"):
//
//   +-------------------+---------+------------------------+
//   | length: u32 BE    | type: u8| body: length-1 bytes   |
//   +-------------------+---------+------------------------+
//
// `length` counts the type byte plus the body. The gateway reads only this header; bodies are
// msgpack maps decoded by the workers (see client_messages.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace meshchat::codec {

inline constexpr size_t kHeaderSize = 5;
// Largest accepted `length` field (type byte + body). Checked before any buffer is grown.
inline constexpr uint32_t kMaxFrameLength = 1u << 20;  // 1 MiB
// Until a connection is authenticated its frames may be at most this long (a hello is a few
// hundred bytes): strangers cannot make a gateway buffer a megabyte each.
inline constexpr uint32_t kMaxHelloFrameLength = 8192;

enum class FrameType : uint8_t {
  kHello = 0x01,          // C->S
  kWelcome = 0x02,        // S->C
  kSend = 0x03,           // C->S
  kSent = 0x04,           // S->C  server ack of a send
  kPush = 0x05,           // S->C  a message for this device
  kAck = 0x06,            // C->S  client ack of a pushed message
  kPing = 0x07,           // C->S (server answers pong)
  kPong = 0x08,           // S->C
  kBye = 0x09,            // either direction
  kReceipt = 0x0A,        // S->C  delivered / read / expired, for messages this user sent
  kRead = 0x0B,           // C->S  the user has read a chat up to a sequence
  kGroup = 0x0C,          // C->S  a group operation (create, add, remove, info, ...)
  kGroupResult = 0x0D,    // S->C  its result
  kGroupSend = 0x0E,      // C->S  a message to a group
  kGroupHint = 0x10,      // S->C  a large group has messages up to a sequence: pull them
  kPresenceQuery = 0x11,  // C->S  presence of some users, now
  kPresence = 0x12,       // S->C  one user's presence (answer, or a change of a watched user)
  kPresenceWatch = 0x13,  // C->S  the users whose changes to push (the chats open on screen)
  kTyping = 0x14,         // C->S  the user is typing in a chat (or stopped)
  kTypingNotice = 0x15,   // S->C  someone is typing to you
  kPrivacy = 0x16,        // C->S  who may see this user's online / last seen
  kReconnect = 0x17,      // S->C  this gateway is draining: reconnect to another one
  kUploadBegin = 0x18,    // C->S  start an upload (size, type, sha256): the server picks the id
  kUploadState = 0x19,    // S->C  how far an upload got (answer to begin, chunk, status)
  kUploadChunk = 0x1A,    // C->S  [media id] bytes at an offset
  kUploadStatus = 0x1B,   // C->S  [media id] how far did my upload get?
  kFetch = 0x1C,          // C->S  [media id] a byte range of media
  kMediaData = 0x1D,      // S->C  the bytes
  kMediaLinkReq = 0x1E,   // C->S  [media id] a signed, expiring HTTP URL for the media
  kMediaLink = 0x1F,      // S->C  the URL
  kChatMode = 0x20,       // C->S  a one-to-one chat becomes temporary/permanent, or its timer
  kHistory = 0x21,        // C->S  a page of a permanent one-to-one chat's history
  kHistoryPage = 0x22,    // S->C  that page
  kError = 0x0F,          // S->C
};

// True for the types a client may send to the server.
bool IsClientToServer(uint8_t type);
// Media frames (0x18-0x1F) go to media nodes, not to the user's session shard.
bool IsMediaFrame(uint8_t type);
const char* FrameTypeName(uint8_t type);

enum class DecodeStatus { kOk, kNeedMore, kTooLarge, kMalformed };
const char* DecodeStatusName(DecodeStatus s);

struct FrameHeader {
  uint32_t length = 0;  // type byte + body
  uint8_t type = 0;
  size_t body_size() const { return length - 1; }
  size_t frame_size() const { return kHeaderSize - 1 + length; }
};

// Decodes the 5-byte header at the start of `in`. kNeedMore if fewer than 5 bytes,
// kMalformed if length == 0, kTooLarge if length > max_length. Never reads past `in`.
DecodeStatus DecodeHeader(std::string_view in, FrameHeader& out,
                          uint32_t max_length = kMaxFrameLength);

// A complete frame view into a caller-owned buffer.
struct FrameView {
  uint8_t type = 0;
  std::string_view body;
};

// Splits one whole frame off the front of `in`. On kOk, `consumed` is the frame's size.
DecodeStatus DecodeFrame(std::string_view in, FrameView& out, size_t& consumed,
                         uint32_t max_length = kMaxFrameLength);

// Appends a frame (header + body) to `out`.
void AppendFrame(std::string& out, uint8_t type, std::string_view body);
inline std::string EncodeFrame(uint8_t type, std::string_view body) {
  std::string s;
  AppendFrame(s, type, body);
  return s;
}

}  // namespace meshchat::codec
