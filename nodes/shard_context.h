// What the parts of a session shard share: identity, map, clock, store and channel.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "codec/client_messages.h"
#include "codec/envelope.h"
#include "nodes/channel.h"
#include "nodes/effects.h"
#include "nodes/metrics.h"
#include "store/kv_store.h"

namespace meshchat::nodes {

struct SessionConfig {
  std::string node_id;
  uint64_t epoch = 1;
  int64_t deliver_timeout_ms = 5000;               // sender's shard waits this long for the owner
  int64_t inbox_ttl_ms = 30LL * 24 * 3600 * 1000;  // undelivered messages expire after 30 days
  size_t max_devices = 5;                          // connected at once, and remembered, per user
  uint64_t push_window = 256;                      // unacked pushes in flight per connection...
  // ...and at most this many bytes of them (one push always goes): well under the gateway's
  // 4 MiB output cap, so a client reading a backlog of large messages is never cut off as slow.
  size_t push_window_bytes = 1u << 20;
  int64_t push_rto_initial_ms = 2000;  // resend unacked pushes after this, doubling...
  int64_t push_rto_max_ms = 60000;     // ...up to this
  double send_rate = 50;               // messages per second per user (sustained)...
  double send_burst = 100;             // ...with this many allowed at once
  std::string secret;                  // cluster secret: verifies the tickets of media references
  std::string previous_secret;         // being rotated out: still verifies them
};

struct ShardContext {
  using OwnerFn = std::function<const std::string&(std::string_view key)>;
  using PeerUpFn = std::function<bool(const std::string& node)>;

  SessionConfig cfg;
  const Clock& clock;
  store::KvStore& kv;
  OwnerFn owner;
  PeerUpFn peer_up;
  OwnerFn group_owner;     // the group node owning a group id ("" if none)
  OwnerFn presence_owner;  // the presence node owning a user id ("" if none)
  ReliableChannel& channel;
  OwnerFn media_owner;           // the media node owning a media id (hex) ("" if none)
  mutable CodeCounter errors{};  // errors answered to clients, by code (metrics)

  // A frame (type and body) to one client connection, through its gateway.
  void ToClient(const codec::Stamp& to, uint8_t type, std::string body, Effects& fx) const;
  void ErrorToClient(const codec::Stamp& to, codec::ErrorCode code, const std::string& msg,
                     std::optional<uint64_t> cid, bool fatal, Effects& fx) const;
};

// A newer map was taken (see nodes/handover.h). Every node that owns keys sends its marker
// when a ring changed; a node whose own role's ring changed also hands keys over, once it has
// the markers of every node that writes to it (session and group nodes: they append to
// sessions, groups, presence and media nodes).
struct MapChange {
  uint64_t epoch = 0;
  bool keyed_rings_changed = false;     // the session, group, presence or media ring
  std::vector<std::string> marker_to;   // every node of the old map but gateways and us
  std::vector<std::string> senders;     // session and group nodes of the old map but us
  bool own_ring_changed = false;        // this node's role...
  std::vector<std::string> old_owners;  // ...from these owners
  std::vector<std::string> new_owners;  // ...to these
};

// "a|b" with a <= b: one conversation, whichever side sends. '|' is not an id character.
std::string ConversationId(const std::string& a, const std::string& b);

// Expiry is indexed per time bucket, not per record: the end of the bucket holding `when`.
// A bucket is 1/32 of the retention (1 s to 1 h), so records expire at most that much late.
uint64_t ExpiryBucketEnd(uint64_t when_ms, int64_t ttl_ms);

}  // namespace meshchat::nodes
