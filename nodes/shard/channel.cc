#include "nodes/shard/channel.h"

#include <random>

#include "nodes/shard/records.h"

namespace meshchat::nodes {
namespace {
constexpr std::string_view kOutTable = "chan_out";
constexpr std::string_view kOutMetaTable = "chan_outmeta";
constexpr std::string_view kInTable = "chan_in";
constexpr std::string_view kMetaTable = "meta";

std::string OutKey(const std::string& dest, uint64_t seq) {
  return dest + '\0' + store::BigEndian64(seq);
}
}  // namespace

ReliableChannel::ReliableChannel(ChannelConfig cfg, store::KvStore& kv, const Clock& clock,
                                 PeerUpFn peer_up)
    : cfg_(cfg), kv_(kv), clock_(clock), peer_up_(std::move(peer_up)) {}

Status ReliableChannel::Load() {
  auto id = kv_.Get(kMetaTable, "channel_id");
  std::vector<uint64_t> v;
  if (id.ok() && DecodeUints(*id, v, 1)) {
    id_ = v[0];
  } else if (!id.ok() && id.status().code() != Code::kNotFound) {
    return id.status();
  } else {
    std::random_device rd;
    id_ = ((uint64_t{rd()} << 32) | rd()) | 1;
    if (Status s = kv_.Put(kMetaTable, "channel_id", EncodeUints({id_})); !s.ok()) return s;
  }
  // Every destination with unacked entries is resent once its peer is seen.
  Status bad = Status::Ok();
  Status s = kv_.Scan(kOutMetaTable, "", [&](std::string_view k, std::string_view val) {
    std::vector<uint64_t> m;
    if (!DecodeUints(val, m, 2)) {
      bad = Status(Code::kInvalid, "corrupt outbox position for " + std::string(k));
      return false;
    }
    Out o;
    o.acked = m[1];
    o.next = std::max(m[0], o.acked + 1);
    o.sent_upto = o.acked;
    o.rto_ms = cfg_.rto_initial_ms;
    o.saved = true;
    out_[std::string(k)] = o;
    return true;
  });
  if (!s.ok()) return s;
  if (!bad.ok()) return bad;
  // The stored `next` is only written on acks: the outbox's last key says where it really is.
  for (auto& [dest, o] : out_) {
    auto last = kv_.LastKeyWithPrefix(kOutTable, dest + '\0');
    if (last.ok() && last->size() == dest.size() + 9)
      o.next = std::max(
          o.next, store::ReadBigEndian64(std::string_view(*last).substr(dest.size() + 1)) + 1);
    else if (!last.ok() && last.status().code() != Code::kNotFound)
      return last.status();
  }
  return Status::Ok();
}

Result<ReliableChannel::Out*> ReliableChannel::OutFor(const std::string& dest) {
  auto it = out_.find(dest);
  if (it != out_.end()) return &it->second;
  Out o;
  o.rto_ms = cfg_.rto_initial_ms;
  return &out_.emplace(dest, o).first->second;
}

Result<ReliableChannel::In*> ReliableChannel::InFor(const std::string& from) {
  auto it = in_.find(from);
  if (it != in_.end()) return &it->second;
  In in;
  auto rec = kv_.Get(kInTable, from);
  if (rec.ok()) {
    std::vector<uint64_t> v;
    if (!DecodeUints(*rec, v, 2)) return Status(Code::kInvalid, "corrupt channel position");
    in.channel_id = v[0];
    in.last = v[1];
  } else if (rec.status().code() != Code::kNotFound) {
    return rec.status();
  }
  return &in_.emplace(from, in).first->second;
}

Status ReliableChannel::SaveOut(const std::string& dest, const Out& o) {
  return kv_.Put(kOutMetaTable, dest, EncodeUints({o.next, o.acked}));
}

void ReliableChannel::Send(const std::string& dest, uint64_t seq, std::string payload,
                           Effects& fx) {
  codec::Envelope env;
  env.type = codec::MeshType::kChanMsg;
  env.req = seq;
  env.arg = id_;
  env.body = std::move(payload);
  fx.mesh.push_back({dest, std::move(env), 0});
}

Status ReliableChannel::Append(const std::string& dest, std::string payload, Effects& fx) {
  if (local_ && dest == self_) return local_(self_, payload, fx);
  auto o = OutFor(dest);
  if (!o.ok()) return o.status();
  Out& out = **o;
  const uint64_t seq = out.next;
  if (Status s = kv_.Put(kOutTable, OutKey(dest, seq), payload); !s.ok()) return s;
  out.next = seq + 1;
  if (!out.saved) {  // so Load() finds this destination; later positions come from the keys
    if (Status s = SaveOut(dest, out); !s.ok()) return s;
    out.saved = true;
  }
  if (out.sent_upto + 1 == seq && seq - out.acked <= cfg_.window && peer_up_(dest)) {
    if (out.sent_upto == out.acked) out.last_progress_ms = clock_.MonoMs();
    out.sent_upto = seq;
    Send(dest, seq, std::move(payload), fx);
  }
  return Status::Ok();
}

Status ReliableChannel::Pump(const std::string& dest, Out& o, Effects& fx) {
  if (!peer_up_(dest) || o.sent_upto + 1 >= o.next) return Status::Ok();
  const uint64_t limit = std::min(o.next - 1, o.acked + cfg_.window);
  if (o.sent_upto >= limit) return Status::Ok();
  if (o.sent_upto == o.acked) o.last_progress_ms = clock_.MonoMs();
  const std::string prefix = dest + '\0';
  return kv_.Scan(kOutTable, OutKey(dest, o.sent_upto + 1),
                  [&](std::string_view k, std::string_view v) {
                    if (k.size() != prefix.size() + 8 || k.substr(0, prefix.size()) != prefix)
                      return false;
                    const uint64_t seq = store::ReadBigEndian64(k.substr(prefix.size()));
                    if (seq > limit) return false;
                    Send(dest, seq, std::string(v), fx);
                    o.sent_upto = seq;
                    return true;
                  });
}

Status ReliableChannel::OnMessage(const std::string& from, const codec::Envelope& env,
                                  const ApplyFn& apply) {
  auto inr = InFor(from);
  if (!inr.ok()) return inr.status();
  In& in = **inr;
  ack_due_.insert(from);
  if (in.channel_id != env.arg) {  // the sender's store is new: its sequences restart
    in.channel_id = env.arg;
    in.last = 0;
  }
  if (env.req != in.last + 1) return Status::Ok();  // duplicate (re-acked) or gap (wait)
  if (Status s = apply(from, env.body); !s.ok()) return s;
  in.last = env.req;
  return kv_.Put(kInTable, from, EncodeUints({in.channel_id, in.last}));
}

Status ReliableChannel::OnAck(const std::string& from, const codec::Envelope& env, Effects& fx) {
  if (env.arg != id_) return Status::Ok();  // an ack for a previous store of ours
  auto o = OutFor(from);
  if (!o.ok()) return o.status();
  Out& out = **o;
  const uint64_t k = std::min(env.req, out.next - 1);
  if (k > out.acked) {
    for (uint64_t seq = out.acked + 1; seq <= k; ++seq)
      if (Status s = kv_.Del(kOutTable, OutKey(from, seq)); !s.ok()) return s;
    out.acked = k;
    if (Status s = SaveOut(from, out); !s.ok()) return s;
    out.sent_upto = std::max(out.sent_upto, k);
    out.last_progress_ms = clock_.MonoMs();
    out.rto_ms = cfg_.rto_initial_ms;
  }
  return Pump(from, out, fx);
}

Status ReliableChannel::OnPeerUp(const std::string& node, Effects& fx) {
  auto it = out_.find(node);
  if (it == out_.end()) return Status::Ok();
  it->second.sent_upto = it->second.acked;  // whatever was in flight may be lost: resend
  it->second.rto_ms = cfg_.rto_initial_ms;
  return Pump(node, it->second, fx);
}

Status ReliableChannel::OnTick(Effects& fx) {
  const int64_t now = clock_.MonoMs();
  for (auto& [dest, o] : out_) {
    if (o.acked + 1 >= o.next) continue;  // nothing unacked
    if (o.sent_upto > o.acked && now - o.last_progress_ms < o.rto_ms) continue;
    if (o.sent_upto > o.acked) {  // timed out: go back
      o.sent_upto = o.acked;
      o.rto_ms = std::min(o.rto_ms * 2, cfg_.rto_max_ms);
    }
    if (Status s = Pump(dest, o, fx); !s.ok()) return s;
  }
  return Status::Ok();
}

void ReliableChannel::FlushAcks(Effects& fx) {
  for (const auto& from : ack_due_) {
    auto it = in_.find(from);
    if (it == in_.end()) continue;
    codec::Envelope env;
    env.type = codec::MeshType::kChanAck;
    env.req = it->second.last;
    env.arg = it->second.channel_id;
    fx.mesh.push_back({from, std::move(env), 0});
  }
  ack_due_.clear();
}

Status ReliableChannel::CommitBatch(Status& batch_error, Effects& fx) {
  FlushAcks(fx);
  Status s = batch_error;
  batch_error = Status::Ok();
  if (s.ok()) s = kv_.Commit();
  if (s.ok()) return s;
  kv_.Rollback();
  fx.Clear();  // nothing that depended on this batch may be carried out
  OnCommitFailed();
  return s;
}

void ReliableChannel::OnCommitFailed() {
  // In-memory positions may be ahead of the store: reload them from it when next used.
  in_.clear();
  ack_due_.clear();
  std::map<std::string, Out> keep;
  out_.swap(keep);
  (void)Load();
}

uint64_t ReliableChannel::Unacked() const {
  uint64_t n = 0;
  for (const auto& [d, o] : out_) n += o.next - 1 - o.acked;
  return n;
}

}  // namespace meshchat::nodes
