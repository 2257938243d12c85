// A reliable, ordered, exactly-once channel between two shards, built on durable sequence
// numbers rather than on any single ZeroMQ hop.
//
// Sender side: Append() stores the payload in the outbox table under (dest, next sequence) in
// the current store batch; it is sent after the batch commits, within a window of unacked
// entries (go-back-N). Entries are deleted only when the destination acknowledges them; on a
// timeout (backing off) or when the peer comes back, everything unacked is sent again.
// Receiver side: a message is applied only if its sequence is exactly the next one expected
// from that sender (duplicates are re-acknowledged, gaps wait for the resend), and the new
// position is stored in the same batch as the effects of applying it. The ack goes out only
// after that batch commits. Each store has a random channel id: a receiver that sees a new id
// for a sender (its store was recreated) starts counting afresh.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/status.h"
#include "codec/envelope.h"
#include "nodes/shard/effects.h"
#include "store/kv_store.h"

namespace meshchat::nodes {

struct ChannelConfig {
  uint64_t window = 4096;
  int64_t rto_initial_ms = 500;
  int64_t rto_max_ms = 8000;
};

class ReliableChannel {
 public:
  using PeerUpFn = std::function<bool(const std::string& node)>;
  // Applies one payload inside the current batch. A non-ok status aborts the batch.
  using ApplyFn = std::function<Status(const std::string& from, std::string_view payload)>;

  ReliableChannel(ChannelConfig cfg, store::KvStore& kv, const Clock& clock, PeerUpFn peer_up);

  // Applies a payload for this node itself, with the effects of the Append that produced it.
  using LocalApplyFn =
      std::function<Status(const std::string& from, std::string_view payload, Effects& fx)>;

  // Entries for this node itself skip the outbox: they are applied at once, in the same store
  // batch as the change that produced them, which is exactly-once by construction.
  void SetSelf(std::string self, LocalApplyFn local) {
    self_ = std::move(self);
    local_ = std::move(local);
  }
  // Reads (or creates) the channel id and the outbox positions. Call once at start-up.
  Status Load();
  uint64_t id() const { return id_; }

  Status Append(const std::string& dest, std::string payload, Effects& fx);
  Status OnMessage(const std::string& from, const codec::Envelope& env, const ApplyFn& apply);
  Status OnAck(const std::string& from, const codec::Envelope& env, Effects& fx);
  Status OnPeerUp(const std::string& node, Effects& fx);
  Status OnTick(Effects& fx);
  // Queues one ack per sender heard from since the last call. Call at the end of each batch.
  void FlushAcks(Effects& fx);
  // The batch did not commit: forget what was sent from it; resend from the last ack.
  void OnCommitFailed();
  // Ends a store batch of a core that owns this channel: queues the acks, commits unless
  // `batch_error` (reset here) says an effect already failed, and on failure rolls back,
  // drops every effect of the batch and forgets what the channel sent from it.
  Status CommitBatch(Status& batch_error, Effects& fx);

  uint64_t Unacked() const;

 private:
  struct Out {
    uint64_t next = 1;   // sequence the next Append gets
    uint64_t acked = 0;  // everything <= acked is confirmed and deleted
    uint64_t sent_upto = 0;
    int64_t last_progress_ms = 0;
    int64_t rto_ms = 0;
    bool saved = false;  // an outmeta record exists for this destination
  };
  struct In {
    uint64_t channel_id = 0;
    uint64_t last = 0;  // highest sequence applied
  };
  Result<Out*> OutFor(const std::string& dest);
  Result<In*> InFor(const std::string& from);
  Status SaveOut(const std::string& dest, const Out& o);
  Status Pump(const std::string& dest, Out& o, Effects& fx);
  void Send(const std::string& dest, uint64_t seq, std::string payload, Effects& fx);

  ChannelConfig cfg_;
  store::KvStore& kv_;
  const Clock& clock_;
  PeerUpFn peer_up_;
  uint64_t id_ = 0;
  std::string self_;
  LocalApplyFn local_;
  std::map<std::string, Out> out_;
  std::map<std::string, In> in_;
  std::set<std::string> ack_due_;
};

}  // namespace meshchat::nodes
