// Retention and history frames (docs/PROTOCOL.md, "Temporary and permanent chats"): a chat's
// mode (temporary: the server is a mailbox; permanent: it keeps the history) and its
// disappearing-message timer, and pages of a permanent chat's history. Groups use the group
// frame (ops "mode" and "history") with the same meaning.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "codec/client_messages.h"
#include "codec/msgpack_view.h"

namespace meshchat::codec {

inline constexpr uint64_t kMaxHistoryPage = 100;  // messages per page at most
// The page size a request asks for: `limit`, or the maximum when it is 0 (absent).
inline uint64_t HistoryPageSize(uint64_t limit) {
  return limit == 0 || limit > kMaxHistoryPage ? kMaxHistoryPage : limit;
}
// Disappearing timers a client may choose: off, 24 h, 7 d, 90 d, or any value in
// [kMinTimerS, kMaxTimerS] (short ones exist for tests and demos).
inline constexpr uint64_t kMinTimerS = 1;
inline constexpr uint64_t kMaxTimerS = 90ull * 24 * 3600;

enum class ChatRetention : uint8_t { kTemporary = 0, kPermanent = 1 };
const char* RetentionName(ChatRetention r);
bool ParseRetention(std::string_view s, ChatRetention& out);

// Sets the mode and timer of the one-to-one chat with `to`. Stored, sequenced in the chat and
// announced to both users as a system message; answered with `sent {cid, to, seq}`.
struct ChatMode {
  std::string to;
  uint64_t cid = 0;
  std::string mode;    // "temporary" or "permanent"
  uint64_t timer = 0;  // disappearing timer in seconds; 0 = off
  bool operator==(const ChatMode&) const = default;
};

// A page of the one-to-one chat with `chat`: messages with before > seq (before 0: the
// latest), or, when `after` is present (0 included: from the oldest), with seq > after;
// oldest first, at most `limit`.
struct History {
  uint64_t rid = 0;
  std::string chat;
  uint64_t before = 0;
  std::optional<uint64_t> after{};
  uint64_t limit = 0;  // absent or 0: the server's maximum (kMaxHistoryPage)
  bool operator==(const History&) const = default;
};

struct HistoryPage {
  uint64_t rid = 0;
  std::string chat;
  std::string mode;  // the chat's mode now
  uint64_t timer = 0;
  std::vector<Push> messages;  // `n` is 0: history entries are not inbox entries (no ack)
  bool more = false;           // there is more in the asked direction
  bool operator==(const HistoryPage&) const = default;
};

std::string Encode(const ChatMode& m);
std::string Encode(const History& m);
std::string Encode(const HistoryPage& m);
DecodeStatus Decode(std::string_view body, ChatMode& out);
DecodeStatus Decode(std::string_view body, History& out);
DecodeStatus Decode(std::string_view body, HistoryPage& out);

// clang-format off
constexpr FrameType TypeOf(const ChatMode&) { return FrameType::kChatMode; }
constexpr FrameType TypeOf(const History&) { return FrameType::kHistory; }
constexpr FrameType TypeOf(const HistoryPage&) { return FrameType::kHistoryPage; }
// clang-format on

// Messages of a history page or a group pull, as fixed arrays (shared with group_result).
void PutMessages(Writer& w, const std::vector<Push>& messages);
DecodeStatus ReadMessages(const msgpack::object* o, std::vector<Push>& out);

}  // namespace meshchat::codec
