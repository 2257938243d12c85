#include "nodes/session_core.h"

#include <algorithm>

namespace meshchat::nodes {

using codec::ErrorCode;
using codec::FrameType;
using codec::MeshType;

SessionCore::SessionCore(SessionConfig cfg, const Clock& clock, OwnerFn owner, PeerUpFn peer_up)
    : cfg_(std::move(cfg)), clock_(clock), owner_(std::move(owner)), peer_up_(std::move(peer_up)) {}

uint64_t SessionCore::NextMessageId() {
  // Time-ordered and strictly increasing on this shard: (ms << 16) | counter.
  const uint64_t base = static_cast<uint64_t>(clock_.WallMs()) << 16;
  last_id_ = std::max(last_id_ + 1, base);
  return last_id_;
}

std::vector<DeviceConn> SessionCore::DevicesOf(const std::string& user) const {
  auto it = directory_.find(user);
  return it == directory_.end() ? std::vector<DeviceConn>{} : it->second;
}

void SessionCore::ToClient(const codec::Stamp& to, FrameType type, std::string body, Effects& fx) {
  codec::Envelope env;
  env.type = MeshType::kToClient;
  env.key = to.user;
  env.stamp = to;
  env.ftype = static_cast<uint8_t>(type);
  env.body = std::move(body);
  fx.mesh.push_back({to.gateway, std::move(env), 0});
}

void SessionCore::ErrorToClient(const codec::Stamp& to, ErrorCode code, const std::string& msg,
                                std::optional<uint64_t> cid, Effects& fx) {
  ToClient(to, FrameType::kError, codec::Encode(codec::Error{code, msg, cid, false}), fx);
}

bool SessionCore::CheckOwner(const std::string& from, const codec::Envelope& env, Effects& fx) {
  if (env.epoch == cfg_.epoch && !env.key.empty() && owner_(env.key) == cfg_.node_id) return true;
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
    case MeshType::kConnOpen: {
      if (!CheckOwner(from, env, fx)) return;
      auto& devs = directory_[env.key];
      DeviceConn d{env.stamp.device, env.stamp.gateway, env.stamp.conn};
      if (std::find(devs.begin(), devs.end(), d) == devs.end()) {
        devs.push_back(std::move(d));
        ++directory_size_;
      }
      // The gateway welcomes the client only now, so a welcomed client is reachable.
      codec::Envelope r;
      r.type = MeshType::kConnOpened;
      r.key = env.key;
      r.stamp = env.stamp;
      fx.mesh.push_back({env.stamp.gateway, std::move(r), 0});
      return;
    }
    case MeshType::kConnClose: {
      auto it = directory_.find(env.key);
      if (it == directory_.end()) return;
      auto& devs = it->second;
      const size_t before = devs.size();
      std::erase_if(devs, [&](const DeviceConn& d) {
        return d.gateway == env.stamp.gateway && d.conn == env.stamp.conn;
      });
      directory_size_ -= before - devs.size();
      if (devs.empty()) directory_.erase(it);
      return;
    }
    case MeshType::kClientFrame:
      if (!CheckOwner(from, env, fx)) return;
      return HandleClientFrame(std::move(env), fx);
    case MeshType::kDeliver: return HandleDeliver(from, std::move(env), fx);
    case MeshType::kDeliverResult: return HandleDeliverResult(env, fx);
    case MeshType::kWrongOwner:
      // Our deliver reached a shard that does not own the recipient under its map.
      env.arg = static_cast<uint64_t>(ErrorCode::kServiceUnavailable);
      return HandleDeliverResult(env, fx);
    default: return;  // not for a session node; ignore
  }
}

void SessionCore::HandleClientFrame(codec::Envelope&& env, Effects& fx) {
  switch (static_cast<FrameType>(env.ftype)) {
    case FrameType::kSend: return HandleSend(env, fx);
    case FrameType::kAck: {
      codec::Ack ack;
      if (codec::Decode(env.body, ack) != codec::DecodeStatus::kOk)
        return ErrorToClient(env.stamp, ErrorCode::kBadRequest, "ack body must be {id}",
                             std::nullopt, fx);
      // Delivery is not yet durable (no inbox to trim), so a well-formed ack completes here.
      return;
    }
    default:
      return ErrorToClient(
          env.stamp, ErrorCode::kUnknownType,
          std::string("frame type not handled: ") + codec::FrameTypeName(env.ftype), std::nullopt,
          fx);
  }
}

void SessionCore::HandleSend(const codec::Envelope& env, Effects& fx) {
  codec::Send send;
  const auto ds = codec::Decode(env.body, send);
  if (ds == codec::DecodeStatus::kTooLarge)
    return ErrorToClient(env.stamp, ErrorCode::kBadRequest,
                         "a field is over its limit (body at most " +
                             std::to_string(codec::kMaxBodyBytes) + " bytes)",
                         std::nullopt, fx);
  if (ds != codec::DecodeStatus::kOk)
    return ErrorToClient(env.stamp, ErrorCode::kBadRequest, "send body must be {to, cid, body}",
                         std::nullopt, fx);
  if (send.cid == 0)
    return ErrorToClient(env.stamp, ErrorCode::kBadRequest, "cid must be > 0", std::nullopt, fx);
  if (!codec::IsValidId(send.to))
    return ErrorToClient(env.stamp, ErrorCode::kBadRequest, "invalid recipient id", send.cid, fx);

  Pending p{env.stamp, send.cid, NextMessageId(), static_cast<uint64_t>(clock_.WallMs()),
            clock_.MonoMs() + cfg_.deliver_timeout_ms};
  const std::string& shard = owner_(send.to);
  if (!peer_up_(shard))
    return ErrorToClient(env.stamp, ErrorCode::kServiceUnavailable,
                         "recipient's shard unreachable; retry", send.cid, fx);
  codec::Push push{env.stamp.user, env.stamp.device, send.cid, p.id, p.ts, std::move(send.body)};
  codec::Envelope d;
  d.type = MeshType::kDeliver;
  d.req = next_req_++;
  d.key = send.to;
  d.stamp = env.stamp;
  d.body = codec::Encode(push);
  pending_.emplace(d.req, std::move(p));
  fx.mesh.push_back({shard, std::move(d), 0});
}

void SessionCore::HandleDeliver(const std::string& from, codec::Envelope&& env, Effects& fx) {
  if (!CheckOwner(from, env, fx)) return;
  uint64_t result = static_cast<uint64_t>(ErrorCode::kRecipientUnavailable);
  if (auto it = directory_.find(env.key); it != directory_.end()) {
    for (const DeviceConn& d : it->second) {
      if (!peer_up_(d.gateway)) continue;
      ToClient(codec::Stamp{env.key, d.device, d.conn, d.gateway}, FrameType::kPush, env.body, fx);
      result = 0;
    }
  }
  codec::Envelope r;
  r.type = MeshType::kDeliverResult;
  r.req = env.req;
  r.arg = result;
  r.key = env.key;
  fx.mesh.push_back({from, std::move(r), 0});
}

void SessionCore::HandleDeliverResult(const codec::Envelope& env, Effects& fx) {
  auto it = pending_.find(env.req);
  if (it == pending_.end()) return;  // already timed out
  Pending p = std::move(it->second);
  pending_.erase(it);
  if (env.arg == 0) {
    ToClient(p.sender, FrameType::kSent, codec::Encode(codec::Sent{p.cid, p.id, p.ts}), fx);
    return;
  }
  const auto code = static_cast<ErrorCode>(env.arg);
  ErrorToClient(p.sender, code,
                code == ErrorCode::kRecipientUnavailable ? "recipient is not connected"
                                                         : "could not deliver; retry",
                p.cid, fx);
}

void SessionCore::OnTick(Effects& fx) {
  const int64_t now = clock_.MonoMs();
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.deadline_ms <= now) {
      ErrorToClient(it->second.sender, ErrorCode::kServiceUnavailable,
                    "recipient's shard did not answer in time; retry", it->second.cid, fx);
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
}

void SessionCore::ForgetGateway(const std::string& gateway) {
  for (auto it = directory_.begin(); it != directory_.end();) {
    const size_t before = it->second.size();
    std::erase_if(it->second, [&](const DeviceConn& d) { return d.gateway == gateway; });
    directory_size_ -= before - it->second.size();
    it = it->second.empty() ? directory_.erase(it) : std::next(it);
  }
}

}  // namespace meshchat::nodes
