#include "nodes/gateway/gateway_core.h"

#include "codec/conn_sync.h"
#include "codec/media_messages.h"
#include "codec/token.h"

#include <algorithm>
#include <map>
#include <unordered_set>

namespace meshchat::nodes {

using codec::ErrorCode;
using codec::FrameType;

GatewayCore::GatewayCore(GatewayConfig cfg, const Clock& clock, const router::HashRing& sessions,
                         PeerUpFn peer_up)
    : cfg_(std::move(cfg)), clock_(clock), sessions_(sessions), peer_up_(std::move(peer_up)) {}

bool GatewayCore::AllowConnect(const std::string& addr) {
  switch (addresses_.Connect(addr, clock_.MonoMs())) {
    case AddressLimits::Verdict::kOk: return true;
    case AddressLimits::Verdict::kTooFast: ++refused_fast_; return false;
    case AddressLimits::Verdict::kAuthFailures: ++refused_auth_; return false;
  }
  return false;
}

void GatewayCore::OnOpen(uint64_t conn, const std::string& addr) {
  Conn& c = conns_[conn];
  c.opened_ms = clock_.MonoMs();
  c.addr = addr;
}

void GatewayCore::Error(uint64_t conn, ErrorCode code, const std::string& msg, Effects& fx) {
  errors_.Add(static_cast<uint8_t>(code));
  codec::Error e{code, msg, std::nullopt, false};
  fx.writes.push_back({conn, codec::EncodeMessageFrame(e)});
}

void GatewayCore::Fatal(uint64_t conn, ErrorCode code, const std::string& msg, Effects& fx) {
  errors_.Add(static_cast<uint8_t>(code));
  codec::Error e{code, msg, std::nullopt, true};
  fx.writes.push_back({conn, codec::EncodeMessageFrame(e)});
  fx.closes.push_back(conn);
}

codec::Stamp GatewayCore::StampOf(uint64_t conn, const Conn& c) const {
  return codec::Stamp{c.user, c.device, conn, cfg_.node_id};
}

void GatewayCore::Announce(uint64_t conn, const Conn& c, codec::MeshType type, Effects& fx) {
  if (sessions_.empty()) return;
  codec::Envelope env;
  env.type = type;
  env.key = c.user;
  env.stamp = StampOf(conn, c);
  fx.mesh.push_back({sessions_.Owner(c.user), std::move(env), 0});
}

void GatewayCore::OnFrame(uint64_t conn, const codec::FrameView& f, Effects& fx) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  Conn& c = it->second;
  frames_in_.Add(f.type);
  const auto type = static_cast<FrameType>(f.type);
  if (!codec::IsClientToServer(f.type))
    return Fatal(conn, ErrorCode::kUnknownType, "unknown frame type " + std::to_string(f.type), fx);
  if (type == FrameType::kBye) {
    fx.closes.push_back(conn);
    return;
  }
  if (!c.frames) c.frames = std::make_unique<TokenBucket>(cfg_.frame_rate, cfg_.frame_burst);
  const int64_t now = clock_.MonoMs();
  if (!c.frames->Take(now)) {
    errors_.Add(static_cast<uint8_t>(ErrorCode::kRateLimited));
    codec::Error e{ErrorCode::kRateLimited, "too many frames; slow down", std::nullopt, false,
                   static_cast<uint64_t>(c.frames->RetryAfterMs(now))};
    fx.writes.push_back({conn, codec::EncodeMessageFrame(e)});
    return;
  }
  if (!c.authed) {
    if (type != FrameType::kHello)
      return Fatal(conn, ErrorCode::kNotAuthenticated, "send hello first", fx);
    return HandleHello(conn, c, f.body, fx);
  }
  switch (type) {
    case FrameType::kHello:
      return Error(conn, ErrorCode::kAlreadyAuthenticated, "already authenticated", fx);
    case FrameType::kPing:
      // Answered here, body echoed verbatim: keep-alives never load the workers.
      fx.writes.push_back(
          {conn, codec::EncodeFrame(static_cast<uint8_t>(FrameType::kPong), f.body)});
      return;
    case FrameType::kTyping:
      if (load_.AtLeast(LoadLevel::kShedHints)) {  // a hint: dropped before any worker sees it
        ++shed_.typing;
        return;
      }
      return Forward(conn, c, f, fx);
    case FrameType::kSend:
    case FrameType::kGroupSend:
      // (A gateway has no hard queue cap: only level 3 refuses here.)
      if (auto refused = RefuseSend(load_, heavy_, shed_, c.user, now, std::nullopt)) {
        errors_.Add(static_cast<uint8_t>(refused->code));
        fx.writes.push_back({conn, codec::EncodeMessageFrame(*refused)});
        return;
      }
      return Forward(conn, c, f, fx);
    default: return Forward(conn, c, f, fx);
  }
}

void GatewayCore::HandleHello(uint64_t conn, Conn& c, std::string_view body, Effects& fx) {
  codec::Hello hello;
  if (codec::Decode(body, hello) != codec::DecodeStatus::kOk)
    return Fatal(conn, ErrorCode::kMalformedFrame, "hello body is not {v, token}", fx);
  if (hello.version != codec::kProtocolVersion)
    return Fatal(conn, ErrorCode::kUnsupportedVersion,
                 "protocol version " + std::to_string(hello.version) + " not supported (use " +
                     std::to_string(codec::kProtocolVersion) + ")",
                 fx);
  codec::TokenClaims claims;
  const int64_t now_s = clock_.WallMs() / 1000;
  auto verdict = codec::VerifyToken(hello.token, cfg_.secret, now_s, claims, cfg_.token_leeway_s);
  if (verdict == codec::TokenStatus::kBadSignature && !cfg_.previous_secret.empty())
    verdict =
        codec::VerifyToken(hello.token, cfg_.previous_secret, now_s, claims, cfg_.token_leeway_s);
  switch (verdict) {
    case codec::TokenStatus::kOk: break;
    case codec::TokenStatus::kExpired:
      addresses_.AuthFailed(c.addr, clock_.MonoMs());
      return Fatal(conn, ErrorCode::kTokenExpired, "token expired", fx);
    default:
      addresses_.AuthFailed(c.addr, clock_.MonoMs());  // guessing tokens costs the address
      return Fatal(conn, ErrorCode::kBadToken, "invalid token", fx);
  }
  if (claims.expires_s - clock_.WallMs() / 1000 > cfg_.max_token_ttl_s + cfg_.token_leeway_s) {
    addresses_.AuthFailed(c.addr, clock_.MonoMs());
    return Fatal(conn, ErrorCode::kBadToken,
                 "token lifetime over " + std::to_string(cfg_.max_token_ttl_s) + " s", fx);
  }
  if (revoked_.Revoked(claims)) {
    addresses_.AuthFailed(c.addr, clock_.MonoMs());
    return Fatal(conn, ErrorCode::kBadToken, "token revoked", fx);
  }
  c.issued_s = claims.issued_s;
  if (sessions_.empty() || !peer_up_(sessions_.Owner(claims.user)))
    return Fatal(conn, ErrorCode::kServiceUnavailable, "session shard unreachable; reconnect", fx);
  c.authed = true;
  fx.authenticated.push_back(conn);
  c.user = std::move(claims.user);
  c.device = std::move(claims.device);
  c.opened_ms = clock_.MonoMs();  // now the registration deadline starts
  ++authenticated_;
  // Welcome waits for the shard's kConnOpened. Frames the client sends meanwhile are
  // forwarded behind the conn_open on the same ordered link, so nothing overtakes it.
  Announce(conn, c, codec::MeshType::kConnOpen, fx);
}

void GatewayCore::ForwardMedia(uint64_t conn, const Conn& c, const codec::FrameView& f,
                               Effects& fx) {
  if (!media_ || media_->empty() || !new_media_id_)
    return Error(conn, ErrorCode::kServiceUnavailable, "no media nodes in the map", fx);
  // Routed by the id: a fresh random one for upload_begin, else the frame's 16-byte prefix
  // (the only bytes of a media frame the gateway looks at).
  std::string id;
  if (f.type == static_cast<uint8_t>(FrameType::kUploadBegin)) {
    id = new_media_id_();
  } else {
    std::string_view prefix, rest;
    if (!codec::SplitMediaId(f.body, prefix, rest))
      return Error(conn, ErrorCode::kMalformedFrame, "media frame without its 16-byte id", fx);
    id.assign(prefix);
  }
  const std::string key = codec::HexOf(id);
  const std::string& owner = media_->Owner(key);
  if (!peer_up_(owner))
    return Error(conn, ErrorCode::kServiceUnavailable, "media node unreachable; retry", fx);
  codec::Envelope env;
  env.type = codec::MeshType::kClientFrame;
  env.key = key;
  env.stamp = StampOf(conn, c);
  env.ftype = f.type;
  env.body.assign(f.body);
  fx.mesh.push_back({owner, std::move(env), conn});
}

void GatewayCore::Forward(uint64_t conn, const Conn& c, const codec::FrameView& f, Effects& fx) {
  if (codec::IsMediaFrame(f.type)) return ForwardMedia(conn, c, f, fx);
  if (sessions_.empty())
    return Error(conn, ErrorCode::kServiceUnavailable, "no session nodes in the map", fx);
  const std::string& owner = sessions_.Owner(c.user);
  if (!peer_up_(owner))
    return Error(conn, ErrorCode::kServiceUnavailable, "session shard unreachable; retry", fx);
  codec::Envelope env;
  env.type = codec::MeshType::kClientFrame;
  env.key = c.user;
  env.stamp = StampOf(conn, c);
  env.ftype = f.type;
  env.body.assign(f.body);
  fx.mesh.push_back({owner, std::move(env), conn});
}

void GatewayCore::OnBadFrame(uint64_t conn, codec::DecodeStatus why, Effects& fx) {
  if (why == codec::DecodeStatus::kTooLarge) {
    auto it = conns_.find(conn);
    if (it != conns_.end() && !it->second.authed)
      return Fatal(conn, ErrorCode::kFrameTooLarge,
                   "frame length over " + std::to_string(codec::kMaxHelloFrameLength) +
                       " (the limit before hello)",
                   fx);
    return Fatal(conn, ErrorCode::kFrameTooLarge,
                 "frame length over " + std::to_string(codec::kMaxFrameLength), fx);
  }
  Fatal(conn, ErrorCode::kMalformedFrame, "malformed frame header", fx);
}

void GatewayCore::Unwatch(uint64_t conn, Conn& c, Effects& fx) {
  for (const auto& user : c.watching) {
    auto w = watchers_.find(user);
    if (w == watchers_.end()) continue;
    std::erase(w->second, conn);
    if (w->second.empty()) {  // no local watcher left: stop receiving its changes
      watchers_.erase(w);
      fx.unsubscribe.push_back(user);
    }
  }
  c.watching.clear();
}

void GatewayCore::OnPublished(const std::string& user, std::string_view body, Effects& fx) {
  auto w = watchers_.find(user);
  if (w == watchers_.end()) return;
  if (load_.AtLeast(LoadLevel::kShedHints)) {  // held: only the newest goes out, later
    held_presence_[user] = std::string(body);
    ++shed_.presence;
    return;
  }
  const std::string frame =
      codec::EncodeFrame(static_cast<uint8_t>(codec::FrameType::kPresence), body);
  for (uint64_t conn : w->second) fx.writes.push_back({conn, frame});
}

bool GatewayCore::Revoke(const std::string& user, const std::string& device, int64_t at_s,
                         Effects& fx) {
  if (!revoked_.Add(user, device, at_s)) return false;
  std::vector<uint64_t> doomed;
  for (const auto& [id, c] : conns_)
    if (c.authed && c.user == user && c.device == device && c.issued_s <= at_s)
      doomed.push_back(id);
  for (uint64_t id : doomed) Fatal(id, ErrorCode::kBadToken, "device revoked", fx);
  return true;
}

void GatewayCore::SetLoad(const LoadState& load, Effects& fx) {
  load_ = load;
  if (load_.AtLeast(LoadLevel::kShedHints)) return;
  auto held = std::move(held_presence_);
  held_presence_.clear();
  for (const auto& [user, body] : held) OnPublished(user, body, fx);
}

void GatewayCore::OnClosed(uint64_t conn, Effects& fx) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  Unwatch(conn, it->second, fx);
  if (it->second.authed) {
    --authenticated_;
    Announce(conn, it->second, codec::MeshType::kConnClose, fx);
  }
  conns_.erase(it);
}

void GatewayCore::OnMesh(const std::string& from, codec::Envelope&& env, Effects& fx) {
  if (env.type == codec::MeshType::kConnSyncDiff) return OnConnList(from, env.body, fx);
  if (HeldByResync(from, env)) return;
  auto it = conns_.find(env.stamp.conn);
  // A connection that is gone, or a stale stamp for another user: drop. Whatever must not be
  // lost is still held by the session shard until the client acknowledges it.
  if (it == conns_.end() || !it->second.authed || it->second.user != env.stamp.user) return;
  Conn& c = it->second;
  switch (env.type) {
    case codec::MeshType::kConnOpened:
      if (env.arg != 0) {
        const auto code = static_cast<ErrorCode>(env.arg);
        Fatal(env.stamp.conn, code,
              code == ErrorCode::kTooManyDevices ? "too many devices connected for this user"
                                                 : "registration refused",
              fx);
        break;
      }
      c.registered = true;
      if (!c.welcomed) {
        c.welcomed = true;
        codec::Welcome w{c.user, c.device, env.stamp.conn, cfg_.node_id,
                         static_cast<uint64_t>(clock_.WallMs())};
        fx.writes.push_back({env.stamp.conn, codec::EncodeMessageFrame(w)});
      }
      break;
    case codec::MeshType::kToClient:
      if (env.ftype == static_cast<uint8_t>(FrameType::kTypingNotice) &&
          load_.AtLeast(LoadLevel::kShedHints)) {
        ++shed_.typing;
        break;
      }
      fx.writes.push_back({env.stamp.conn, codec::EncodeFrame(env.ftype, env.body)});
      break;
    case codec::MeshType::kCloseConn: fx.closes.push_back(env.stamp.conn); break;
    case codec::MeshType::kWatchReset:  // a new watch list replaces the old one
      if (env.arg > c.watch_gen) {
        Unwatch(env.stamp.conn, c, fx);
        c.watch_gen = env.arg;
      }
      break;
    case codec::MeshType::kWatchOk:                         // the presence owner allows this watch
      if (env.req < c.watch_gen || env.key.empty()) break;  // for an older list
      if (env.req > c.watch_gen) {  // overtook its reset: apply the reset first
        Unwatch(env.stamp.conn, c, fx);
        c.watch_gen = env.req;
      }
      if (std::find(c.watching.begin(), c.watching.end(), env.key) == c.watching.end()) {
        c.watching.push_back(env.key);
        auto& w = watchers_[env.key];
        if (w.empty()) fx.subscribe.push_back(env.key);
        w.push_back(env.stamp.conn);
      }
      break;
    case codec::MeshType::kWrongOwner:
      Error(env.stamp.conn, ErrorCode::kServiceUnavailable, "cluster map changing; retry", fx);
      break;
    default: break;
  }
}

void GatewayCore::OnPeerUp(const std::string& node, Effects& fx) {
  if (sessions_.empty()) return;
  for (auto& [id, c] : conns_)
    if (c.authed && sessions_.Owner(c.user) == node) {
      c.registered = false;
      Announce(id, c, codec::MeshType::kConnOpen, fx);
    }
}

void GatewayCore::OnLinkGap(const std::string& node, Effects& fx) {
  const auto& shards = sessions_.nodes();
  if (std::find(shards.begin(), shards.end(), node) == shards.end()) return;
  ++push_resyncs_;
  AskPushResync(node, fx);
}

void GatewayCore::AskPushResync(const std::string& node, Effects& fx) {
  auto& r = resyncing_[node];
  r.token = next_resync_token_++;  // an answer to an older ask is not enough: it may be lost
  r.asked_ms = clock_.MonoMs();
  codec::Envelope env;
  env.type = codec::MeshType::kPushResync;
  env.req = r.token;
  fx.mesh.push_back({node, std::move(env), 0});
}

bool GatewayCore::HeldByResync(const std::string& from, const codec::Envelope& env) {
  auto it = resyncing_.find(from);
  if (it == resyncing_.end()) return env.type == codec::MeshType::kPushResyncOk;
  if (env.type == codec::MeshType::kPushResyncOk && env.req == it->second.token)
    resyncing_.erase(it);
  // Everything else from it is dropped until then: pushes come again after the answer;
  // `sent` and errors are answered again to the client's resend (same cid);
  // registrations are announced again each tick.
  return true;
}

void GatewayCore::SendConnDigests(Effects& fx) {
  if (sessions_.empty()) return;
  // Only confirmed connections: one still being announced is not yet expected to be there.
  std::map<std::string, codec::ConnDigest> digests;
  for (const auto& n : sessions_.nodes()) digests[n];
  for (const auto& [id, c] : conns_)
    if (c.authed && c.registered) digests[sessions_.Owner(c.user)].Add(id);
  for (auto& [node, d] : digests) {
    codec::Envelope env;
    env.type = codec::MeshType::kConnSync;
    env.body = codec::Encode(d);
    fx.mesh.push_back({node, std::move(env), 0});
  }
}

void GatewayCore::OnConnList(const std::string& shard, std::string_view body, Effects& fx) {
  codec::ConnList list;
  if (codec::Decode(body, list) != codec::DecodeStatus::kOk) return;
  uint64_t answered = 0;  // bit b: bucket b is answered in full
  for (uint64_t b : list.buckets) answered |= uint64_t{1} << b;
  std::unordered_set<uint64_t> held(list.conns.begin(), list.conns.end());
  // What it lacks: announced again (and again each tick until it confirms).
  for (auto& [id, c] : conns_) {
    if (!c.authed || !c.registered || !(answered & (uint64_t{1} << codec::ConnBucketOf(id))))
      continue;
    if (sessions_.Owner(c.user) != shard || held.count(id)) continue;
    c.registered = false;
    ++resynced_;
    Announce(id, c, codec::MeshType::kConnOpen, fx);
  }
  // What it holds and we do not (closed here while the link was down): closed there.
  for (size_t i = 0; i < list.conns.size(); ++i) {
    auto it = conns_.find(list.conns[i]);
    if (it != conns_.end() && it->second.authed && it->second.user == list.users[i] &&
        sessions_.Owner(it->second.user) == shard)
      continue;
    codec::Envelope close;
    close.type = codec::MeshType::kConnClose;
    close.key = list.users[i];
    close.stamp = codec::Stamp{list.users[i], "", list.conns[i], cfg_.node_id};
    fx.mesh.push_back({shard, std::move(close), 0});
    ++resynced_;
  }
}

void GatewayCore::OnSessionsChanged(const router::HashRing& old_ring, Effects& fx) {
  if (sessions_.empty() || old_ring.empty()) return;
  for (auto& [id, c] : conns_) {
    if (!c.authed || old_ring.Owner(c.user) == sessions_.Owner(c.user)) continue;
    codec::Envelope close;
    close.type = codec::MeshType::kConnClose;
    close.key = c.user;
    close.stamp = StampOf(id, c);
    fx.mesh.push_back({old_ring.Owner(c.user), std::move(close), 0});
    c.registered = false;
    Announce(id, c, codec::MeshType::kConnOpen, fx);
  }
}

void GatewayCore::OnTick(Effects& fx) {
  const int64_t now = clock_.MonoMs();
  if (now - revocations_expired_ms_ >= 60'000) {  // entries no acceptable token can match
    revoked_.Expire(clock_.WallMs() / 1000, cfg_.max_token_ttl_s + cfg_.token_leeway_s);
    revocations_expired_ms_ = now;
  }
  std::vector<std::string> ask_again;  // the ask or its answer was lost
  for (const auto& [node, r] : resyncing_)
    if (now - r.asked_ms >= 1000) ask_again.push_back(node);
  for (const auto& node : ask_again) AskPushResync(node, fx);
  if (now - conns_synced_ms_ >= cfg_.conn_sync_ms) {
    conns_synced_ms_ = now;
    SendConnDigests(fx);
  }
  for (const auto& [id, c] : conns_) {
    if (!c.authed && now - c.opened_ms > cfg_.hello_timeout_ms)
      Fatal(id, ErrorCode::kHelloTimeout, "no hello within the time limit", fx);
    else if (c.authed && !c.welcomed && now - c.opened_ms > cfg_.register_timeout_ms)
      Fatal(id, ErrorCode::kServiceUnavailable, "session shard did not answer; reconnect", fx);
    else if (c.authed && !c.registered)
      Announce(id, c, codec::MeshType::kConnOpen, fx);  // until the shard confirms
  }
}

void GatewayCore::Drain(Effects& fx) {
  const std::string frame = codec::EncodeFrame(static_cast<uint8_t>(FrameType::kReconnect),
                                               codec::Encode(codec::Bye{"draining"}));
  for (const auto& [id, c] : conns_) {
    fx.writes.push_back({id, frame});
    fx.closes.push_back(id);
  }
}

void GatewayCore::Shutdown(Effects& fx) {
  for (const auto& [id, c] : conns_) {
    fx.writes.push_back({id, codec::EncodeMessageFrame(codec::Bye{"shutting_down"})});
    fx.closes.push_back(id);
  }
}

}  // namespace meshchat::nodes
