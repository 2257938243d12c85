// Presence frames (docs/PROTOCOL.md, "Presence and typing").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "codec/client_messages.h"

namespace meshchat::codec {

inline constexpr size_t kMaxPresenceUsers = 256;  // in one query or watch list

// presence_query (C->S) and presence_watch (C->S): a list of users. A watch list replaces the
// previous one; an empty list stops watching.
struct PresenceUsers {
  std::vector<std::string> users;
  bool operator==(const PresenceUsers&) const = default;
};

// presence (S->C). A user whose settings hide it from the asker looks exactly like one never
// seen: online false, last_seen 0.
struct Presence {
  std::string user;
  bool online = false;
  uint64_t last_seen = 0;  // ms since epoch of the last user activity; 0 = unknown / hidden
  bool operator==(const Presence&) const = default;
};

// typing (C->S): in the chat with user `to` (or group `to` with group = true).
struct Typing {
  std::string to;
  bool group = false;
  bool on = true;
  bool operator==(const Typing&) const = default;
};

// typing_notice (S->C): `from` is typing in `chat`; forget it after ttl_ms unless repeated.
struct TypingNotice {
  std::string from;
  std::string chat;
  bool on = true;
  uint64_t ttl_ms = 5000;
  bool operator==(const TypingNotice&) const = default;
};

enum class PrivacyMode : uint8_t { kEveryone = 0, kContacts = 1, kNobody = 2 };
const char* PrivacyModeName(PrivacyMode m);

// privacy (C->S): who sees this user's online / last seen. "nobody" also hides others' from it.
struct Privacy {
  PrivacyMode mode = PrivacyMode::kEveryone;
  bool operator==(const Privacy&) const = default;
};

std::string Encode(const PresenceUsers& m);
std::string Encode(const Presence& m);
std::string Encode(const Typing& m);
std::string Encode(const TypingNotice& m);
std::string Encode(const Privacy& m);
DecodeStatus Decode(std::string_view body, PresenceUsers& out);
DecodeStatus Decode(std::string_view body, Presence& out);
DecodeStatus Decode(std::string_view body, Typing& out);
DecodeStatus Decode(std::string_view body, TypingNotice& out);
DecodeStatus Decode(std::string_view body, Privacy& out);

constexpr FrameType TypeOf(const Presence&) {
  return FrameType::kPresence;
}
constexpr FrameType TypeOf(const Typing&) {
  return FrameType::kTyping;
}
constexpr FrameType TypeOf(const TypingNotice&) {
  return FrameType::kTypingNotice;
}
constexpr FrameType TypeOf(const Privacy&) {
  return FrameType::kPrivacy;
}

}  // namespace meshchat::codec
