#include "nodes/session/session_core.h"

#include <spdlog/spdlog.h>

#include "codec/group_messages.h"
#include "codec/history_messages.h"
#include "codec/media_messages.h"
#include "codec/msgpack_view.h"
#include "codec/presence_messages.h"

namespace meshchat::nodes {

using codec::ErrorCode;

namespace {
OwnerFn NoOwner() {
  return [](std::string_view) -> const std::string& {
    static const std::string kNone;
    return kNone;
  };
}
// Every table of keyed state (inboxes.cc, conversations.cc and above), with the routing key's
// place in its keys: what moves when a user or a conversation gets another owner.
std::vector<HandoverTable> SessionTables() {
  return {{"user"},         {"chat"},        {"inbox"},
          {"inbox_exp", 8}, {"ugroups"},     {SessionCore::kPrivacyTable},
          {"conv"},         {"dedup"},       {"dedup_exp", 8},
          {"clog"},         {"clog_exp", 8}, {DeferredReads::kTable}};
}
}  // namespace
using codec::FrameType;
using codec::MeshType;

SessionCore::SessionCore(SessionConfig cfg, const Clock& clock, store::KvStore& kv, OwnerFn owner,
                         PeerUpFn peer_up, OwnerFn group_owner, OwnerFn presence_owner,
                         ChannelConfig channel_cfg)
    : channel_(channel_cfg, kv, clock, peer_up),
      handover_(cfg.node_id, SessionTables(), kv, channel_),
      ctx_{std::move(cfg),
           clock,
           kv,
           std::move(owner),
           std::move(peer_up),
           group_owner ? std::move(group_owner) : NoOwner(),
           presence_owner ? std::move(presence_owner) : NoOwner(),
           channel_,
           NoOwner()},
      conversations_(ctx_),
      inboxes_(ctx_),
      deferred_reads_(kv) {
  channel_.SetSelf(ctx_.cfg.node_id,
                   [this](const std::string& from, std::string_view payload, Effects& fx) {
                     return ApplyAppend(from, payload, fx);
                   });
}

Status SessionCore::Load() {
  if (Status s = channel_.Load(); !s.ok()) return s;
  return handover_.Load();
}

Status SessionCore::ApplyAppend(const std::string& from, std::string_view payload, Effects& fx) {
  auto handled = handover_.OnPayload(from, payload);
  if (!handled.ok()) return handled.status();
  if (*handled) return Status::Ok();
  InboxAppend a;
  if (!DecodeRecord(payload, a)) {
    // A payload we cannot read would block the channel forever: skip it, loudly.
    spdlog::error("undecodable channel payload skipped");
    return Status::Ok();
  }
  // Users whose rows are not here (yet) wait in the stash; see Handover::ApplyNow.
  InboxAppend later{{}, a.entry};
  std::erase_if(a.users, [&](const std::string& u) {
    if (handover_.ApplyNow(u, ctx_.owner(u) == ctx_.cfg.node_id)) return false;
    later.users.push_back(u);
    return true;
  });
  if (!later.users.empty())
    if (Status s = handover_.Stash(EncodeRecord(later)); !s.ok()) return s;
  if (a.users.empty()) return Status::Ok();
  return inboxes_.Apply(a, fx);
}

void SessionCore::StepHandover(Effects& fx) {
  if (!handover_.active()) return;
  auto ended = handover_.Step(
      [&](std::string_view payload) {
        InboxAppend a;
        if (!DecodeRecord(payload, a)) return Status::Ok();  // stashed by us: cannot happen
        return inboxes_.Apply(a, fx);
      },
      fx);
  if (!ended.ok()) Fail(ended.status());
}

Status SessionCore::OnMapChanged(const MapChange& change, Effects& fx) {
  ctx_.cfg.epoch = change.epoch;
  auto began = handover_.TakeMap(change, fx);
  if (!began.ok() || !*began) return began.status();
  // Users moving away: their gateways announce them to the new owner; we push no more.
  inboxes_.ForgetUsers([&](const std::string& user) { return handover_.MovingOut(user); });
  StepHandover(fx);
  return Status::Ok();
}

void SessionCore::Fail(const Status& s) {
  if (!s.ok() && batch_error_.ok()) batch_error_ = s;
}

bool SessionCore::CheckOwner(const std::string& from, const codec::Envelope& env, Effects& fx) {
  // A request routed with an older map is judged by ours: served if the key is ours and not
  // still moving in (its rows on the way). One routed with a newer map than ours we cannot
  // judge yet. Either refusal makes the sender retry.
  if (env.epoch <= ctx_.cfg.epoch && !env.key.empty() && ctx_.owner(env.key) == ctx_.cfg.node_id &&
      handover_.Ready(env.key))
    return true;
  // Routed with another map, or to the wrong shard: say so instead of acting on it.
  codec::Envelope r;
  r.type = MeshType::kWrongOwner;
  r.req = env.req;
  r.key = env.key;
  r.stamp = env.stamp;
  fx.mesh.push_back({from, std::move(r), 0});
  return false;
}

void SessionCore::OnEnvelope(const std::string& from, codec::Envelope&& env, Effects& fx) {
  switch (env.type) {
    case MeshType::kConnOpen:
      // A user moving in: no answer yet; the gateway announces the connection again each
      // second until it is registered.
      if (!handover_.Ready(env.key)) return;
      if (!CheckOwner(from, env, fx)) return;
      Fail(inboxes_.OnConnOpen(env.stamp, fx));
      Activity(env.stamp.user, false, fx);
      return;
    case MeshType::kConnClose:
      inboxes_.OnConnClose(env.stamp);
      watch_gen_.erase(env.stamp.conn);
      Activity(env.stamp.user, false, fx);
      return;
    case MeshType::kConnSync: {  // which connections a gateway believes we hold of its own
      codec::ConnDigest d;
      if (codec::Decode(env.body, d) != codec::DecodeStatus::kOk) return;
      if (auto diff = inboxes_.CompareWith(from, d)) {
        ++conn_resyncs_;
        codec::Envelope r;
        r.type = MeshType::kConnSyncDiff;
        r.body = codec::Encode(*diff);
        fx.mesh.push_back({from, std::move(r), 0});
      }
      return;
    }
    case MeshType::kPushResync: {  // the gateway lost envelopes from us: answer, then push again
      codec::Envelope ok;
      ok.type = MeshType::kPushResyncOk;
      ok.req = env.req;
      fx.mesh.push_back({from, std::move(ok), 0});
      Fail(inboxes_.RestartPushes(from, fx));
      return;
    }
    case MeshType::kTyping:  // someone types to one of our users: ring its devices, store nothing
      if (load_.AtLeast(LoadLevel::kShedHints)) {
        ++shed_.typing;
        return;
      }
      inboxes_.Notify(env.key, static_cast<uint8_t>(FrameType::kTypingNotice), env.body, fx);
      return;
    case MeshType::kClientFrame:
      if (CheckOwner(from, env, fx)) Fail(HandleClientFrame(env, fx));
      return;
    case MeshType::kDeliver:
      if (CheckOwner(from, env, fx)) Fail(conversations_.OnDeliver(from, env, fx));
      return;
    case MeshType::kDeliverResult: return HandleDeliverResult(env, fx);
    case MeshType::kHistoryReq:
      if (CheckOwner(from, env, fx)) Fail(conversations_.OnHistory(env, fx));
      return;
    case MeshType::kWrongOwner:
      env.arg = static_cast<uint64_t>(ErrorCode::kServiceUnavailable);
      return HandleDeliverResult(env, fx);
    case MeshType::kChanMsg:
      Fail(channel_.OnMessage(from, env, [&](const std::string& f, std::string_view payload) {
        return ApplyAppend(f, payload, fx);
      }));
      StepHandover(fx);  // a marker or a done may let it move on
      return;
    case MeshType::kChanAck: Fail(channel_.OnAck(from, env, fx)); return;
    case MeshType::kGroupHint:  // a large group has new messages: ring the member's devices
      inboxes_.Notify(env.stamp.user, static_cast<uint8_t>(FrameType::kGroupHint), env.body, fx);
      return;
    default: return;  // not for a session node
  }
}

Status SessionCore::HandleClientFrame(const codec::Envelope& env, Effects& fx) {
  switch (static_cast<FrameType>(env.ftype)) {
    case FrameType::kSend: return HandleSend(env, fx);
    case FrameType::kChatMode: return HandleChatMode(env, fx);
    case FrameType::kHistory: return HandleHistory(env, fx);
    case FrameType::kAck: {
      codec::Ack ack;
      if (codec::Decode(env.body, ack) != codec::DecodeStatus::kOk) {
        ctx_.ErrorToClient(env.stamp, ErrorCode::kBadRequest, "ack body must be {n}", std::nullopt,
                           false, fx);
        return Status::Ok();
      }
      return inboxes_.OnAck(env.stamp, ack.n, fx);
    }
    case FrameType::kGroup: return HandleGroupFrame(env, fx);
    case FrameType::kGroupSend:
      Activity(env.stamp.user, true, fx);
      return HandleGroupFrame(env, fx);
    case FrameType::kPresenceQuery:
    case FrameType::kPresenceWatch:
    case FrameType::kTyping:
    case FrameType::kPrivacy: return HandlePresenceFrame(env, fx);
    case FrameType::kRead: {
      codec::Read read;
      if (codec::Decode(env.body, read) != codec::DecodeStatus::kOk ||
          !codec::IsValidId(read.chat)) {
        ctx_.ErrorToClient(env.stamp, ErrorCode::kBadRequest, "read body must be {chat, seq}",
                           std::nullopt, false, fx);
        return Status::Ok();
      }
      if (!read.app) Activity(env.stamp.user, true, fx);
      if (load_.AtLeast(LoadLevel::kDelayReceipts)) {
        ++shed_.receipts_delayed;
        return deferred_reads_.Put(env.stamp.user, read);
      }
      return inboxes_.OnRead(env.stamp, read, fx);
    }
    default:
      ctx_.ErrorToClient(env.stamp, ErrorCode::kUnknownType,
                         std::string("frame type not handled: ") + codec::FrameTypeName(env.ftype),
                         std::nullopt, false, fx);
      return Status::Ok();
  }
}

bool SessionCore::AllowSend(const codec::Stamp& who, uint64_t cid, Effects& fx) {
  const int64_t now = ctx_.clock.MonoMs();
  // Load first: refused before anything is stored, with a retry_after the client waits out.
  if (auto refused = RefuseSend(load_, heavy_, shed_, who.user, now, cid)) {
    ctx_.ToClient(who, static_cast<uint8_t>(FrameType::kError), codec::Encode(*refused), fx);
    return false;
  }
  auto it = send_limit_.try_emplace(who.user, ctx_.cfg.send_rate, ctx_.cfg.send_burst).first;
  if (it->second.Take(now)) return true;
  // Refused before anything is stored: nothing acknowledged is ever dropped by a limiter.
  codec::Error e{ErrorCode::kRateLimited, "too many messages; retry later", cid, false,
                 static_cast<uint64_t>(it->second.RetryAfterMs(now))};
  ctx_.ToClient(who, static_cast<uint8_t>(FrameType::kError), codec::Encode(e), fx);
  return false;
}

bool SessionCore::CheckMedia(const codec::Stamp& from, const std::optional<codec::MediaRef>& media,
                             uint64_t cid, Effects& fx) {
  if (!media) return true;
  // The ticket is the media node's signature, issued only once every byte was stored and
  // the hash matched: checking it here needs no round trip to the media node.
  if (!codec::VerifyMediaTicket(*media, ctx_.cfg.secret) &&
      (ctx_.cfg.previous_secret.empty() ||
       !codec::VerifyMediaTicket(*media, ctx_.cfg.previous_secret))) {
    ctx_.ErrorToClient(from, ErrorCode::kMediaIncomplete,
                       "media reference is not of a completed upload (or was altered)", cid, false,
                       fx);
    return false;
  }
  return true;
}

Status SessionCore::HandleSend(const codec::Envelope& env, Effects& fx) {
  codec::Send send;
  const auto ds = codec::Decode(env.body, send);
  auto refuse = [&](const std::string& msg, std::optional<uint64_t> cid) {
    ctx_.ErrorToClient(env.stamp, ErrorCode::kBadRequest, msg, cid, false, fx);
    return Status::Ok();
  };
  if (ds == codec::DecodeStatus::kTooLarge)  // name the limit that was broken
    return refuse(env.body.size() > codec::kMaxBodyBytes
                      ? "body over " + std::to_string(codec::kMaxBodyBytes) + " bytes"
                      : "a field over its limit (ids at most " +
                            std::to_string(codec::kMaxIdBytes) +
                            " bytes, lists and maps at most 32 entries)",
                  std::nullopt);
  if (ds != codec::DecodeStatus::kOk) return refuse("send body must be {to, cid, body}", {});
  if (send.cid == 0) return refuse("cid must be > 0", std::nullopt);
  if (!codec::IsValidId(send.to)) return refuse("invalid recipient id", send.cid);
  if (!CheckMedia(env.stamp, send.media, send.cid, fx)) return Status::Ok();
  if (!AllowSend(env.stamp, send.cid, fx)) return Status::Ok();
  if (!send.app) Activity(env.stamp.user, true, fx);
  DeliverToOwner(env, send.to, send.cid, fx);
  return Status::Ok();
}

void SessionCore::DeliverToOwner(const codec::Envelope& env, const std::string& to, uint64_t cid,
                                 Effects& fx) {
  const std::string conv = ConversationId(env.stamp.user, to);
  const std::string& owner = ctx_.owner(conv);
  if (!ctx_.peer_up(owner)) {
    ctx_.ErrorToClient(env.stamp, ErrorCode::kServiceUnavailable,
                       "the conversation's shard is unreachable; retry", cid, false, fx);
    return;
  }
  codec::Envelope d;
  d.type = MeshType::kDeliver;
  d.req = next_req_++;
  d.key = conv;
  d.stamp = env.stamp;
  d.ftype = env.ftype;  // send or chat_mode
  d.body = env.body;    // validated; the owner decodes it again rather than trusting a copy
  pending_[d.req] = {env.stamp, cid, ctx_.clock.MonoMs() + ctx_.cfg.deliver_timeout_ms};
  // Sent at once, not after this shard's next fsync: the sender's shard stores nothing for
  // it (pending_ is memory; a lost one times out and the client retries with its cid), and
  // every deliver goes so, in order. One fsync stage less on every chat.
  fx.mesh.push_back({owner, std::move(d), 0, /*now=*/true});
}

Status SessionCore::HandleChatMode(const codec::Envelope& env, Effects& fx) {
  codec::ChatMode m;
  codec::ChatRetention r;
  auto refuse = [&](const std::string& msg, std::optional<uint64_t> cid) {
    ctx_.ErrorToClient(env.stamp, ErrorCode::kBadRequest, msg, cid, false, fx);
    return Status::Ok();
  };
  if (codec::Decode(env.body, m) != codec::DecodeStatus::kOk)
    return refuse("chat_mode body must be {to, cid, mode, timer}", std::nullopt);
  if (m.cid == 0) return refuse("cid must be > 0", std::nullopt);
  if (!codec::IsValidId(m.to)) return refuse("invalid chat id", m.cid);
  if (!codec::ParseRetention(m.mode, r))
    return refuse("mode must be temporary or permanent", m.cid);
  if (m.timer != 0 && (m.timer < codec::kMinTimerS || m.timer > codec::kMaxTimerS))
    return refuse("timer must be 0 (off) or 1 s .. 90 days", m.cid);
  if (!AllowSend(env.stamp, m.cid, fx)) return Status::Ok();
  Activity(env.stamp.user, true, fx);
  DeliverToOwner(env, m.to, m.cid, fx);
  return Status::Ok();
}

Status SessionCore::HandleHistory(const codec::Envelope& env, Effects& fx) {
  codec::History h;
  if (codec::Decode(env.body, h) != codec::DecodeStatus::kOk || !codec::IsValidId(h.chat)) {
    ctx_.ErrorToClient(env.stamp, ErrorCode::kBadRequest,
                       "history body must be {rid, chat, before, after, limit}", std::nullopt,
                       false, fx);
    return Status::Ok();
  }
  const std::string conv = ConversationId(env.stamp.user, h.chat);
  const std::string& owner = ctx_.owner(conv);
  if (!ctx_.peer_up(owner)) {
    ctx_.ErrorToClient(env.stamp, ErrorCode::kServiceUnavailable,
                       "the conversation's shard is unreachable; retry", std::nullopt, false, fx);
    return Status::Ok();
  }
  codec::Envelope d;
  d.type = MeshType::kHistoryReq;
  d.key = conv;
  d.stamp = env.stamp;
  d.body = env.body;
  fx.mesh.push_back({owner, std::move(d), 0});
  return Status::Ok();
}

void SessionCore::HandleDeliverResult(const codec::Envelope& env, Effects& fx) {
  auto it = pending_.find(env.req);
  if (it == pending_.end()) return;  // timed out already; the client retries with its cid
  PendingSend p = std::move(it->second);
  pending_.erase(it);
  if (env.type == MeshType::kDeliverResult && env.arg == 0) {
    // Durable at the owner before it answered; nothing here to wait for.
    ctx_.ToClient(p.sender, static_cast<uint8_t>(FrameType::kSent), env.body, fx);
    fx.mesh.back().now = true;
    return;
  }
  ctx_.ErrorToClient(p.sender, ErrorCode::kServiceUnavailable, "could not store; retry", p.cid,
                     false, fx);
}

void SessionCore::OnPeerUp(const std::string& node, bool restarted, Effects& fx) {
  // A restarted gateway's old connections died with it; it re-announces the live ones.
  if (restarted) ForgetGateway(node);
  Fail(channel_.OnPeerUp(node, fx));
}

// Not heard for the heartbeat timeout: its connections are unreachable, so they stop counting
// (presence, pushes). If the gateway is alive and never saw us go, its next connection digest
// brings them back (codec/conn_sync.h): forgetting here is safe because it is not final.
void SessionCore::OnPeerDown(const std::string& node) {
  ForgetGateway(node);
}

void SessionCore::ForgetGateway(const std::string& node) {
  for (auto& user : inboxes_.ForgetGateway(node)) presence_due_.insert(std::move(user));
}

void SessionCore::OnTick(Effects& fx) {
  const int64_t now = ctx_.clock.MonoMs();
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.deadline_ms <= now) {
      ctx_.ErrorToClient(it->second.sender, ErrorCode::kServiceUnavailable,
                         "the conversation's shard did not answer in time; retry", it->second.cid,
                         false, fx);
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& user : presence_due_) Activity(user, false, fx);  // their devices went
  presence_due_.clear();
  Fail(inboxes_.OnTick(fx));
  Fail(channel_.OnTick(fx));
  StepHandover(fx);
  // Expiry waits while keys move: rows on their way must not expire twice (here and there).
  // So do put-off read receipts: their rows move with their users.
  if (handover_.active()) return;
  FlushDeferredReads(fx);
  Fail(inboxes_.ExpireDue(1000, fx));
  Fail(conversations_.ExpireDedup(1000));
  Fail(conversations_.ExpireLog(1000));
}

void SessionCore::FlushDeferredReads(Effects& fx) {
  constexpr int64_t kReadBatchMs = 5000;
  const int64_t now = ctx_.clock.MonoMs();
  const bool loaded = load_.AtLeast(LoadLevel::kDelayReceipts);
  if (loaded && now - reads_flushed_ms_ < kReadBatchMs) return;
  reads_flushed_ms_ = now;
  auto n =
      deferred_reads_.Take(loaded ? 2000 : 500, [&](const std::string& user, const codec::Read& r) {
        return inboxes_.OnRead(codec::Stamp{user, "", 0, ""}, r, fx);
      });
  if (!n.ok()) Fail(n.status());
}

std::string SessionCore::DescribeUser(const std::string& user) {
  std::string out;
  codec::Writer w(out);
  const auto conns = inboxes_.ConnectionsOf(user);
  auto us = inboxes_.LoadUser(user);
  const uint64_t devices = us.ok() ? us->devices.size() : 0;
  const uint64_t waiting = us.ok() && us->next_n > us->kept_from ? us->next_n - us->kept_from : 0;
  w.Map(4).Key("user").Str(user).Key("connected").Array(static_cast<uint32_t>(conns.size()));
  for (const auto& c : conns) w.Array(3).Str(c.device).Str(c.gateway).Uint(c.conn);
  w.Key("devices").Uint(devices).Key("waiting").Uint(waiting);
  return out;
}

void SessionCore::OnStoreLost(Effects& fx) {
  fx.Clear();
  channel_.OnCommitFailed();
  inboxes_.OnCommitFailed();
  handover_.Reload();
}

Status SessionCore::EndBatch(Effects& fx) {
  Status s = channel_.CommitBatch(batch_error_, fx);
  if (!s.ok()) {
    inboxes_.OnCommitFailed();
    handover_.Reload();  // its positions went back with the batch
  }
  return s;
}

}  // namespace meshchat::nodes
