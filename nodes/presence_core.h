// The presence owner: the presence node a user id hashes to. It knows, for its users, how many
// devices are connected and when the user last did something (user activity only: frames the
// app sends on its own do not count), decides who may see it (privacy: everyone, contacts, or
// nobody), answers queries, and publishes changes of watched users, at most one per user per
// `throttle_ms`. Online = a connected device and user activity within `online_ms`.
// Last seen and privacy settings are stored (they survive a restart); connection counts and
// watches are soft state that session shards and clients rebuild.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "codec/envelope.h"
#include "codec/presence_messages.h"
#include "nodes/effects.h"
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
  PresenceCore(PresenceConfig cfg, const Clock& clock, store::KvStore& kv);

  void OnEnvelope(const std::string& from, codec::Envelope&& env, Effects& fx,
                  std::vector<Publication>& pub);
  // Online -> offline as activity ages, and throttled changes that are now due.
  void OnTick(std::vector<Publication>& pub);
  // Stores last-seen changes (called every second; one commit for all of them).
  Status Flush();

  codec::Presence StateOf(const std::string& user);
  size_t users() const { return users_.size(); }

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
  };
  User& Get(const std::string& user);
  codec::PrivacyMode ModeOf(const std::string& user);
  bool IsContact(const std::string& user, const std::string& peer);
  bool Visible(const std::string& target, const std::string& asker, bool asker_hides);
  void MaybePublish(const std::string& user, User& u, std::vector<Publication>& pub);
  void Answer(const codec::Envelope& env, Effects& fx);

  PresenceConfig cfg_;
  const Clock& clock_;
  store::KvStore& kv_;
  std::unordered_map<std::string, User> users_;
};

}  // namespace meshchat::nodes
