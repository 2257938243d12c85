// Who is a replicated shard's primary, agreed through etcd (store/etcd_client.h): the plan of
// docs/ARCHITECTURE.md "Replicated shards", the piece that decides; not wired to the durable
// service yet (issue 22).
//
// Keys, under `prefix` (one per cluster):
//   shard/<S>/primary   = the primary's node id, held by its lease; the key's create revision
//                         is the primary's term (it only grows: a newer holder's is higher)
//   shard/<S>/in-sync   = the in-sync set, node ids joined by ','; written only while the
//                         writer holds shard/<S>/primary (a guarded put)
// A member may take an absent primary key only if the in-sync set names it (it holds every
// batch the old primary acknowledged), or, when no in-sync set was ever written, if it is the
// shard's head in the map. A holder that cannot renew its lease within the TTL (less a
// margin) stops calling itself primary before etcd frees the key for another.
//
// Step() does blocking calls (each bounded by the client's timeout): run it on a thread of
// its own, never on the loop.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "store/etcd_client.h"

namespace meshchat::nodes {

struct ElectionConfig {
  std::string prefix = "meshchat/";  // per cluster
  std::string shard;                 // the shard's name (its head's id)
  std::string self;
  bool head = false;           // the map's head: first primary of a shard nobody has led
  int64_t ttl_s = 2;           // lease TTL (etcd's floor is about 1.5 s)
  int64_t keepalive_ms = 500;  // renewals while holding
  int64_t margin_ms = 500;     // a holder steps down this long before its lease can expire
};

struct ElectionView {
  bool reachable = false;            // etcd answered this step
  std::string primary;               // "" none (or not known)
  int64_t term = 0;                  // the primary key's create revision
  std::vector<std::string> in_sync;  // as etcd holds it
  bool self_primary = false;         // this member holds the key and its lease is fresh
};

class ShardElection {
 public:
  explicit ShardElection(ElectionConfig cfg);
  // One round (call every ~250 ms): renews or gets the lease, reads the keys, takes an absent
  // primary key if eligible. `now_ms` is a monotonic clock read before the call.
  ElectionView Step(store::EtcdClient& etcd, int64_t now_ms);
  // The holder replaces the in-sync set; false if it no longer holds the shard.
  Result<bool> SetInSync(store::EtcdClient& etcd, const std::vector<std::string>& members);
  // Gives the key up (shutdown): another member may take it at once.
  void Resign(store::EtcdClient& etcd);

  const std::string& primary_key() const { return primary_key_; }
  const std::string& in_sync_key() const { return in_sync_key_; }

 private:
  bool Holding(int64_t now_ms) const;
  ElectionConfig cfg_;
  std::string primary_key_, in_sync_key_;
  int64_t lease_ = 0;
  int64_t lease_ok_ms_ = 0;  // when the last renewal that succeeded was sent
  int64_t last_renew_ms_ = -1'000'000;
  int64_t held_term_ = 0;     // term of the key this member created (0: none)
  std::string last_primary_;  // the holder seen last, for the next in-sync set
};

// "a,b" <-> {"a", "b"}.
std::vector<std::string> SplitIds(const std::string& joined);
std::string JoinIds(const std::vector<std::string>& ids);

}  // namespace meshchat::nodes
