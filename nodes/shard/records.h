// What session shards keep in their store and send each other over reliable channels.
// Encoded as fixed-position msgpack arrays (internal formats, never seen by clients), decoded
// with the same bounded reader as the wire codec: a corrupt record is an error, not a crash.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "codec/client_messages.h"

namespace meshchat::nodes {

// One entry of a user's inbox: a message (to or from the user) or a receipt for the user.
struct InboxEntry {
  enum class Kind : uint8_t { kMessage = 1, kReceipt = 2 };
  Kind kind = Kind::kMessage;
  std::string chat;         // the other party
  std::string from;         // message: sender user
  std::string from_device;  // message: sender device
  uint64_t seq = 0;         // message: its chat sequence; receipt: up to / which sequence
  uint64_t cid = 0;
  uint64_t ts = 0;
  uint64_t expires_ms = 0;  // wall clock; 0 = never
  codec::ReceiptKind receipt = codec::ReceiptKind::kDelivered;
  std::string body;
  std::string group;       // a group message (chat == group); empty for one-to-one
  bool system = false;     // group system message: body is its text
  std::string member;      // system message about membership: who joined or left...
  bool joined = false;     // ...and which
  std::string media;       // message: an encoded codec::MediaRef, or empty
  uint64_t vanish_ms = 0;  // disappearing message: deleted everywhere at this time; 0 = never
  bool operator==(const InboxEntry&) const = default;
};

struct DeviceState {
  std::string id;
  uint64_t cursor = 0;  // highest inbox position this device acknowledged
  uint64_t last_seen_ms = 0;
  bool operator==(const DeviceState&) const = default;
};

struct UserState {
  uint64_t next_n = 1;     // position the next inbox entry gets
  uint64_t max_acked = 0;  // highest position acknowledged by any device (delivered receipts)
  uint64_t kept_from = 1;  // entries below this were deleted
  std::vector<DeviceState> devices;
  DeviceState* Find(const std::string& id);
  uint64_t MinCursor() const;
  bool operator==(const UserState&) const = default;
};

// Per (user, peer): what the user has received in that chat and which receipts went back.
struct ChatState {
  uint64_t last_in_seq = 0;  // highest sequence of a message received from the peer
  uint64_t delivered_sent = 0;
  uint64_t read_sent = 0;
  bool operator==(const ChatState&) const = default;
};

// Reliable-channel payloads. Append `entry` to the inbox of each of `users` (all on the
// receiving shard: a group's fan-out sends one per shard, not one per member).
struct InboxAppend {
  std::vector<std::string> users;
  InboxEntry entry;
  bool operator==(const InboxAppend&) const = default;
};

// Session -> group owner: a member's delivered/read position in a group moved.
struct GroupCursor {
  std::string group;
  std::string user;
  uint64_t delivered = 0;
  uint64_t read = 0;
  bool operator==(const GroupCursor&) const = default;
};

std::string EncodeRecord(const InboxEntry& e);
std::string EncodeRecord(const UserState& u);
std::string EncodeRecord(const ChatState& c);
std::string EncodeRecord(const InboxAppend& a);
bool DecodeRecord(std::string_view in, InboxEntry& out);
bool DecodeRecord(std::string_view in, UserState& out);
bool DecodeRecord(std::string_view in, ChatState& out);
bool DecodeRecord(std::string_view in, InboxAppend& out);
// Session -> media owner: a message referencing media `id` (raw) was sent in `chat`, so the
// media is kept (garbage collection counts from the last reference).
struct MediaRefRecord {
  std::string id;
  std::string chat;
  // Needed until then: a disappearing message's vanish time; kKeptForever for a message in a
  // permanent chat's history; 0 for the default retention after the reference.
  uint64_t until_ms = 0;
  static constexpr uint64_t kKeptForever = UINT64_MAX;
  bool operator==(const MediaRefRecord&) const = default;
};

std::string EncodeRecord(const MediaRefRecord& r);
bool DecodeRecord(std::string_view in, MediaRefRecord& out);
std::string EncodeRecord(const GroupCursor& c);
bool DecodeRecord(std::string_view in, GroupCursor& out);
// Hand-over of keys between owners of one role (nodes/shard/handover.h), over reliable channels.
// Marker: the sender routes with map `epoch` from here on (everything it sent before went
// by the older map). Rows: stored rows of keys that moved to the receiver. Done: the sender
// shipped every row it had for the receiver's new keys.
struct HandoverMarker {
  uint64_t epoch = 0;
  bool operator==(const HandoverMarker&) const = default;
};
struct HandoverRows {
  uint64_t epoch = 0;
  std::string table;
  std::vector<std::pair<std::string, std::string>> rows;  // key, value
  static constexpr size_t kMaxRows = 500;                 // per payload (array bound 1024)
  bool operator==(const HandoverRows&) const = default;
};
struct HandoverDone {
  uint64_t epoch = 0;
  bool operator==(const HandoverDone&) const = default;
};
// A node's hand-over in progress (stored, so it resumes after a restart).
struct HandoverState {
  uint64_t epoch = 0;
  bool active = false;
  std::vector<std::string> old_ring, new_ring;  // owners of this role before and after
  std::vector<std::string> senders;             // whose markers shipping waits for
  uint64_t table = 0;                           // shipping position: table index...
  std::string from;                             // ...and the next key in it
  bool shipped = false;                         // every moved row left (or none to ship)
  bool operator==(const HandoverState&) const = default;
};
std::string EncodeRecord(const HandoverMarker& m);
std::string EncodeRecord(const HandoverRows& r);
std::string EncodeRecord(const HandoverDone& d);
std::string EncodeRecord(const HandoverState& s);
bool DecodeRecord(std::string_view in, HandoverMarker& out);
bool DecodeRecord(std::string_view in, HandoverRows& out);
bool DecodeRecord(std::string_view in, HandoverDone& out);
bool DecodeRecord(std::string_view in, HandoverState& out);

// Session -> presence owner: a user's privacy mode, or a contact of the user (someone they
// chat with, who may see their last seen in "contacts" mode). [7, user, mode, contact]
struct PresenceSetting {
  std::string user;
  uint64_t mode = kNoMode;  // codec::PrivacyMode, or kNoMode
  std::string contact;      // or empty
  static constexpr uint64_t kNoMode = 255;
  bool operator==(const PresenceSetting&) const = default;
};
std::string EncodeRecord(const PresenceSetting& p);
bool DecodeRecord(std::string_view in, PresenceSetting& out);

// Media moving to another media node whose blob store is its own: bytes of item `id` (raw)
// at `offset`. [8, id, offset, data]
struct MediaBytes {
  std::string id;
  uint64_t offset = 0;
  std::string data;
  bool operator==(const MediaBytes&) const = default;
};
std::string EncodeRecord(const MediaBytes& b);
bool DecodeRecord(std::string_view in, MediaBytes& out);

// Which payload a channel message holds.
enum class PayloadKind {
  kUnknown,
  kInboxAppend,
  kGroupCursor,
  kMediaRef,
  kHandoverMarker,
  kHandoverRows,
  kHandoverDone,
  kPresenceSetting,
  kMediaBytes
};
PayloadKind KindOf(std::string_view payload);

// A small record of unsigned integers (counters, cursors).
std::string EncodeUints(const std::vector<uint64_t>& v);
bool DecodeUints(std::string_view in, std::vector<uint64_t>& out, size_t expect);

// The push a device gets for message entry `n` (0 for history pages and pulls).
codec::Push PushOf(uint64_t n, const InboxEntry& e);
// The push or receipt frame (type, body) a device gets for inbox entry `n`.
std::pair<uint8_t, std::string> FrameFor(uint64_t n, const InboxEntry& e);

}  // namespace meshchat::nodes
