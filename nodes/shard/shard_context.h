// What every sharded worker shares: how it finds a key's owner and a peer's liveness, what a
// new cluster map changes for it, and how expiry is bucketed.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace meshchat::nodes {

// The node owning a key on some ring ("" if none), and whether a peer is heard from.
using OwnerFn = std::function<const std::string&(std::string_view key)>;
using PeerUpFn = std::function<bool(const std::string& node)>;

// A newer map was taken (see nodes/shard/handover.h). Every node that owns keys sends its marker
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

// Expiry is indexed per time bucket, not per record: the end of the bucket holding `when`.
// A bucket is 1/32 of the retention (1 s to 1 h), so records expire at most that much late.
inline uint64_t ExpiryBucketEnd(uint64_t when_ms, int64_t ttl_ms) {
  const uint64_t width = static_cast<uint64_t>(std::clamp<int64_t>(ttl_ms / 32, 1000, 3600000));
  return (when_ms / width + 1) * width;
}

}  // namespace meshchat::nodes
