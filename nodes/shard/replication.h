// Shard replication (docs/ARCHITECTURE.md, "Replicated shards"): a shard's primary sends the
// writes of every store batch it commits to the shard's replicas, in order, numbered 1, 2, ...
// (the batch's `seq`, stored with the batch under repl/pos); each replica applies them to its
// own store, makes them durable and acknowledges. The primary's service releases a batch's
// effects (the `sent` of a chat, a channel ack) only when the batch is durable on its own disk
// and on every replica of the in-sync set. A replica that is empty, mid-copy or too far behind
// for the primary's log of recent batches gets a copy of the whole store: rows read in key
// order, a part per turn, interleaved with the live batches in the one ordered stream, so
// that the copy plus the batches after it converge on the primary's state.
//
// Both sides are plain classes: envelopes in, Effects out, the store injected.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "codec/replication_messages.h"
#include "nodes/shard/effects.h"
#include "store/kv_store.h"
#include "store/recording_kv_store.h"

namespace meshchat::nodes {

inline constexpr char kReplTable[] = "repl";

// Where a store stands in its shard's history: the last batch it holds and the term of the
// primary that wrote it. `complete` is false while a copy is half applied.
struct ReplPosition {
  uint64_t term = 0;
  uint64_t seq = 0;
  bool complete = true;
};
Result<ReplPosition> LoadReplPosition(store::KvStore& kv);
// Writes repl/pos in the current batch (the primary does so in each batch it commits, so the
// replicas, applying the batch's writes, store the same position).
Status SaveReplPosition(store::KvStore& kv, uint64_t term, uint64_t seq);

struct ReplicationConfig {
  uint64_t term = 1;             // the primary's fencing term
  size_t log_bytes = 64u << 20;  // recent batches kept to resend to a replica behind
  int64_t timeout_ms = 1500;     // an in-sync replica this late with an ack leaves the set
  size_t min_in_sync = 1;        // copies (the primary's included) a release needs
  size_t copy_window = 8;        // copy parts sent and not yet acknowledged
};

class PrimaryReplication {
 public:
  // `kv` is read for copies (at any point of a turn: a copy part may hold writes of the open
  // batch, which the batch then repeats).
  PrimaryReplication(ReplicationConfig cfg, std::vector<std::string> replicas, store::KvStore& kv,
                     const Clock& clock);

  // The position the store was loaded at (the next batch is seq() + 1).
  void Start(uint64_t seq) { seq_ = released_ = seq; }
  uint64_t seq() const { return seq_; }
  uint64_t term() const { return cfg_.term; }
  // Batch `seq` (== seq() + 1) committed with `writes`: kept in the log and sent to every
  // replica that is streaming or copying.
  void OnCommitted(uint64_t seq, std::vector<store::WriteOp> writes, Effects& fx);
  // A batch failed to commit after a copy read rows it had written: copies start over.
  void OnCommitFailed();
  void OnHello(const std::string& from, const codec::Envelope& env, Effects& fx);
  void OnAck(const std::string& from, const codec::Envelope& env);
  void OnPeerDown(const std::string& node);
  // Once per loop turn: sends copy parts, and takes replicas that stopped acknowledging out
  // of the in-sync set.
  void OnTurn(Effects& fx);

  // The highest batch whose effects may go, as far as replication goes: durable on every
  // in-sync replica (the service also waits for its own fsync). Stops advancing while fewer
  // than min_in_sync copies are in sync, or once fenced.
  uint64_t ReleasableUpTo();
  // A replica follows a newer primary: this one must acknowledge nothing more.
  bool fenced() const { return fenced_; }

  struct ReplicaView {
    std::string node;
    std::string state;  // "unknown", "copying", "catching-up", "in-sync"
    uint64_t acked = 0;
    uint64_t lag = 0;  // batches the replica has not acknowledged
  };
  std::vector<ReplicaView> Replicas() const;
  uint64_t dropped_from_sync() const { return dropped_; }
  uint64_t copies_started() const { return copies_; }
  uint64_t unsendable() const { return unsendable_; }
  size_t in_sync() const;

 private:
  enum class State { kUnknown, kCopying, kCatchingUp, kInSync };
  struct Replica {
    State state = State::kUnknown;
    uint64_t acked = 0;
    int64_t waiting_since_ms = -1;  // oldest unacknowledged batch was sent then (-1: none)
    // Copy progress: the next row after (table, key); parts sent and acknowledged.
    std::string copy_table, copy_key;
    bool copy_done = false;
    uint64_t copy_parts_sent = 0, copy_parts_acked = 0;
    uint64_t catch_up_to = 0;  // in sync once it has acknowledged this (and is complete)
  };
  struct Logged {
    uint64_t seq;
    std::vector<std::string> parts;  // encoded ReplBatch bodies
    size_t bytes;
  };
  void SendLogged(const std::string& node, const Logged& l, Effects& fx);
  void StartCopy(const std::string& node, Replica& r, Effects& fx);
  void SendCopyParts(const std::string& node, Replica& r, Effects& fx);
  void Send(const std::string& node, codec::MeshType type, std::string body, Effects& fx);

  ReplicationConfig cfg_;
  store::KvStore& kv_;
  const Clock& clock_;
  std::map<std::string, Replica> replicas_;
  std::deque<Logged> log_;
  size_t log_bytes_ = 0;
  uint64_t seq_ = 0;
  uint64_t released_ = 0;
  bool fenced_ = false;
  uint64_t dropped_ = 0;
  uint64_t copies_ = 0;
  uint64_t unsendable_ = 0;
};

// Cuts `writes` into encoded ReplBatch parts of about kMaxReplPartBytes. kTooLarge if one
// write alone does not fit an envelope.
Result<std::vector<std::string>> EncodeBatchParts(uint64_t term, uint64_t seq,
                                                  const std::vector<store::WriteOp>& writes);

class ReplicaReplication {
 public:
  ReplicaReplication(store::KvStore& kv, const Clock& clock, std::string primary)
      : kv_(kv), clock_(clock), primary_(std::move(primary)) {}
  Status Load();
  const ReplPosition& position() const { return pos_; }
  const std::string& primary() const { return primary_; }

  // Asks the primary for what follows this store's position (or for a copy).
  void Hello(Effects& fx);
  // A batch or copy part: applied in the current store batch. Out-of-order parts ask again.
  Status OnBatch(const std::string& from, const codec::Envelope& env, Effects& fx);
  // Queues the acknowledgement of everything applied so far; the service sends it once the
  // store batch holding it is durable.
  void AckApplied(Effects& fx) const;
  // Asks again when the primary has been silent for a while.
  void OnTick(Effects& fx);
  uint64_t refused() const { return refused_; }

 private:
  store::KvStore& kv_;
  const Clock& clock_;
  std::string primary_;
  ReplPosition pos_;
  uint64_t followed_term_ = 0;
  uint64_t next_part_ = 0;  // of the batch (or copy) being applied
  bool in_copy_ = false;    // copy parts are arriving
  uint64_t copy_parts_ = 0;
  int64_t last_heard_ms_ = 0;
  int64_t last_hello_ms_ = -1'000'000;
  bool awaiting_resend_ = false;  // a gap was seen and a hello sent for it
  uint64_t refused_ = 0;
};

}  // namespace meshchat::nodes
