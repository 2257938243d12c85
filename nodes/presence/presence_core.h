// The presence owner: the presence node a user id hashes to. It knows, for its users, how many
// devices are connected and when the user last did something (user activity only: frames the
// app sends on its own do not count), decides who may see it (privacy: everyone, contacts, or
// nobody), answers queries, and publishes changes of watched users, at most one per user per
// `throttle_ms`. Online = a connected device and user activity within `online_ms`.
// Last seen and privacy settings are stored (they survive a restart); privacy settings and
// contacts arrive from session shards over reliable channels. Connection counts and watches
// are soft state that session shards and clients rebuild. When the presence ring changes,
// users' stored rows move to their new owner (nodes/shard/handover.h); a user moved in counts as
// watched for a while, since the watches were registered at the old owner.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "codec/envelope.h"
#include "codec/presence_messages.h"
#include "nodes/runtime/load_levels.h"
#include "nodes/shard/channel.h"
#include "nodes/shard/effects.h"
#include "nodes/shard/handover.h"
#include "nodes/shard/shard_context.h"
#include "store/kv_store.h"

namespace meshchat::nodes {

struct PresenceConfig {
  std::string node_id;
  uint64_t epoch = 1;
  int64_t online_ms = 5000;
  int64_t throttle_ms = 1000;
  int64_t watch_ttl_ms = 10 * 60 * 1000;  // a watch not renewed in this time lapses
};

struct Publication {
  std::string user;
  std::string body;  // an encoded codec::Presence
};

class PresenceCore {
 public:
  // `owner` maps a user to its presence node (null: every user is ours, for tests).
  PresenceCore(PresenceConfig cfg, const Clock& clock, store::KvStore& kv, OwnerFn owner = nullptr,
               PeerUpFn peer_up = nullptr, ChannelConfig channel_cfg = {});

  void OnEnvelope(const std::string& from, codec::Envelope&& env, Effects& fx,
                  std::vector<Publication>& pub);
  // Online -> offline as activity ages, and throttled changes that are now due.
  void OnTick(std::vector<Publication>& pub);
  // Stores last-seen changes and commits (a store used without DurableService).
  Status Flush();

  codec::Presence StateOf(const std::string& user);
  size_t users() const { return users_.size(); }

  // The DurableService contract (node_runner: nodes/shard/durable_service.h). Publications made
  // while handling go to TakePublications().
  Status Load();
  void OnEnvelope(const std::string& from, codec::Envelope&& env, Effects& fx);
  void OnPeerUp(const std::string& node, bool restarted, Effects& fx);
  void OnPeerDown(const std::string&) {}
  void OnTick(Effects& fx);
  Status EndBatch(Effects& fx);
  void OnStoreLost(Effects& fx);
  uint64_t Connections() const { return users_.size(); }
  // The node's load (nodes/runtime/load_levels.h): from level 1 publications are coalesced harder.
  void SetLoad(const LoadState& load) { load_ = load; }
  const ShedCounters& shed() const { return shed_; }
  uint64_t Unacked() const { return channel_.Unacked(); }
  void SetEpoch(uint64_t epoch) { cfg_.epoch = epoch; }
  std::vector<Publication> TakePublications() { return std::move(pending_pub_); }
  Status OnMapChanged(const MapChange& change, Effects& fx);
  // Its key hand-over: DurableService asks it whether this node joins, and how much is left.
  Handover& handover() { return handover_; }
  const Handover& handover() const { return handover_; }

 private:
  struct User {
    int devices = 0;
    uint64_t last_seen = 0;  // wall ms
    bool loaded = false;
    bool published_online = false;
    uint64_t published_seen = 0;
    int64_t last_publish_mono = -1'000'000'000;
    int64_t watched_until_mono = 0;
    bool dirty = false;  // last_seen not stored yet
    bool held = false;   // a change waits for the throttle (counted once as shed)
  };
  User& Get(const std::string& user);
  codec::PrivacyMode ModeOf(const std::string& user);
  bool IsContact(const std::string& user, const std::string& peer);
  bool Visible(const std::string& target, const std::string& asker, bool asker_hides);
  void MaybePublish(const std::string& user, User& u, std::vector<Publication>& pub);
  void Answer(const codec::Envelope& env, Effects& fx);
  // Whether `key` is ours now: by the map (routed with no newer one) and not still moving in.
  bool Ours(const std::string& key, uint64_t epoch) const;
  Status ApplySetting(std::string_view payload);
  Status HandleChannel(const std::string& from, std::string_view payload);
  Status WriteLastSeen();
  void StepHandover(Effects& fx);
  void Fail(const Status& s) {
    if (!s.ok() && batch_error_.ok()) batch_error_ = s;
  }

  PresenceConfig cfg_;
  const Clock& clock_;
  store::KvStore& kv_;
  OwnerFn owner_;
  ReliableChannel channel_;
  Handover handover_;
  Status batch_error_;
  int ticks_ = 0;
  int64_t moved_in_watch_until_ = 0;  // moved-in users count as watched until then (mono ms)
  std::vector<Publication> pending_pub_;
  std::unordered_map<std::string, User> users_;
  LoadState load_;
  ShedCounters shed_;
};

}  // namespace meshchat::nodes
