#include "nodes/group/group_core.h"

#include "codec/media_messages.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "codec/presence_messages.h"

namespace meshchat::nodes {

std::vector<HandoverTable> GroupTables();  // group_handover.cc

using codec::ErrorCode;
using codec::MeshType;

namespace {
constexpr std::string_view kMetaTable = "gmeta";   // group -> [next_seq] + name
constexpr std::string_view kMemberTable = "gmem";  // group \0 user -> [admin, joined_seq]
}  // namespace
// Shared with group_retention.cc.
const std::string_view GroupCore::kLogTable = "glog";     // group \0 be64(seq) -> InboxEntry
const std::string_view GroupCore::kCursorTable = "gcur";  // group \0 user -> [delivered, read]
namespace {
constexpr std::string_view kDedupTable = "gdedup";  // group \0 sender \0 be64(cid) -> [seq, ts]
constexpr uint64_t kMaxPull = 256;
constexpr size_t kMaxPullBytes = 512 * 1024;  // a result frame stays far under 1 MiB

std::string Key2(const std::string& a, const std::string& b) {
  return a + '\0' + b;
}

codec::GroupResult Refuse(ErrorCode code, const std::string& msg) {
  codec::GroupResult r;
  r.ok = false;
  r.code = code;
  r.msg = msg;
  return r;
}
}  // namespace

GroupCore::GroupCore(GroupConfig cfg, const Clock& clock, store::KvStore& kv, OwnerFn session_owner,
                     OwnerFn group_owner, PeerUpFn peer_up, ChannelConfig channel_cfg)
    : cfg_(std::move(cfg)),
      clock_(clock),
      kv_(kv),
      session_owner_(std::move(session_owner)),
      group_owner_(std::move(group_owner)),
      peer_up_(peer_up),
      channel_(channel_cfg, kv, clock, std::move(peer_up)),
      handover_(cfg_.node_id, GroupTables(), kv, channel_) {}

Status GroupCore::Load() {
  if (Status s = channel_.Load(); !s.ok()) return s;
  return handover_.Load();
}

void GroupCore::Fail(const Status& s) {
  if (!s.ok() && batch_error_.ok()) batch_error_ = s;
}

void GroupCore::Reply(const codec::Stamp& to, codec::GroupResult r, Effects& fx) {
  fx.ToClient(to, static_cast<uint8_t>(codec::FrameType::kGroupResult), codec::Encode(r));
}

Result<GroupCore::Members*> GroupCore::MembersOf(const std::string& group) {
  if (auto it = members_.find(group); it != members_.end()) return &it->second;
  Members m;
  const std::string prefix = group + '\0';
  Status bad = Status::Ok();
  Status s = kv_.Scan(kMemberTable, prefix, [&](std::string_view k, std::string_view v) {
    if (k.substr(0, prefix.size()) != prefix) return false;
    std::vector<uint64_t> f;
    if (!DecodeUints(v, f, 2)) {
      bad = Status(Code::kInvalid, "corrupt member record");
      return false;
    }
    m[std::string(k.substr(prefix.size()))] = Member{f[0] != 0, f[1]};
    return true;
  });
  if (!s.ok()) return s;
  if (!bad.ok()) return bad;
  return &members_.emplace(group, std::move(m)).first->second;
}

Result<GroupCore::Meta> GroupCore::LoadMeta(const std::string& group) {
  auto v = kv_.Get(kMetaTable, group);
  if (!v.ok()) return v.status();
  // [next_seq] followed by the name's bytes: the name is free text.
  if (v->size() < 8) return Status(Code::kInvalid, "corrupt group record");
  return Meta{v->substr(8), store::ReadBigEndian64(*v)};
}

Status GroupCore::SaveMeta(const std::string& group, const Meta& m) {
  return kv_.Put(kMetaTable, group, store::BigEndian64(m.next_seq) + m.name);
}

Status GroupCore::SaveMember(const std::string& group, const std::string& user, const Member& m) {
  return kv_.Put(kMemberTable, Key2(group, user), EncodeUints({m.admin ? 1u : 0u, m.joined_seq}));
}

Status GroupCore::Publish(const std::string& group, Meta& meta, InboxEntry e,
                          const std::vector<std::string>& audience, Effects& fx) {
  e.seq = meta.next_seq++;
  e.group = group;
  e.chat = group;
  if (Status s = SaveMeta(group, meta); !s.ok()) return s;
  if (Status s = kv_.Put(kLogTable, group + '\0' + store::BigEndian64(e.seq), EncodeRecord(e));
      !s.ok())
    return s;
  if (Status s = Keep(group, e); !s.ok()) return s;
  if (audience.size() > cfg_.large_group && !e.system) {
    // Large group: a doorbell per member (not stored: devices pull the range from the log).
    for (const auto& user : audience) {
      codec::Envelope hint;
      hint.type = MeshType::kGroupHint;
      hint.key = user;
      hint.stamp.user = user;
      hint.body = codec::Encode(codec::GroupHint{group, e.seq});
      fx.mesh.push_back({session_owner_(user), std::move(hint), 0});
    }
    return Status::Ok();
  }
  // One channel entry per session shard, listing that shard's members.
  std::map<std::string, std::vector<std::string>> by_shard;
  for (const auto& user : audience) by_shard[session_owner_(user)].push_back(user);
  for (auto& [shard, users] : by_shard)
    if (Status s = channel_.Append(shard, EncodeRecord(InboxAppend{std::move(users), e}), fx);
        !s.ok())
      return s;
  return Status::Ok();
}

Status GroupCore::System(const std::string& group, Meta& meta, const codec::Stamp& actor,
                         const std::string& text, const std::string& member, bool joined,
                         const std::vector<std::string>& audience, Effects& fx) {
  InboxEntry e;
  e.kind = InboxEntry::Kind::kMessage;
  e.system = true;
  e.from = actor.user;
  e.from_device = actor.device;
  e.ts = static_cast<uint64_t>(clock_.WallMs());
  e.expires_ms = e.ts + static_cast<uint64_t>(cfg_.ttl_ms);
  e.body = text;
  e.member = member;
  e.joined = joined;
  return Publish(group, meta, std::move(e), audience, fx);
}

void GroupCore::OnEnvelope(const std::string& from, codec::Envelope&& env, Effects& fx) {
  const bool routed = env.type == MeshType::kGroupOp || env.type == MeshType::kGroupSend;
  if (routed && (env.epoch > cfg_.epoch || env.key.empty() ||
                 group_owner_(env.key) != cfg_.node_id || !handover_.Ready(env.key))) {
    codec::Envelope r;  // routed with another map, to the wrong node, or moving in: retry
    r.type = MeshType::kWrongOwner;
    r.req = env.req;
    r.key = env.key;
    r.stamp = env.stamp;
    fx.mesh.push_back({env.stamp.gateway.empty() ? from : env.stamp.gateway, std::move(r), 0});
    return;
  }
  switch (env.type) {
    case MeshType::kGroupOp: return Fail(HandleRequest(env, fx));
    case MeshType::kGroupSend: return Fail(HandleSend(env, fx));
    case MeshType::kChanMsg:
      Fail(channel_.OnMessage(from, env, [&](const std::string& f, std::string_view p) {
        return HandleChannel(f, p);
      }));
      return StepHandover(fx);  // a marker or a done may let it move on
    case MeshType::kChanAck: return Fail(channel_.OnAck(from, env, fx));
    case MeshType::kTyping: {  // ring the other members' devices; nothing is stored
      if (!handover_.Ready(env.key)) return;
      if (load_.AtLeast(LoadLevel::kShedHints)) {
        ++shed_.typing;
        return;
      }
      codec::Typing t;
      auto members = MembersOf(env.key);
      if (!members.ok() || !(*members)->count(env.stamp.user) ||
          codec::Decode(env.body, t) != codec::DecodeStatus::kOk)
        return;
      const std::string notice =
          codec::Encode(codec::TypingNotice{env.stamp.user, env.key, t.on, 5000});
      for (const auto& [user, m] : **members) {
        if (user == env.stamp.user) continue;
        codec::Envelope e;
        e.type = MeshType::kTyping;
        e.key = user;
        e.stamp = env.stamp;
        e.body = notice;
        fx.mesh.push_back({session_owner_(user), std::move(e), 0});
      }
      return;
    }
    default: return;
  }
}

Status GroupCore::HandleCursor(std::string_view payload) {
  GroupCursor c;
  if (!DecodeRecord(payload, c)) {
    spdlog::error("undecodable group cursor skipped");
    return Status::Ok();
  }
  return MoveCursor(c.group, c.user, c.delivered, c.read);
}

Status GroupCore::HandleSend(const codec::Envelope& env, Effects& fx) {
  codec::GroupSend m;
  auto error = [&](ErrorCode code, const std::string& msg, uint64_t cid) {
    fx.ToClient(env.stamp, static_cast<uint8_t>(codec::FrameType::kError),
                codec::Encode(codec::Error{code, msg, cid, false}));
    return Status::Ok();
  };
  if (codec::Decode(env.body, m) != codec::DecodeStatus::kOk || m.cid == 0)
    return error(ErrorCode::kBadRequest, "group_send body must be {group, cid > 0, body}", 0);
  auto members = MembersOf(m.group);
  if (!members.ok()) return members.status();
  if (!(*members)->count(env.stamp.user))  // also for a group that does not exist
    return error(ErrorCode::kNotMember, "not a member of this group", m.cid);
  auto sent = [&](uint64_t seq, uint64_t ts) {
    fx.ToClient(env.stamp, static_cast<uint8_t>(codec::FrameType::kSent),
                codec::Encode(codec::Sent{m.cid, m.group, seq, ts}));
  };
  const std::string dedup = m.group + '\0' + env.stamp.user + '\0' + store::BigEndian64(m.cid);
  std::vector<uint64_t> prior;
  if (auto d = kv_.Get(kDedupTable, dedup); d.ok() && DecodeUints(*d, prior, 2)) {
    sent(prior[0], prior[1]);  // a retry: same sequence, nothing sent twice
    return Status::Ok();
  } else if (!d.ok() && d.status().code() != Code::kNotFound) {
    return d.status();
  }
  // Load, then fan-out per group: refused before anything is stored (a retry of a stored
  // message was answered above, whatever the limit).
  if (auto refused = RefuseSend(load_, heavy_, shed_, env.stamp.user, clock_.MonoMs(), m.cid)) {
    fx.ToClient(env.stamp, static_cast<uint8_t>(codec::FrameType::kError), codec::Encode(*refused));
    return Status::Ok();
  }
  // Cost of the fan-out limit: one per member delivery.
  if (cfg_.fanout_rate > 0) {
    if (fanout_.size() >= 65536 && !fanout_.count(m.group)) fanout_.clear();  // bounded
    auto& bucket = fanout_.try_emplace(m.group, cfg_.fanout_rate, cfg_.fanout_burst).first->second;
    const int64_t now = clock_.MonoMs();
    const double cost = static_cast<double>((*members)->size());
    if (!bucket.Take(now, cost)) {
      codec::Error e{ErrorCode::kRateLimited, "this group is sending too fast; retry later", m.cid,
                     false, static_cast<uint64_t>(bucket.RetryAfterMs(now, cost))};
      fx.ToClient(env.stamp, static_cast<uint8_t>(codec::FrameType::kError), codec::Encode(e));
      return Status::Ok();
    }
  }
  auto meta = LoadMeta(m.group);
  if (!meta.ok()) return meta.status();
  InboxEntry e;
  e.kind = InboxEntry::Kind::kMessage;
  e.from = env.stamp.user;
  e.from_device = env.stamp.device;
  e.cid = m.cid;
  e.ts = static_cast<uint64_t>(clock_.WallMs());
  e.expires_ms = e.ts + static_cast<uint64_t>(cfg_.ttl_ms);
  e.body = std::move(m.body);
  if (m.media) e.media = codec::Encode(*m.media);
  auto mode = LoadMode(m.group);
  if (!mode.ok()) return mode.status();
  if (mode->timer_s > 0) {  // disappearing: gone from logs and inboxes after the timer
    e.vanish_ms = e.ts + mode->timer_s * 1000;
    e.expires_ms = std::min(e.expires_ms, e.vanish_ms);
  }
  if (m.media && media_owner_) {  // keep the media while this message may be seen, reliably
    const std::string& node = media_owner_(codec::HexOf(m.media->id));
    if (!node.empty())
      if (Status s = channel_.Append(
              node,
              EncodeRecord(MediaRefRecord{
                  m.media->id, m.group,
                  e.vanish_ms ? e.vanish_ms
                              : (mode->permanent ? MediaRefRecord::kKeptForever : 0)}),
              fx);
          !s.ok())
        return s;
  }
  const uint64_t seq = meta->next_seq;
  std::vector<std::string> audience;
  for (const auto& [user, info] : **members) audience.push_back(user);
  if (Status s = Publish(m.group, *meta, std::move(e), audience, fx); !s.ok()) return s;
  // The sender has its own message: its cursors pass it (when they had reached it).
  if (Status s = MoveCursor(m.group, env.stamp.user, 0, 0, seq); !s.ok()) return s;
  if (Status s =
          kv_.Put(kDedupTable, dedup, EncodeUints({seq, static_cast<uint64_t>(clock_.WallMs())}));
      !s.ok())
    return s;
  sent(seq, static_cast<uint64_t>(clock_.WallMs()));
  return Status::Ok();
}

Status GroupCore::HandleRequest(const codec::Envelope& env, Effects& fx) {
  codec::GroupRequest req;
  if (codec::Decode(env.body, req) != codec::DecodeStatus::kOk) {
    Reply(env.stamp, Refuse(ErrorCode::kBadRequest, "malformed group request"), fx);
    return Status::Ok();
  }
  const codec::Stamp& who = env.stamp;
  auto answer = [&](codec::GroupResult r) {
    r.rid = req.rid;
    r.group = req.group;
    Reply(who, std::move(r), fx);
    return Status::Ok();
  };
  for (const auto& u : req.users)
    if (!codec::IsValidId(u)) return answer(Refuse(ErrorCode::kBadRequest, "invalid user id"));
  auto members_r = MembersOf(req.group);
  if (!members_r.ok()) return members_r.status();
  Members& members = **members_r;
  auto audience = [&] {
    std::vector<std::string> a;
    for (const auto& [u, m] : members) a.push_back(u);
    return a;
  };

  if (req.op == "create") {
    if (!members.empty()) return answer(Refuse(ErrorCode::kGroupExists, "group id is taken"));
    std::vector<std::string> initial{who.user};
    for (const auto& u : req.users)
      if (std::find(initial.begin(), initial.end(), u) == initial.end()) initial.push_back(u);
    if (initial.size() > cfg_.member_cap)
      return answer(Refuse(ErrorCode::kGroupFull, "more members than the group cap"));
    Meta meta{req.name.empty() ? req.group : req.name, 1};
    for (const auto& u : initial) {
      members[u] = Member{u == who.user, 1};
      if (Status s = SaveMember(req.group, u, members[u]); !s.ok()) return s;
    }
    if (Status s =
            System(req.group, meta, who, who.user + " created the group", "*", true, initial, fx);
        !s.ok())
      return s;
    codec::GroupResult r;
    r.name = meta.name;
    r.seq = meta.next_seq - 1;
    return answer(std::move(r));
  }
  // Everything else is for members only; a non-member cannot tell whether the group exists.
  auto self = members.find(who.user);
  if (self == members.end())
    return answer(Refuse(ErrorCode::kNotMember, "not a member of this group"));
  auto meta = LoadMeta(req.group);
  if (!meta.ok()) return meta.status();
  const bool admin = self->second.admin;

  if (req.op == "add" || req.op == "remove" || req.op == "rename" || req.op == "mode") {
    if (!admin) return answer(Refuse(ErrorCode::kNotAdmin, "only admins can do that"));
    if (req.op == "mode") {
      codec::GroupResult refused;
      if (Status s = SetMode(req, who, *meta, audience(), fx, refused); !s.ok()) return s;
      if (!refused.ok) return answer(std::move(refused));
    } else if (req.op == "rename") {
      meta->name = req.name.empty() ? req.group : req.name;
      if (Status s = System(req.group, *meta, who, who.user + " renamed the group to " + meta->name,
                            "", false, audience(), fx);
          !s.ok())
        return s;
    } else if (req.op == "add") {
      size_t fresh = 0;
      for (const auto& u : req.users) fresh += members.count(u) ? 0 : 1;
      if (members.size() + fresh > cfg_.member_cap)
        return answer(Refuse(ErrorCode::kGroupFull, "the group is full"));
      for (const auto& u : req.users) {
        if (members.count(u)) continue;
        members[u] = Member{false, meta->next_seq};  // sees history from its own "added"
        if (Status s = SaveMember(req.group, u, members[u]); !s.ok()) return s;
        if (Status s =
                System(req.group, *meta, who, who.user + " added " + u, u, true, audience(), fx);
            !s.ok())
          return s;
      }
    } else {
      for (const auto& u : req.users) {
        if (!members.count(u)) continue;
        // The removed member is told too, then hears nothing more.
        if (Status s =
                System(req.group, *meta, who, who.user + " removed " + u, u, false, audience(), fx);
            !s.ok())
          return s;
        members.erase(u);
        if (Status s = kv_.Del(kMemberTable, Key2(req.group, u)); !s.ok()) return s;
      }
    }
  } else if (req.op == "leave") {
    if (Status s =
            System(req.group, *meta, who, who.user + " left", who.user, false, audience(), fx);
        !s.ok())
      return s;
    members.erase(who.user);
    if (Status s = kv_.Del(kMemberTable, Key2(req.group, who.user)); !s.ok()) return s;
  } else if (req.op == "info") {
    codec::GroupResult r;
    r.name = meta->name;
    r.seq = meta->next_seq - 1;
    for (const auto& [u, m] : members) r.members.push_back({u, m.admin, 0, 0});
    r.total = members.size();
    auto mode = LoadMode(req.group);
    if (!mode.ok()) return mode.status();
    r.mode = mode->permanent ? "permanent" : "temporary";
    r.timer = mode->timer_s;
    return answer(std::move(r));
  } else if (req.op == "receipts") {
    codec::GroupResult r;
    r.name = meta->name;
    r.seq = req.seq;
    for (const auto& [u, m] : members) {
      std::vector<uint64_t> cur{0, 0};
      if (auto v = kv_.Get(kCursorTable, Key2(req.group, u)); v.ok()) (void)DecodeUints(*v, cur, 2);
      r.members.push_back({u, m.admin, cur[0], cur[1]});
      if (u == who.user) continue;  // "delivered to k of n" counts the others
      ++r.total;
      r.delivered += cur[0] >= req.seq ? 1 : 0;
      r.read += cur[1] >= req.seq ? 1 : 0;
    }
    return answer(std::move(r));
  } else if (req.op == "history") {
    codec::GroupResult r;
    r.name = meta->name;
    r.seq = meta->next_seq - 1;
    if (Status s = History(req, self->second.joined_seq, meta->next_seq, r); !s.ok()) return s;
    return answer(std::move(r));
  } else if (req.op == "pull") {
    codec::GroupResult r;
    r.name = meta->name;
    r.seq = meta->next_seq - 1;
    const uint64_t from_seq = std::max(req.seq + 1, self->second.joined_seq);
    const uint64_t limit = std::min<uint64_t>(req.limit ? req.limit : kMaxPull, kMaxPull);
    const std::string prefix = req.group + '\0';
    size_t bytes = 0;
    Status bad = Status::Ok();
    Status s = kv_.Scan(kLogTable, prefix + store::BigEndian64(from_seq),
                        [&](std::string_view k, std::string_view v) {
                          if (k.substr(0, prefix.size()) != prefix) return false;
                          InboxEntry e;
                          if (!DecodeRecord(v, e)) {
                            bad = Status(Code::kInvalid, "corrupt group log");
                            return false;
                          }
                          bytes += e.body.size() + 64;
                          r.messages.push_back(PushOf(0, e));
                          return r.messages.size() < limit && bytes < kMaxPullBytes;
                        });
    if (!s.ok()) return s;
    if (!bad.ok()) return bad;
    return answer(std::move(r));
  } else {
    return answer(Refuse(ErrorCode::kBadRequest, "unknown group op '" + req.op + "'"));
  }
  if (Status s = SaveMeta(req.group, *meta); !s.ok()) return s;
  codec::GroupResult r;
  r.name = meta->name;
  r.seq = meta->next_seq - 1;
  return answer(std::move(r));
}

void GroupCore::OnPeerUp(const std::string& node, bool, Effects& fx) {
  Fail(channel_.OnPeerUp(node, fx));
}

void GroupCore::OnTick(Effects& fx) {
  Fail(channel_.OnTick(fx));
  StepHandover(fx);
  // Expiry and trimming wait while groups move: rows half shipped must not be judged.
  if (handover_.active()) return;
  Fail(ExpireVanished(1000));
  Fail(ExpireLog(1000));
  for (size_t n = 0; n < 64 && !trim_due_.empty(); ++n) {
    Fail(TrimDelivered(*trim_due_.begin()));
    trim_due_.erase(trim_due_.begin());
  }
}

Status GroupCore::EndBatch(Effects& fx) {
  Status s = channel_.CommitBatch(batch_error_, fx);
  if (!s.ok()) {  // the caches may hold changes that were not stored
    members_.clear();
    modes_.clear();
    handover_.Reload();  // its positions went back with the batch
  }
  return s;
}

void GroupCore::OnStoreLost(Effects& fx) {
  fx.Clear();
  members_.clear();  // the caches may hold changes that were not stored
  modes_.clear();
  channel_.OnCommitFailed();
  handover_.Reload();
}

}  // namespace meshchat::nodes
