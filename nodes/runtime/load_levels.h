// Graceful degradation: each node measures its own load and moves through levels, and its
// handlers shed work by level (docs/ARCHITECTURE.md, "Overload"):
//
//   0 normal
//   1 shed hints        typing indicators and last-seen updates are dropped (they are hints:
//                       nothing stored, nothing acknowledged is lost)
//   2 delay receipts    read receipts are stored and sent later in batches
//   3 refuse heavy      new sends from the heaviest senders are refused with retry_after
//
// Independently of the level, a worker whose queue is over its hard cap refuses every new send
// (`full`): back-pressure to the clients, before anything is stored.
//
// LoadMonitor turns samples (loop lag, loop busy share, inbound delay, queue depth, commit
// latency) into a level with
// hysteresis: it climbs one level after `rise_samples` consecutive samples reaching a higher
// level's threshold (so a sudden overload goes 1, 2, 3 half a second apart), and steps down one
// level after every signal has stayed under `down_fraction` of the current level's thresholds
// for `calm_ms`. Plain class on an injected clock.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "base/clock.h"
#include "base/status.h"
#include "codec/client_messages.h"
#include "codec/envelope.h"
#include "nodes/runtime/metrics.h"
#include "nodes/runtime/node_options.h"

namespace meshchat::nodes {

using codec::LoadLevel;  // defined with the status that carries it
using codec::LoadLevelName;

// What handlers are told: the level, and whether the node's queue is over its hard cap.
struct LoadState {
  LoadLevel level = LoadLevel::kNormal;
  bool full = false;
  bool AtLeast(LoadLevel l) const { return level >= l; }
};

struct LoadSample {
  double lag_ms = 0;     // how late the loop ran a timer, worst in the sample period
  double queue = 0;      // Service::QueueDepth()
  double commit_ms = 0;  // age of the oldest batch waiting for its fsync (0: none)
  double busy_pct = 0;   // share of the sample period the loop was not waiting for events
  double delay_ms = 0;   // worst wait of inbound mesh envelopes (router/inbound_delay.h)
};

struct LoadConfig {
  bool enabled = true;  // false: always level 0 (measured and reported all the same)
  // Thresholds of levels 1, 2, 3 per signal; 0 leaves a signal out.
  std::array<double, 3> lag_ms = {50, 200, 500};
  std::array<double, 3> queue = {5'000, 20'000, 80'000};
  std::array<double, 3> commit_ms = {100, 300, 1'000};
  // A loop busy nearly all the time cannot take more: its backlog is in sockets, where the
  // other signals do not see it.
  std::array<double, 3> busy_pct = {85, 93, 98};
  // How long envelopes wait to be read: the direct measure of a backlog, wherever it sits.
  std::array<double, 3> delay_ms = {100, 250, 500};
  double hard_queue = 200'000;  // over it: `full` (0: never)
  double down_fraction = 0.5;
  int rise_samples = 2;
  int64_t calm_ms = 3'000;

  // Options from --opt (`load_levels=off`, `load_lag_ms=50,200,500`, `load_queue=...`,
  // `load_commit_ms=...`, `load_busy_pct=...`, `load_delay_ms=...`, `load_hard_queue=N`,
  // `load_calm_ms=N`). Throws
  // on a malformed value (start-up only).
  static LoadConfig FromOptions(const NodeOptions& options, LoadConfig defaults);
};

class LoadMonitor {
 public:
  LoadMonitor(LoadConfig cfg, const Clock& clock) : cfg_(cfg), clock_(clock) {}

  // A sample: returns true if the state (level or full) changed.
  bool Observe(const LoadSample& s);
  const LoadState& state() const { return state_; }
  const LoadSample& last() const { return last_; }
  uint64_t changes() const { return changes_; }
  const LoadConfig& config() const { return cfg_; }

 private:
  // The highest level whose threshold (times `scale`) one of the signals reaches.
  int LevelOf(const LoadSample& s, double scale) const;

  LoadConfig cfg_;
  const Clock& clock_;
  LoadState state_;
  LoadSample last_;
  int rising_ = 0;              // consecutive samples above the current level
  int64_t calm_since_ms_ = -1;  // since when every signal is under the lower thresholds
  uint64_t changes_ = 0;
};

// Who sends the most: counts sends per user over one-second windows; at the end of a window
// the heaviest users that together sent half of it (each at least `min_count`) are "heavy"
// for the next window. With equal senders that is half of them: a node at level 3 halves its
// intake; one flooder is refused alone. Attempts count, refused ones included, so a client
// that ignores retry_after stays heavy. Bounded: at most `max_users` counted per window.
class HeavySenders {
 public:
  explicit HeavySenders(uint64_t min_count = 3, size_t max_users = 100'000)
      : min_count_(min_count), max_users_(max_users) {}
  void Count(const std::string& user, int64_t now_ms);
  bool IsHeavy(const std::string& user) const { return heavy_.count(user) != 0; }
  size_t heavy() const { return heavy_.size(); }

 private:
  void Roll(int64_t now_ms);
  uint64_t min_count_;
  size_t max_users_;
  int64_t window_start_ms_ = -1;
  uint64_t total_ = 0;
  std::unordered_map<std::string, uint64_t> counts_;
  std::unordered_set<std::string> heavy_;
};

// Work shed by load, by kind: `meshchat_load_shed_total{kind="..."}`.
struct ShedCounters {
  uint64_t typing = 0;              // typing indicators dropped
  uint64_t presence = 0;            // last-seen updates / presence pushes dropped or coalesced
  uint64_t receipts_delayed = 0;    // read receipts put off
  uint64_t sends_refused = 0;       // sends refused: heaviest senders at level 3
  uint64_t sends_refused_full = 0;  // sends refused: queue over its hard cap
};
void WriteShedMetrics(MetricsText& m, const ShedCounters& s);

// Whether load refuses a new send from `user` (counted in `heavy` at level 3): over the hard
// cap every one (service_unavailable), at level 3 the heaviest senders' (rate_limited), both
// with retry_after 1 s and counted in `shed`. The error to answer, or nothing. Callers refuse
// before anything is stored. `cid` is absent at the gateway, which reads no bodies.
std::optional<codec::Error> RefuseSend(const LoadState& load, HeavySenders& heavy,
                                       ShedCounters& shed, const std::string& user, int64_t now_ms,
                                       std::optional<uint64_t> cid);

}  // namespace meshchat::nodes
