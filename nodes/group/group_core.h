// The group owner: the group node a group id hashes to (on the group ring). It keeps the
// group's members and admins, its name, one sequence for everything said in it (messages and
// system messages about membership), the log of that sequence, dedup records, and each
// member's delivered/read cursor. A message is checked (members only), deduplicated on
// (sender, cid), sequenced and logged in one store batch; `sent` goes back once that batch is
// durable. Fan-out is one reliable-channel entry per session shard holding members (listing
// them), not one per member; the shards append it to each listed member's inbox. Above
// `large_group` members the owner only sends a hint ("messages up to seq S") and devices
// pull ranges from the log.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>

#include "base/token_bucket.h"
#include "codec/group_messages.h"
#include "nodes/runtime/load_levels.h"
#include "nodes/shard/channel.h"
#include "nodes/shard/handover.h"
#include "nodes/shard/records.h"
#include "nodes/shard/shard_context.h"

namespace meshchat::nodes {

struct GroupConfig {
  std::string node_id;
  uint64_t epoch = 1;
  size_t member_cap = 1024;
  size_t large_group = 256;  // above this many members: hints and pull, not push
  int64_t ttl_ms = 30LL * 24 * 3600 * 1000;
  // Fan-out per group, in member deliveries (a message to 100 members costs 100): beyond it a
  // group_send is refused with rate_limited and retry_after before it is stored. 0 = no limit.
  double fanout_rate = 20'000;
  double fanout_burst = 40'000;
};

class GroupCore {
 public:
  using OwnerFn = nodes::OwnerFn;
  using PeerUpFn = nodes::PeerUpFn;

  GroupCore(GroupConfig cfg, const Clock& clock, store::KvStore& kv, OwnerFn session_owner,
            OwnerFn group_owner, PeerUpFn peer_up, ChannelConfig channel_cfg = {});

  Status Load();
  // A newer map was taken: markers, and a hand-over if the group ring changed
  // (group_handover.cc).
  Status OnMapChanged(const MapChange& change, Effects& fx);
  // Its key hand-over: DurableService asks it whether this node joins, and how much is left.
  Handover& handover() { return handover_; }
  const Handover& handover() const { return handover_; }
  // Where media references of accepted group messages are reported (media id hex -> node).
  void SetMediaOwner(OwnerFn media_owner) { media_owner_ = std::move(media_owner); }
  void OnEnvelope(const std::string& from, codec::Envelope&& env, Effects& fx);
  void OnPeerUp(const std::string& node, bool restarted, Effects& fx);
  void OnPeerDown(const std::string&) {}
  void OnTick(Effects& fx);
  Status EndBatch(Effects& fx);
  uint64_t Unacked() const { return channel_.Unacked(); }
  void SetEpoch(uint64_t epoch) { cfg_.epoch = epoch; }  // a newer map was taken
  void OnStoreLost(Effects& fx);
  uint64_t Connections() const { return members_.size(); }  // groups in memory
  // The node's load (nodes/runtime/load_levels.h): level 1 drops group typing; level 3 refuses new
  // group messages from the heaviest senders, `full` all new ones (before anything is stored;
  // a retry of a stored message is still answered).
  void SetLoad(const LoadState& load) { load_ = load; }
  const ShedCounters& shed() const { return shed_; }

 private:
  struct Member {
    bool admin = false;
    uint64_t joined_seq = 0;  // members see the group's history from here
  };
  using Members = std::map<std::string, Member>;
  struct Meta {
    std::string name;
    uint64_t next_seq = 1;
  };
  struct Mode {
    bool permanent = false;  // history kept (default: temporary)
    uint64_t timer_s = 0;    // disappearing messages; 0 = off
  };
  // Retention (group_retention.cc).
  Result<Mode> LoadMode(const std::string& group);
  Status SetMode(const codec::GroupRequest& req, const codec::Stamp& who, Meta& meta,
                 const std::vector<std::string>& audience, Effects& fx,
                 codec::GroupResult& refused);
  // Keeps a published entry in the history (if permanent) and indexes its disappearance.
  Status Keep(const std::string& group, const InboxEntry& e);
  Status History(const codec::GroupRequest& req, uint64_t joined_seq, uint64_t next_seq,
                 codec::GroupResult& r);
  Status ExpireVanished(size_t max);
  // Deletes up to `max` log entries per due group that are past the retention.
  Status ExpireLog(size_t max);
  // A temporary group's log entries every member has received (delivered cursors).
  Status TrimDelivered(const std::string& group);
  // Moves `user`'s [delivered, read] cursors forward to at least the given ones (read implies
  // delivered), then past the user's own messages that follow each: a sender has its own
  // messages from the moment they are stored (its only device is never pushed them), so they
  // count as delivered to and read by it, in receipts and for trimming.
  // `just_sent`: the sequence of a message the user just sent (0: a cursor update).
  Status MoveCursor(const std::string& group, const std::string& user, uint64_t delivered,
                    uint64_t read, uint64_t just_sent = 0);
  // The end of the run of `user`'s own (non-system) messages directly after `at` in the log.
  Result<uint64_t> PastOwn(const std::string& group, const std::string& user, uint64_t at);

  Status HandleRequest(const codec::Envelope& env, Effects& fx);
  Status HandleSend(const codec::Envelope& env, Effects& fx);
  Status HandleCursor(std::string_view payload);
  // A channel payload: hand-over payloads, cursors of groups still moving in (stashed), or
  // cursors to apply.
  Status HandleChannel(const std::string& from, std::string_view payload);
  void StepHandover(Effects& fx);
  Result<Members*> MembersOf(const std::string& group);
  Result<Meta> LoadMeta(const std::string& group);
  Status SaveMeta(const std::string& group, const Meta& m);
  Status SaveMember(const std::string& group, const std::string& user, const Member& m);
  // Sequences, logs and fans out one entry (message or system message) to `audience`.
  Status Publish(const std::string& group, Meta& meta, InboxEntry e,
                 const std::vector<std::string>& audience, Effects& fx);
  Status System(const std::string& group, Meta& meta, const codec::Stamp& actor,
                const std::string& text, const std::string& member, bool joined,
                const std::vector<std::string>& audience, Effects& fx);
  void Reply(const codec::Stamp& to, codec::GroupResult r, Effects& fx);
  void Fail(const Status& s);

  OwnerFn media_owner_;
  static const std::string_view kLogTable;
  static const std::string_view kCursorTable;
  GroupConfig cfg_;
  const Clock& clock_;
  store::KvStore& kv_;
  OwnerFn session_owner_;
  OwnerFn group_owner_;
  PeerUpFn peer_up_;
  ReliableChannel channel_;
  Handover handover_;
  std::unordered_map<std::string, Members> members_;  // cache of the gmem table
  std::unordered_map<std::string, Mode> modes_;       // cache of the gmode table
  std::set<std::string> trim_due_;  // temporary groups whose delivered cursors moved
  std::unordered_map<std::string, TokenBucket> fanout_;  // group -> deliveries allowed
  LoadState load_;
  ShedCounters shed_;
  HeavySenders heavy_;
  Status batch_error_;
};

}  // namespace meshchat::nodes
