// SessionCore: the client frames a user's shard checks and hands to other roles — group
// requests and sends to the group's owner, presence queries, watches, typing and privacy to
// the presence owner — and the activity it reports there.
#include <spdlog/spdlog.h>

#include "codec/group_messages.h"
#include "codec/msgpack_view.h"
#include "codec/presence_messages.h"
#include "nodes/session/session_core.h"

namespace meshchat::nodes {

using codec::ErrorCode;
using codec::FrameType;
using codec::MeshType;

Status SessionCore::HandleGroupFrame(const codec::Envelope& env, Effects& fx) {
  std::string group;
  codec::GroupRequest req;
  if (env.ftype == static_cast<uint8_t>(FrameType::kGroup)) {
    if (const auto st = codec::Decode(env.body, req); st != codec::DecodeStatus::kOk) {
      ctx_.ErrorToClient(env.stamp, ErrorCode::kBadRequest,
                         st == codec::DecodeStatus::kTooLarge
                             ? "group request over a limit (users at most " +
                                   std::to_string(codec::kMaxGroupList) + ", ids " +
                                   std::to_string(codec::kMaxIdBytes) + " bytes)"
                             : "malformed group request",
                         std::nullopt, false, fx);
      return Status::Ok();
    }
    if (req.op == "list") {  // answered here: the user's shard keeps its list of groups
      codec::GroupResult r;
      r.rid = req.rid;
      r.groups = inboxes_.GroupsOf(env.stamp.user);
      ctx_.ToClient(env.stamp, static_cast<uint8_t>(FrameType::kGroupResult), codec::Encode(r), fx);
      return Status::Ok();
    }
    group = req.group;
  } else {
    codec::GroupSend gs;
    if (codec::Decode(env.body, gs) != codec::DecodeStatus::kOk) {
      ctx_.ErrorToClient(env.stamp, ErrorCode::kBadRequest,
                         "group_send body must be {group, "
                         "cid, body}",
                         std::nullopt, false, fx);
      return Status::Ok();
    }
    group = gs.group;
    if (!CheckMedia(env.stamp, gs.media, gs.cid, fx)) return Status::Ok();
    if (!AllowSend(env.stamp, gs.cid, fx)) return Status::Ok();
  }
  if (!codec::IsValidId(group)) {
    ctx_.ErrorToClient(env.stamp, ErrorCode::kBadRequest, "invalid group id", std::nullopt, false,
                       fx);
    return Status::Ok();
  }
  const std::string& owner = ctx_.group_owner(group);
  if (owner.empty() || !ctx_.peer_up(owner)) {
    ctx_.ErrorToClient(env.stamp, ErrorCode::kServiceUnavailable,
                       "the group's node is unreachable; retry", std::nullopt, false, fx);
    return Status::Ok();
  }
  codec::Envelope f;
  f.type = env.ftype == static_cast<uint8_t>(FrameType::kGroup) ? MeshType::kGroupOp
                                                                : MeshType::kGroupSend;
  f.key = group;
  f.stamp = env.stamp;
  f.body = env.body;  // the owner decodes it again rather than trusting a copy
  fx.mesh.push_back({owner, std::move(f), 0});
  return Status::Ok();
}

void SessionCore::Activity(const std::string& user, bool user_activity, Effects& fx) {
  const std::string& node = ctx_.presence_owner(user);
  if (node.empty()) return;
  const int64_t now = ctx_.clock.MonoMs();
  if (user_activity) {
    if (load_.AtLeast(LoadLevel::kShedHints)) {  // last seen is a hint: shed first
      ++shed_.presence;
      return;
    }
    // Last seen has a resolution of a second: report user activity at most once a second.
    auto [it, fresh] = activity_sent_.try_emplace(user, now);
    if (!fresh && now - it->second < 1000) return;
    it->second = now;
  }
  codec::Envelope e;
  e.type = MeshType::kActivity;
  e.key = user;
  e.arg = user_activity ? static_cast<uint64_t>(ctx_.clock.WallMs()) : 0;
  e.body = EncodeUints({inboxes_.ConnectionsOf(user).size()});
  fx.mesh.push_back({node, std::move(e), 0});
}

Status SessionCore::HandlePresenceFrame(const codec::Envelope& env, Effects& fx) {
  const std::string& user = env.stamp.user;
  auto bad = [&](const char* msg) {
    ctx_.ErrorToClient(env.stamp, ErrorCode::kBadRequest, msg, std::nullopt, false, fx);
    return Status::Ok();
  };
  switch (static_cast<FrameType>(env.ftype)) {
    case FrameType::kTyping: {
      codec::Typing t;
      if (codec::Decode(env.body, t) != codec::DecodeStatus::kOk || !codec::IsValidId(t.to))
        return bad("typing body must be {to, group, on}");
      if (load_.AtLeast(LoadLevel::kShedHints)) {
        ++shed_.typing;
        return Status::Ok();
      }
      Activity(user, true, fx);
      codec::Envelope e;
      e.type = MeshType::kTyping;
      e.stamp = env.stamp;
      if (t.group) {  // the group's owner rings its members
        e.key = t.to;
        e.body = env.body;
        const std::string& owner = ctx_.group_owner(t.to);
        if (!owner.empty()) fx.mesh.push_back({owner, std::move(e), 0});
      } else {
        e.key = t.to;
        e.body = codec::Encode(codec::TypingNotice{user, user, t.on, 5000});
        fx.mesh.push_back({ctx_.owner(t.to), std::move(e), 0});
      }
      return Status::Ok();
    }
    case FrameType::kPrivacy: {
      codec::Privacy p;
      if (codec::Decode(env.body, p) != codec::DecodeStatus::kOk)
        return bad("privacy body must be {mode: everyone|contacts|nobody}");
      const uint64_t mode = static_cast<uint64_t>(p.mode);
      if (Status s = ctx_.kv.Put(kPrivacyTable, user, EncodeUints({mode})); !s.ok()) return s;
      // Over the reliable channel: a privacy setting must not be lost on the way.
      const std::string& node = ctx_.presence_owner(user);
      if (node.empty()) return Status::Ok();
      return ctx_.channel.Append(node, EncodeRecord(PresenceSetting{user, mode, ""}), fx);
    }
    default: break;
  }
  // presence_query / presence_watch
  codec::PresenceUsers q;
  if (codec::Decode(env.body, q) != codec::DecodeStatus::kOk) return bad("body must be {users}");
  for (const auto& u : q.users)
    if (!codec::IsValidId(u)) return bad("invalid user id");
  std::vector<uint64_t> mode;
  bool hides = false;  // who hides their own last seen sees no one's
  if (auto r = ctx_.kv.Get(kPrivacyTable, user); r.ok() && DecodeUints(*r, mode, 1))
    hides = mode[0] == static_cast<uint64_t>(codec::PrivacyMode::kNobody);
  const bool watch = env.ftype == static_cast<uint8_t>(FrameType::kPresenceWatch);
  uint64_t gen = 0;
  if (watch) {
    Activity(user, true, fx);  // opening chats is the user's doing
    gen = ++watch_gen_[env.stamp.conn];
    codec::Envelope reset;  // the gateway forgets this connection's previous watch list
    reset.type = MeshType::kWatchReset;
    reset.key = user;
    reset.stamp = env.stamp;
    reset.arg = gen;
    fx.mesh.push_back({env.stamp.gateway, std::move(reset), 0});
  }
  for (const auto& target : q.users) {
    const std::string& node = ctx_.presence_owner(target);
    if (node.empty()) continue;
    codec::Envelope e;
    e.type = watch ? MeshType::kPresenceWatch : MeshType::kPresenceQuery;
    e.key = target;
    e.stamp = env.stamp;
    e.arg = hides ? 1 : 0;
    e.req = gen;
    fx.mesh.push_back({node, std::move(e), 0});
  }
  return Status::Ok();
}

}  // namespace meshchat::nodes
