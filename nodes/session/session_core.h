// The session shard's logic, independent of sockets. A session node plays three parts for the
// keys that hash to it (see docs/ARCHITECTURE.md, "One-to-one messages"):
// - the users' shard: session directory, parsing and validation of what their clients send,
//   their durable inboxes and devices (Inboxes);
// - the conversations' owner: sequencing and dedup of one-to-one messages (Conversations);
// - both ends of reliable channels to other shards (ReliableChannel).
//
// Everything a batch of events changes is written to the injected KvStore; the service
// commits once per loop turn and only then carries out the effects (acks, pushes, channel
// messages). If the commit fails, the effects are dropped and in-memory positions reset:
// nothing is acknowledged that was not stored.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>

#include "base/token_bucket.h"
#include "nodes/runtime/load_levels.h"
#include "nodes/session/conversations.h"
#include "nodes/session/deferred_reads.h"
#include "nodes/session/inboxes.h"
#include "nodes/session/session_context.h"
#include "nodes/shard/channel.h"
#include "nodes/shard/handover.h"

namespace meshchat::nodes {

class SessionCore {
 public:
  // `group_owner` maps a group id to its group node ("" when there are none).
  SessionCore(SessionConfig cfg, const Clock& clock, store::KvStore& kv, OwnerFn owner,
              PeerUpFn peer_up, OwnerFn group_owner = nullptr, OwnerFn presence_owner = nullptr,
              ChannelConfig channel_cfg = {});

  // Start-up: loads channel and hand-over state. Commit the store afterwards.
  Status Load();
  // A newer map was taken: markers, and a hand-over if the session ring changed.
  Status OnMapChanged(const MapChange& change, Effects& fx);
  // Its key hand-over: DurableService asks it whether this node joins, and how much is left.
  Handover& handover() { return handover_; }
  const Handover& handover() const { return handover_; }
  bool HandoverActive() const { return handover_.active(); }
  // Where media references are reported (the media node owning a media id, in hex).
  void SetMediaOwner(OwnerFn media_owner) { ctx_.media_owner = std::move(media_owner); }

  void OnEnvelope(const std::string& from, codec::Envelope&& env, Effects& fx);
  void OnPeerUp(const std::string& node, bool restarted, Effects& fx);
  void OnPeerDown(const std::string& node);
  // Timers: deliver deadlines, push and channel retransmits, expiry.
  void OnTick(Effects& fx);
  // Ends a batch: commits the store. On success `fx` may be carried out; on failure it has
  // been cleared and the core has reset what it had in flight.
  Status EndBatch(Effects& fx);
  uint64_t Unacked() const { return channel_.Unacked(); }
  void SetEpoch(uint64_t epoch) { ctx_.cfg.epoch = epoch; }  // a newer map was taken
  const CodeCounter& errors() const { return ctx_.errors; }
  const Inboxes::Stats& inbox_stats() const { return inboxes_.stats(); }
  uint64_t conn_resyncs() const { return conn_resyncs_; }

  // For `meshchat who`: a msgpack map {user, connected: [[device, gateway, conn]], devices,
  // waiting} (waiting: inbox entries not yet acknowledged by every device).
  std::string DescribeUser(const std::string& user);
  // Effects already committed could not be made durable and were dropped: reset what is in
  // flight so it is resent from the store.
  void OnStoreLost(Effects& fx);

  // The node's load (nodes/runtime/load_levels.h): level 1 drops typing and last-seen updates,
  // level 2 stores read receipts and sends them later, level 3 refuses the heaviest senders' sends,
  // `full` every new send (all before anything is stored).
  void SetLoad(const LoadState& load) { load_ = load; }
  const ShedCounters& shed() const { return shed_; }

  size_t connections() const { return inboxes_.connections(); }
  uint64_t Connections() const { return inboxes_.connections(); }
  Inboxes& inboxes() { return inboxes_; }
  const ReliableChannel& channel() const { return channel_; }

  // user -> [mode]: the privacy of the asker's side of presence queries (session_forwarding.cc).
  static constexpr std::string_view kPrivacyTable = "privacy";

 private:
  Status HandleChatMode(const codec::Envelope& env, Effects& fx);
  Status HandleHistory(const codec::Envelope& env, Effects& fx);
  // Hands a validated send or chat_mode to the conversation's owner; `sent` or an error comes
  // back through HandleDeliverResult.
  void DeliverToOwner(const codec::Envelope& env, const std::string& to, uint64_t cid, Effects& fx);
  // A message's media reference: false (and the client told) unless its ticket is valid.
  bool CheckMedia(const codec::Stamp& from, const std::optional<codec::MediaRef>& media,
                  uint64_t cid, Effects& fx);
  struct PendingSend {
    codec::Stamp sender;
    uint64_t cid = 0;
    int64_t deadline_ms = 0;
  };
  bool CheckOwner(const std::string& from, const codec::Envelope& env, Effects& fx);
  Status HandleClientFrame(const codec::Envelope& env, Effects& fx);
  Status HandleSend(const codec::Envelope& env, Effects& fx);
  // session_forwarding.cc: frames handed to the group and presence owners.
  Status HandleGroupFrame(const codec::Envelope& env, Effects& fx);
  Status HandlePresenceFrame(const codec::Envelope& env, Effects& fx);
  // Tells the user's presence node about user activity (throttled) or a connection change.
  void Activity(const std::string& user, bool user_activity, Effects& fx);
  void HandleDeliverResult(const codec::Envelope& env, Effects& fx);
  void Fail(const Status& s);
  // A channel payload: hand-over payloads go to handover_, entries for keys still moving in
  // are stashed, the rest applied.
  Status ApplyAppend(const std::string& from, std::string_view payload, Effects& fx);
  void StepHandover(Effects& fx);

  ReliableChannel channel_;
  Handover handover_;
  SessionContext ctx_;
  Conversations conversations_;
  Inboxes inboxes_;
  std::map<uint64_t, PendingSend> pending_;  // by request id
  uint64_t next_req_ = 1;
  Status batch_error_;
  std::unordered_map<std::string, int64_t> activity_sent_;   // user -> mono ms last reported
  std::unordered_map<uint64_t, uint64_t> watch_gen_;         // connection -> watch generation
  std::unordered_map<std::string, TokenBucket> send_limit_;  // user -> messages allowed
  // Refuses (with retry_after) a send over the user's rate; true if it may go on.
  bool AllowSend(const codec::Stamp& who, uint64_t cid, Effects& fx);
  // Sends read receipts put off under load: a batch every `kReadBatchMs` at level 2 and
  // above, a chunk each tick once the level is lower.
  void FlushDeferredReads(Effects& fx);

  LoadState load_;
  ShedCounters shed_;
  HeavySenders heavy_;
  DeferredReads deferred_reads_;
  int64_t reads_flushed_ms_ = 0;
  uint64_t conn_resyncs_ = 0;  // gateway digests that differed from what we hold
  // Users whose connections were forgotten with their gateway: presence is told next tick.
  std::set<std::string> presence_due_;
  void ForgetGateway(const std::string& node);
};

}  // namespace meshchat::nodes
