// Group frames (docs/PROTOCOL.md, "Groups"): one request frame for every group operation, one
// result frame, a send frame, and a hint for large groups. Group messages themselves arrive as
// `push` frames carrying a `group` field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "codec/client_messages.h"

namespace meshchat::codec {

inline constexpr size_t kMaxGroupList = 1024;  // users in one request, members in one result

struct GroupRequest {
  std::string op;  // create, add, remove, leave, rename, info, list, receipts, pull, mode, history
  uint64_t rid = 0;  // request id chosen by the client, echoed in the result
  std::string group;
  std::vector<std::string> users;
  std::string name;
  uint64_t seq = 0;    // receipts: which message; pull: messages after this sequence
  uint64_t limit = 0;  // pull, history: at most this many (server caps at 256 / 100)
  std::string mode{};  // mode: "temporary" or "permanent"
  uint64_t timer = 0;  // mode: disappearing timer in seconds (0 = off)
  // history: messages after this sequence (0 included: from the oldest kept for the member)
  // instead of before `seq`
  std::optional<uint64_t> after{};
  bool operator==(const GroupRequest&) const = default;
};

struct GroupMember {
  std::string user;
  bool admin = false;
  uint64_t delivered = 0;  // receipts detail: this member's cursors
  uint64_t read = 0;
  bool operator==(const GroupMember&) const = default;
};

struct GroupResult {
  uint64_t rid = 0;
  bool ok = true;
  ErrorCode code = ErrorCode::kBadRequest;  // when !ok
  std::string msg;
  std::string group;
  std::string name;
  uint64_t seq = 0;                             // the group's latest sequence
  std::vector<GroupMember> members;             // info, receipts (detail)
  std::vector<std::string> groups;              // list
  uint64_t total = 0, delivered = 0, read = 0;  // receipts: "delivered to k of n"
  std::vector<Push> messages;                   // pull, history
  std::string mode{};                           // info, history: the group's retention mode
  uint64_t timer = 0;                           // info, history: its disappearing timer (s)
  bool more = false;                            // history: older messages remain
  bool operator==(const GroupResult&) const = default;
};

struct GroupSend {
  std::string group;
  uint64_t cid = 0;
  std::string body;
  std::optional<MediaRef> media{};
  bool operator==(const GroupSend&) const = default;
};

struct GroupHint {
  std::string group;
  uint64_t seq = 0;
  bool operator==(const GroupHint&) const = default;
};

std::string Encode(const GroupRequest& m);
std::string Encode(const GroupResult& m);
std::string Encode(const GroupSend& m);
std::string Encode(const GroupHint& m);
DecodeStatus Decode(std::string_view body, GroupRequest& out);
DecodeStatus Decode(std::string_view body, GroupResult& out);
DecodeStatus Decode(std::string_view body, GroupSend& out);
DecodeStatus Decode(std::string_view body, GroupHint& out);

constexpr FrameType TypeOf(const GroupRequest&) {
  return FrameType::kGroup;
}
constexpr FrameType TypeOf(const GroupResult&) {
  return FrameType::kGroupResult;
}
constexpr FrameType TypeOf(const GroupSend&) {
  return FrameType::kGroupSend;
}
constexpr FrameType TypeOf(const GroupHint&) {
  return FrameType::kGroupHint;
}

}  // namespace meshchat::codec
