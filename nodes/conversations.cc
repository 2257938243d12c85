#include "nodes/conversations.h"

#include <algorithm>

#include "nodes/records.h"

namespace meshchat::nodes {
namespace {
constexpr std::string_view kConvTable = "conv";
constexpr std::string_view kDedupTable = "dedup";
// be64(bucket end) + conversation: one mark per conversation per time bucket (1/32 of the
// retention) rather than one index entry per message.
constexpr std::string_view kDedupExpiryTable = "dedup_exp";

}  // namespace

uint64_t ExpiryBucketEnd(uint64_t when_ms, int64_t ttl_ms) {
  const uint64_t width = static_cast<uint64_t>(std::clamp<int64_t>(ttl_ms / 32, 1000, 3600000));
  return (when_ms / width + 1) * width;
}

std::string ConversationId(const std::string& a, const std::string& b) {
  return a <= b ? a + "|" + b : b + "|" + a;
}

void ShardContext::ToClient(const codec::Stamp& to, uint8_t type, std::string body,
                            Effects& fx) const {
  codec::Envelope env;
  env.type = codec::MeshType::kToClient;
  env.key = to.user;
  env.stamp = to;
  env.ftype = type;
  env.body = std::move(body);
  fx.mesh.push_back({to.gateway, std::move(env), 0});
}

void ShardContext::ErrorToClient(const codec::Stamp& to, codec::ErrorCode code,
                                 const std::string& msg, std::optional<uint64_t> cid, bool fatal,
                                 Effects& fx) const {
  ToClient(to, static_cast<uint8_t>(codec::FrameType::kError),
           codec::Encode(codec::Error{code, msg, cid, fatal}), fx);
}

Status Conversations::OnDeliver(const std::string& from, const codec::Envelope& env, Effects& fx) {
  codec::Send send;
  if (codec::Decode(env.body, send) != codec::DecodeStatus::kOk)
    return Status::Ok();  // the sender's shard validated it; a corrupt one is dropped
  const std::string& sender = env.stamp.user;
  const std::string dedup_key = env.key + '\0' + sender + '\0' + store::BigEndian64(send.cid);
  auto reply = [&](uint64_t seq, uint64_t ts) {
    codec::Envelope r;
    r.type = codec::MeshType::kDeliverResult;
    r.req = env.req;
    r.key = sender;
    r.stamp = env.stamp;
    r.body = codec::Encode(codec::Sent{send.cid, send.to, seq, ts});
    fx.mesh.push_back({from, std::move(r), 0});
  };

  // A retry of a message we already have: same sequence, no second delivery.
  std::vector<uint64_t> v;
  if (auto d = ctx_.kv.Get(kDedupTable, dedup_key); d.ok() && DecodeUints(*d, v, 2)) {
    reply(v[0], v[1]);
    return Status::Ok();
  } else if (!d.ok() && d.status().code() != Code::kNotFound) {
    return d.status();
  }

  uint64_t seq = 1;
  if (auto c = ctx_.kv.Get(kConvTable, env.key); c.ok()) {
    if (!DecodeUints(*c, v, 1)) return Status(Code::kInvalid, "corrupt conversation " + env.key);
    seq = v[0];
  } else if (c.status().code() != Code::kNotFound) {
    return c.status();
  }
  const uint64_t ts = static_cast<uint64_t>(ctx_.clock.WallMs());
  if (Status s = ctx_.kv.Put(kConvTable, env.key, EncodeUints({seq + 1})); !s.ok()) return s;
  if (seq == 1)  // a new chat: each is now the other's contact (presence privacy)
    for (const auto& [user, peer] : {std::pair{sender, send.to}, std::pair{send.to, sender}}) {
      const std::string& node = ctx_.presence_owner(user);
      if (node.empty()) continue;
      codec::Envelope c;
      c.type = codec::MeshType::kContact;
      c.key = user;
      c.body = peer;
      fx.mesh.push_back({node, std::move(c), 0});
    }
  if (Status s = ctx_.kv.Put(kDedupTable, dedup_key, EncodeUints({seq, ts})); !s.ok()) return s;
  const uint64_t forget_at = ts + static_cast<uint64_t>(ctx_.cfg.inbox_ttl_ms);
  const std::string mark =
      store::BigEndian64(ExpiryBucketEnd(forget_at, ctx_.cfg.inbox_ttl_ms)) + env.key;
  if (auto have = ctx_.kv.Get(kDedupExpiryTable, mark); !have.ok()) {
    if (have.status().code() != Code::kNotFound) return have.status();
    if (Status s = ctx_.kv.Put(kDedupExpiryTable, mark, ""); !s.ok()) return s;
  }

  InboxEntry e;
  e.kind = InboxEntry::Kind::kMessage;
  e.from = sender;
  e.from_device = env.stamp.device;
  e.seq = seq;
  e.cid = send.cid;
  e.ts = ts;
  e.expires_ms = ts + static_cast<uint64_t>(ctx_.cfg.inbox_ttl_ms);
  e.body = std::move(send.body);
  if (send.media) e.media = codec::Encode(*send.media);
  // The recipient's copy, then the sender's own (its other devices see what it sent).
  InboxAppend to_recipient{{send.to}, e};
  to_recipient.entry.chat = sender;
  if (Status s = ctx_.channel.Append(ctx_.owner(send.to), EncodeRecord(to_recipient), fx); !s.ok())
    return s;
  if (send.to != sender) {
    InboxAppend own{{sender}, std::move(e)};
    own.entry.chat = send.to;
    if (Status s = ctx_.channel.Append(ctx_.owner(sender), EncodeRecord(own), fx); !s.ok())
      return s;
  }
  reply(seq, ts);
  return Status::Ok();
}

Status Conversations::ExpireDedup(size_t max) {
  const uint64_t now = static_cast<uint64_t>(ctx_.clock.WallMs());
  const uint64_t ttl = static_cast<uint64_t>(ctx_.cfg.inbox_ttl_ms);
  std::vector<std::string> marks;
  Status s = ctx_.kv.Scan(kDedupExpiryTable, "", [&](std::string_view k, std::string_view) {
    if (marks.size() >= max || k.size() <= 8 || store::ReadBigEndian64(k) > now) return false;
    marks.emplace_back(k);
    return true;
  });
  if (!s.ok()) return s;
  for (const auto& mark : marks) {
    const std::string prefix = mark.substr(8) + '\0';  // every sender in the conversation
    std::vector<std::string> old;
    s = ctx_.kv.Scan(kDedupTable, prefix, [&](std::string_view k, std::string_view v) {
      if (k.substr(0, prefix.size()) != prefix) return false;
      std::vector<uint64_t> rec;
      if (!DecodeUints(v, rec, 2) || rec[1] + ttl <= now) old.emplace_back(k);
      return true;
    });
    if (!s.ok()) return s;
    for (const auto& k : old)
      if (Status st = ctx_.kv.Del(kDedupTable, k); !st.ok()) return st;
    if (Status st = ctx_.kv.Del(kDedupExpiryTable, mark); !st.ok()) return st;
  }
  return Status::Ok();
}

}  // namespace meshchat::nodes
