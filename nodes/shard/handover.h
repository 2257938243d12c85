// Hand-over of keys when the owners of a role (session or group) change while the cluster
// runs (`meshctl add` / `remove`; docs/ARCHITECTURE.md, "Map changes while running").
//
// When a node takes a map in which the session or group ring changed, it switches its own
// routing at once and puts a *marker* on its reliable channel to every session and group node
// of the old map: everything it sent before the marker went by the old map, everything after
// by the new one. Then, per role whose ring changed:
// - An old owner keeps applying channel entries for its moving keys (they were sent by the
//   old map) until it has every sender's marker; from then on nothing more can arrive for
//   them, so it *seals*: it ships the stored rows of every key that moved, table by table in
//   bounded chunks, on its channel to the key's new owner, deleting each row in the same
//   store batch, and finally sends *done* to every new owner.
// - A new owner refuses requests for keys moving in (clients and peers retry) and *stashes*
//   channel entries for them (they were sent by the new map, so they come after everything
//   the old owner holds) until it has every old owner's done; it then replays the stash in
//   order and serves the keys.
// Each channel is ordered and exactly-once, so per sender and key the order is: entries sent
// by the old map (applied at the old owner, shipped with its rows), then entries sent by the
// new map (stashed, replayed after the rows). Nothing is lost or applied twice; the state is
// stored in the same batches, so a restart resumes where it stopped.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "nodes/shard/channel.h"
#include "nodes/shard/records.h"
#include "nodes/shard/shard_context.h"
#include "router/cluster_map.h"
#include "router/hash_ring.h"
#include "store/kv_store.h"

namespace meshchat::nodes {

// A table holding rows of keyed state. The routing key of a row is its key after
// `time_prefix` bytes (expiry indexes start with a big-endian time), up to the first '\0';
// or what `key_of` makes of the key, if set (media: binary ids routed by their hex).
struct HandoverTable {
  std::string_view name;
  size_t time_prefix = 0;
  std::function<std::string(std::string_view key)> key_of = nullptr;
};

class Handover {
 public:
  using ApplyFn = std::function<Status(std::string_view payload)>;

  Handover(std::string self, std::vector<HandoverTable> tables, store::KvStore& kv,
           ReliableChannel& channel);

  // Optional, for state kept beside the rows (media: bytes in a node's own blob store, counts
  // per uploader). `weight` tells, during the scan, how many bytes shipping a row adds (a step
  // stops after about 8 MiB); `out` runs for each row shipped, after the rows, and may `emit`
  // payloads to the same new owner (before the done); `in` runs for each row received.
  using EmitFn = std::function<Status(std::string payload)>;
  struct RowHooks {
    std::function<size_t(std::string_view table, std::string_view value)> weight;
    std::function<Status(std::string_view table, std::string_view key, std::string_view value,
                         const EmitFn& emit)>
        out;
    std::function<Status(std::string_view table, std::string_view key, std::string_view value)> in;
  };
  void SetRowHooks(RowHooks hooks) { hooks_ = std::move(hooks); }

  // Reads the stored state. Call at start-up.
  Status Load();
  // The store had no hand-over state at Load (a node that never took part in one: new, or
  // running since the cluster started).
  bool fresh() const { return fresh_; }
  // A batch failed to commit (or to become durable): back to the state as stored.
  void Reload();
  // This role's owners change from `old_ring` to `new_ring` at `epoch` (either may lack this
  // node). Shipping waits for the markers of `senders`. Refused while another one runs.
  // (A node joining a running cluster begins with no senders: it owned nothing before.)
  Status Begin(uint64_t epoch, std::vector<std::string> old_ring, std::vector<std::string> new_ring,
               std::vector<std::string> senders = {});
  // A newer map was taken: markers if the session or group ring changed, and Begin if this
  // role's ring did. True if a hand-over began.
  Result<bool> TakeMap(const MapChange& change, Effects& fx);

  bool active() const { return st_.active; }
  // False for a key moving in to this node until every old owner handed over and what was
  // stashed for such keys has been replayed: requests for it are refused (retry), entries
  // for it stashed.
  bool Ready(std::string_view key) const;
  // True if `key` moves away from this node in the running hand-over.
  bool MovingOut(std::string_view key) const;
  // True if `key` came to this node in the latest hand-over (running or finished).
  bool MovedIn(std::string_view key) const {
    return !new_ring_.empty() && new_ring_.Owner(key) == self_ &&
           (old_ring_.empty() || old_ring_.Owner(key) != self_);
  }
  // Whether a channel entry for `key` is applied now (else stashed). This node holds the key's
  // rows if it is moving out (the old owner applies what was sent by the old map until it
  // ships), or if it owns the key by its current map (`owner_now`) and nothing of the key is
  // still on its way. An entry for a key it does not own yet comes from a sender that took a
  // newer map first: it waits in the stash until this node took that map and the key's rows
  // arrived (applying it at once would let those rows overwrite it).
  bool ApplyNow(std::string_view key, bool owner_now) const {
    return MovingOut(key) || (owner_now && Ready(key));
  }
  // A channel payload: a marker, rows or done is handled here (true); anything else is not
  // (false) and the caller applies it, or stashes it when Ready says so.
  Result<bool> OnPayload(const std::string& from, std::string_view payload);
  Status Stash(std::string_view payload);
  // Moves the hand-over on by a bounded amount of work: ships rows once every sender's marker
  // is in, replays stashed entries (through `apply`) once every old owner is done, and ends.
  // Returns true when the hand-over ended in this call.
  Result<bool> Step(const ApplyFn& apply, Effects& fx);
  // Work left (0 when no hand-over runs): for status, and so meshctl knows when it is over.
  uint64_t Pending() const;
  uint64_t epoch() const { return st_.epoch; }

 private:
  Status Save();
  bool MarkersIn() const;
  bool DonesIn() const;
  Status ShipChunk(Effects& fx, bool& finished);
  Status ReplayChunk(const ApplyFn& apply, bool& finished);
  bool IsOldOwner() const;

  std::string RoutingKey(const HandoverTable& t, std::string_view key) const;

  std::string self_;
  std::vector<HandoverTable> tables_;
  RowHooks hooks_;
  store::KvStore& kv_;
  ReliableChannel& channel_;
  HandoverState st_;
  router::HashRing old_ring_, new_ring_;
  uint64_t stash_first_ = 1, stash_next_ = 1;  // stashed entries: [first, next)
  bool fresh_ = false;
  bool dones_in_ = false;  // cache: every old owner's done arrived
};

// What changed for node `self` (of `role`) from map `prev` to `next`.
MapChange MapChangeFor(const router::ClusterMap& prev, const router::ClusterMap& next,
                       const std::string& self, router::Role role);

// The routing key of a stored row (see HandoverTable).
std::string_view RoutingKeyOf(std::string_view key, size_t time_prefix);

}  // namespace meshchat::nodes
