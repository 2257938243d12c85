// How long envelopes wait on their way in: a load signal that sees a backlog wherever it
// sits (ZeroMQ pipes, TCP buffers, the loop's own batch). Every mesh heartbeat carries its
// sender's wall-clock time; its delay on arrival is transit plus the queue in front of it.
// Clocks of different machines differ by a constant, so each peer's delays are taken above
// its own baseline (the least delay it showed in the last one to two minutes). A heartbeat
// stuck behind a deep queue does not arrive at all: while other envelopes from that peer keep
// arriving, its overdue heartbeat counts as at least that late. Plain class, no sockets.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <unordered_map>

namespace meshchat::router {

class InboundDelay {
 public:
  explicit InboundDelay(int64_t heartbeat_ms) : heartbeat_ms_(heartbeat_ms) {}

  // A heartbeat from `peer` sent at `sent_wall_ms` (its clock) arrived at `now_wall_ms`.
  void OnHeartbeat(const std::string& peer, int64_t sent_wall_ms, int64_t now_wall_ms);
  // `peer` was last heard from (any envelope) at `heard_wall_ms`, our clock.
  void OnEnvelope(const std::string& peer, int64_t heard_wall_ms);
  void Forget(const std::string& peer) { peers_.erase(peer); }
  // The worst delay above baseline since the last call, over all peers (0 if none).
  int64_t TakeWorstMs(int64_t now_wall_ms);

 private:
  static constexpr int64_t kNone = std::numeric_limits<int64_t>::max();
  static constexpr int kBaselineWindow = 60;  // heartbeats per baseline window
  struct Peer {
    int64_t last_sent = 0;    // its clock: the newest heartbeat's stamp
    int64_t last_hb_at = 0;   // our clock: when that heartbeat arrived
    int64_t last_any_at = 0;  // our clock: when anything from it last arrived
    int64_t worst = kNone;    // raw delay, worst since TakeWorstMs (kNone: none)
    int64_t min_cur = kNone, min_prev = kNone;
    int in_window = 0;
  };
  int64_t heartbeat_ms_;
  std::unordered_map<std::string, Peer> peers_;
};

}  // namespace meshchat::router
