#include "nodes/shard/replication.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace meshchat::nodes {

namespace {

constexpr char kPosKey[] = "pos";
constexpr char kIncompleteKey[] = "incomplete";  // present while a copy is half applied
constexpr int64_t kHelloEveryMs = 500;           // at most one hello per this
constexpr int64_t kSilentPrimaryMs = 3000;       // no batch for this long: ask again
// kReplAck's ftype: what the ack says besides the batch number.
constexpr uint8_t kAckIncomplete = 0, kAckComplete = 1, kAckCopyPart = 2;

codec::ReplWrite ToWire(const store::WriteOp& op) {
  return {static_cast<codec::ReplWrite::Kind>(op.kind), op.table, op.key, op.value};
}

store::WriteOp FromWire(const codec::ReplWrite& w) {
  return {static_cast<store::WriteOp::Kind>(w.kind), w.table, w.key, w.value};
}

}  // namespace

Result<ReplPosition> LoadReplPosition(store::KvStore& kv) {
  ReplPosition pos;
  auto v = kv.Get(kReplTable, kPosKey);
  if (v.ok()) {
    if (v->size() != 16) return Status(Code::kInvalid, "repl/pos is not 16 bytes");
    pos.term = store::ReadBigEndian64(*v);
    pos.seq = store::ReadBigEndian64(std::string_view(*v).substr(8));
  } else if (v.status().code() != Code::kNotFound) {
    return v.status();
  }
  auto inc = kv.Get(kReplTable, kIncompleteKey);
  if (inc.ok())
    pos.complete = false;
  else if (inc.status().code() != Code::kNotFound)
    return inc.status();
  return pos;
}

Status SaveReplPosition(store::KvStore& kv, uint64_t term, uint64_t seq) {
  return kv.Put(kReplTable, kPosKey, store::BigEndian64(term) + store::BigEndian64(seq));
}

Result<std::vector<std::string>> EncodeBatchParts(uint64_t term, uint64_t seq,
                                                  const std::vector<store::WriteOp>& writes) {
  std::vector<std::string> parts;
  codec::ReplBatch b{term, seq, 0, false, false, {}};
  size_t bytes = 0;
  auto flush = [&](bool last) {
    b.last = last;
    parts.push_back(codec::Encode(b));
    b.writes.clear();
    ++b.part;
    bytes = 0;
  };
  for (const auto& op : writes) {
    auto w = ToWire(op);
    const size_t n = codec::EncodedSize(w);
    if (n + 256 > codec::kMaxEnvelopeBody || w.key.size() > codec::kMaxReplKeyBytes ||
        w.table.size() > codec::kMaxReplTableBytes)
      return Status(Code::kTooLarge,
                    "a write of table '" + op.table + "' is too large to replicate");
    if (!b.writes.empty() &&
        (bytes + n > codec::kMaxReplPartBytes || b.writes.size() == codec::kMaxReplWrites))
      flush(false);
    bytes += n;
    b.writes.push_back(std::move(w));
  }
  flush(true);
  return parts;
}

// ---- primary ----

PrimaryReplication::PrimaryReplication(ReplicationConfig cfg, std::vector<std::string> replicas,
                                       store::KvStore& kv, const Clock& clock)
    : cfg_(cfg), kv_(kv), clock_(clock) {
  for (auto& r : replicas) replicas_[std::move(r)];
}

void PrimaryReplication::Send(const std::string& node, codec::MeshType type, std::string body,
                              Effects& fx) {
  codec::Envelope env;
  env.type = type;
  env.body = std::move(body);
  fx.mesh.push_back({node, std::move(env), 0, true});
}

void PrimaryReplication::SendLogged(const std::string& node, const Logged& l, Effects& fx) {
  for (const auto& p : l.parts) Send(node, codec::MeshType::kReplBatch, p, fx);
}

void PrimaryReplication::OnCommitted(uint64_t seq, std::vector<store::WriteOp> writes,
                                     Effects& fx) {
  if (seq != seq_ + 1) spdlog::error("replication: batch {} after {}", seq, seq_);
  seq_ = seq;
  auto parts = EncodeBatchParts(cfg_.term, seq, writes);
  if (!parts.ok()) {
    // Nothing can carry it: replicas learn of the gap and ask for a copy, which fails the same
    // way until the row is gone; the primary goes on alone meanwhile (logged, counted).
    spdlog::error("replication: batch {} not sent: {}", seq, parts.status().ToString());
    ++unsendable_;
    return;
  }
  Logged l{seq, std::move(parts).value(), 0};
  for (const auto& p : l.parts) l.bytes += p.size();
  const int64_t now = clock_.MonoMs();
  for (auto& [node, r] : replicas_) {
    if (r.state == State::kUnknown) continue;
    SendLogged(node, l, fx);
    if (r.waiting_since_ms < 0) r.waiting_since_ms = now;
  }
  log_bytes_ += l.bytes;
  log_.push_back(std::move(l));
  while (log_.size() > 1 && log_bytes_ > cfg_.log_bytes) {
    log_bytes_ -= log_.front().bytes;
    log_.pop_front();
  }
}

void PrimaryReplication::OnCommitFailed() {
  for (auto& [node, r] : replicas_)
    if (r.state == State::kCopying) r.state = State::kUnknown;  // it asks again on the gap
}

void PrimaryReplication::StartCopy(const std::string& node, Replica& r, Effects& fx) {
  r = Replica{};
  r.state = State::kCopying;
  ++copies_;
  spdlog::info(
      "replication: copying the whole store to {} (it is at a point the log of "
      "recent batches does not reach)",
      node);
  SendCopyParts(node, r, fx);
}

void PrimaryReplication::SendCopyParts(const std::string& node, Replica& r, Effects& fx) {
  while (!r.copy_done && r.copy_parts_sent - r.copy_parts_acked < cfg_.copy_window) {
    codec::ReplBatch b{cfg_.term, seq_, r.copy_parts_sent, false, true, {}};
    if (b.part == 0) b.writes.push_back({codec::ReplWrite::Kind::kClear, "", "", ""});
    size_t bytes = 0;
    bool more = false;
    std::string last_table = r.copy_table, last_key = r.copy_key;
    Status s = kv_.ScanRows(
        r.copy_table, r.copy_key, [&](std::string_view t, std::string_view k, std::string_view v) {
          const size_t n = 16 + t.size() + k.size() + v.size();
          if (!b.writes.empty() &&
              (bytes + n > codec::kMaxReplPartBytes || b.writes.size() == codec::kMaxReplWrites)) {
            more = true;
            return false;
          }
          b.writes.push_back(
              {codec::ReplWrite::Kind::kPut, std::string(t), std::string(k), std::string(v)});
          bytes += n;
          last_table = t;
          last_key = k;
          return true;
        });
    if (!s.ok()) {
      spdlog::error("replication: copy to {} stopped: {}", node, s.ToString());
      r.state = State::kUnknown;
      return;
    }
    if (bytes + 256 > codec::kMaxEnvelopeBody) {
      spdlog::error("replication: a row of table '{}' is too large to copy to {}", last_table,
                    node);
      ++unsendable_;
      r.state = State::kUnknown;
      return;
    }
    r.copy_table = std::move(last_table);
    r.copy_key = std::move(last_key);
    b.last = !more;
    Send(node, codec::MeshType::kReplBatch, codec::Encode(b), fx);
    ++r.copy_parts_sent;
    if (b.last) {
      r.copy_done = true;
      r.catch_up_to = seq_;
      if (r.waiting_since_ms < 0) r.waiting_since_ms = clock_.MonoMs();
    }
  }
}

void PrimaryReplication::OnHello(const std::string& from, const codec::Envelope& env, Effects& fx) {
  auto it = replicas_.find(from);
  if (it == replicas_.end()) return;  // not a replica of this shard
  Replica& r = it->second;
  const uint64_t seq = env.req, term = env.arg;
  const bool complete = env.ftype == kAckComplete;
  if (term > cfg_.term) {
    fenced_ = true;
    return;
  }
  if (seq > seq_) {
    // It holds batches this primary never wrote: never overwrite them from here (an operator,
    // or a failover to it, decides; docs/OPERATIONS.md).
    spdlog::error(
        "replication: replica {} is at batch {}, ahead of this primary ({}); "
        "nothing sent to it",
        from, seq, seq_);
    r.state = State::kUnknown;
    return;
  }
  // A store that was never a replica (term 0) always gets a copy: the primary may hold rows
  // from before its first replicated batch, and a copy erases whatever the replica held.
  const bool same_history = term == cfg_.term;
  const bool in_log = seq == seq_ || (!log_.empty() && log_.front().seq <= seq + 1);
  if (!complete || !same_history || !in_log) {
    StartCopy(from, r, fx);
    return;
  }
  if ((r.state == State::kInSync || r.state == State::kCatchingUp) && seq >= r.acked) {
    // Again (a gap, or its primary was quiet): resend what follows; it keeps its standing.
    for (const auto& l : log_)
      if (l.seq > seq) SendLogged(from, l, fx);
    return;
  }
  r = Replica{};
  r.state = State::kCatchingUp;
  r.acked = seq;  // reported from its store; durable there once its next ack says so
  r.catch_up_to = seq_;
  for (const auto& l : log_)
    if (l.seq > seq) SendLogged(from, l, fx);
  if (seq < seq_) r.waiting_since_ms = clock_.MonoMs();
}

void PrimaryReplication::OnAck(const std::string& from, const codec::Envelope& env) {
  auto it = replicas_.find(from);
  if (it == replicas_.end()) return;
  Replica& r = it->second;
  if (env.arg > cfg_.term) {
    (void)ReleasableUpTo();  // what was releasable before the fence stays so
    if (!fenced_)
      spdlog::error("replication: {} follows term {}, newer than this primary's {}: fenced", from,
                    env.arg, cfg_.term);
    fenced_ = true;
    return;
  }
  if (env.ftype == kAckCopyPart) {
    r.copy_parts_acked = std::max(r.copy_parts_acked, env.req);
    return;
  }
  if (r.state == State::kUnknown) return;
  if (env.req > r.acked) {
    r.acked = std::min(env.req, seq_);
    r.waiting_since_ms = clock_.MonoMs();  // progress
  }
  if (r.acked >= seq_) r.waiting_since_ms = -1;  // nothing outstanding
  const bool caught_up = env.ftype == kAckComplete && r.acked >= r.catch_up_to;
  if (caught_up && (r.state == State::kCatchingUp || (r.state == State::kCopying && r.copy_done))) {
    r.state = State::kInSync;
    spdlog::info("replication: {} is in sync at batch {}", from, r.acked);
  }
}

void PrimaryReplication::OnPeerDown(const std::string& node) {
  auto it = replicas_.find(node);
  if (it == replicas_.end() || it->second.state == State::kUnknown) return;
  if (it->second.state == State::kInSync) ++dropped_;
  it->second.state = State::kUnknown;  // it says hello when it is back
}

void PrimaryReplication::OnTurn(Effects& fx) {
  const int64_t now = clock_.MonoMs();
  for (auto& [node, r] : replicas_) {
    if (r.state == State::kCopying) SendCopyParts(node, r, fx);
    if (r.state == State::kInSync && r.waiting_since_ms >= 0 &&
        now - r.waiting_since_ms > cfg_.timeout_ms) {
      // Out of the in-sync set: batches go without it; batches still flow to it, and it is
      // back in once it has acknowledged what there was at this point.
      spdlog::warn(
          "replication: {} has acknowledged nothing for {} ms; it leaves the in-sync "
          "set at batch {} of {}",
          node, now - r.waiting_since_ms, r.acked, seq_);
      r.state = State::kCatchingUp;
      r.catch_up_to = seq_;
      ++dropped_;
    }
  }
}

size_t PrimaryReplication::in_sync() const {
  size_t n = 0;
  for (const auto& [node, r] : replicas_) n += r.state == State::kInSync ? 1 : 0;
  return n;
}

uint64_t PrimaryReplication::ReleasableUpTo() {
  if (fenced_ || in_sync() + 1 < cfg_.min_in_sync) return released_;
  uint64_t upto = seq_;
  for (const auto& [node, r] : replicas_)
    if (r.state == State::kInSync) upto = std::min(upto, r.acked);
  released_ = std::max(released_, upto);
  return released_;
}

std::vector<PrimaryReplication::ReplicaView> PrimaryReplication::Replicas() const {
  std::vector<ReplicaView> out;
  for (const auto& [node, r] : replicas_) {
    static constexpr const char* kNames[] = {"unknown", "copying", "catching-up", "in-sync"};
    out.push_back({node, kNames[static_cast<int>(r.state)], r.acked,
                   r.state == State::kUnknown ? 0 : seq_ - std::min(seq_, r.acked)});
  }
  return out;
}

// ---- replica ----

Status ReplicaReplication::Load() {
  auto pos = LoadReplPosition(kv_);
  if (!pos.ok()) return pos.status();
  pos_ = *pos;
  followed_term_ = pos_.term;
  last_heard_ms_ = clock_.MonoMs();
  return Status::Ok();
}

void ReplicaReplication::Hello(Effects& fx) {
  last_hello_ms_ = clock_.MonoMs();
  codec::Envelope env;
  env.type = codec::MeshType::kReplHello;
  env.req = pos_.complete ? pos_.seq : 0;
  env.arg = pos_.complete ? pos_.term : 0;
  env.ftype = pos_.complete ? kAckComplete : kAckIncomplete;
  fx.mesh.push_back({primary_, std::move(env), 0, true});
  AckApplied(fx);  // what it holds is durable once the batch carrying this ack is
}

void ReplicaReplication::AckApplied(Effects& fx) const {
  codec::Envelope env;
  env.type = codec::MeshType::kReplAck;
  env.req = pos_.seq;
  env.arg = followed_term_;
  env.ftype = pos_.complete && !in_copy_ ? kAckComplete : kAckIncomplete;
  fx.mesh.push_back({primary_, std::move(env), 0, false});
}

Status ReplicaReplication::OnBatch(const std::string& from, const codec::Envelope& env,
                                   Effects& fx) {
  if (from != primary_) return Status::Ok();
  codec::ReplBatch b;
  if (codec::Decode(env.body, b) != codec::DecodeStatus::kOk) {
    spdlog::warn("replication: malformed batch from {}", from);
    return Status::Ok();
  }
  if (b.term < followed_term_) {
    ++refused_;
    codec::Envelope no;
    no.type = codec::MeshType::kReplAck;
    no.req = pos_.seq;
    no.arg = followed_term_;
    fx.mesh.push_back({from, std::move(no), 0, true});
    return Status::Ok();
  }
  followed_term_ = b.term;
  last_heard_ms_ = clock_.MonoMs();
  // One hello per gap, then one per kHelloEveryMs while the gap lasts.
  auto ask_again = [&] {
    if (!awaiting_resend_ || clock_.MonoMs() - last_hello_ms_ >= kHelloEveryMs) Hello(fx);
    awaiting_resend_ = true;
    return Status::Ok();
  };
  if (b.copy) {
    if (b.part == 0) {
      if (Status s = kv_.Clear(); !s.ok()) return s;  // part 0 starts with one too
      in_copy_ = true;
      copy_parts_ = 0;
      next_part_ = 0;
      pos_.complete = false;
    } else if (!in_copy_ || b.part != copy_parts_) {
      return ask_again();
    }
    for (const auto& w : b.writes)
      if (Status s = store::ApplyWrite(kv_, FromWire(w)); !s.ok()) return s;
    awaiting_resend_ = false;
    ++copy_parts_;
    pos_.term = b.term;
    pos_.seq = b.seq;
    if (Status s = SaveReplPosition(kv_, pos_.term, pos_.seq); !s.ok()) return s;
    if (b.last) {
      in_copy_ = false;
      pos_.complete = true;
      if (Status s = kv_.Del(kReplTable, kIncompleteKey); !s.ok()) return s;
      AckApplied(fx);
    } else if (Status s = kv_.Put(kReplTable, kIncompleteKey, ""); !s.ok()) {
      return s;  // (after the rows: a copied row never says "incomplete")
    }
    codec::Envelope ack;
    ack.type = codec::MeshType::kReplAck;
    ack.req = copy_parts_;
    ack.arg = followed_term_;
    ack.ftype = kAckCopyPart;
    fx.mesh.push_back({from, std::move(ack), 0, true});
    return Status::Ok();
  }
  if (b.seq <= pos_.seq && next_part_ == 0) {
    AckApplied(fx);  // a resend of what it has
    return Status::Ok();
  }
  if (b.seq != pos_.seq + 1 || b.part != next_part_) {
    next_part_ = 0;  // the parts of this batch come again after the hello
    return ask_again();
  }
  for (const auto& w : b.writes)
    if (Status s = store::ApplyWrite(kv_, FromWire(w)); !s.ok()) return s;
  awaiting_resend_ = false;
  ++next_part_;
  if (b.last) {
    next_part_ = 0;
    pos_.term = b.term;
    pos_.seq = b.seq;
    AckApplied(fx);
  }
  return Status::Ok();
}

void ReplicaReplication::OnTick(Effects& fx) {
  const int64_t now = clock_.MonoMs();
  if (now - last_heard_ms_ > kSilentPrimaryMs && now - last_hello_ms_ > kSilentPrimaryMs) Hello(fx);
}

}  // namespace meshchat::nodes
