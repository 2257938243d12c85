#include "router/inbound_delay.h"

#include <algorithm>

namespace meshchat::router {

void InboundDelay::OnHeartbeat(const std::string& peer, int64_t sent_wall_ms, int64_t now_wall_ms) {
  Peer& p = peers_[peer];
  const int64_t d = now_wall_ms - sent_wall_ms;
  p.worst = p.worst == kNone ? d : std::max(p.worst, d);
  p.min_cur = std::min(p.min_cur, d);
  if (++p.in_window >= kBaselineWindow) {  // the baseline follows clock drift
    p.min_prev = p.min_cur;
    p.min_cur = kNone;
    p.in_window = 0;
  }
  p.last_sent = sent_wall_ms;
  p.last_hb_at = p.last_any_at = now_wall_ms;
}

void InboundDelay::OnEnvelope(const std::string& peer, int64_t heard_wall_ms) {
  auto it = peers_.find(peer);
  if (it != peers_.end()) it->second.last_any_at = std::max(it->second.last_any_at, heard_wall_ms);
}

int64_t InboundDelay::TakeWorstMs(int64_t now_wall_ms) {
  int64_t worst = 0;
  for (auto& [id, p] : peers_) {
    const int64_t base = std::min(p.min_cur, p.min_prev);
    if (base == kNone) continue;
    if (p.worst != kNone) worst = std::max(worst, p.worst - base);
    p.worst = kNone;
    // Its next heartbeat is overdue, yet older envelopes from it still arrive: it waits in a
    // queue at least this long. (A peer that went silent is down, not queued: not counted.)
    const bool overdue = now_wall_ms - p.last_hb_at > heartbeat_ms_ * 3 / 2;
    if (overdue && p.last_any_at > p.last_hb_at + heartbeat_ms_)
      worst = std::max(worst, now_wall_ms - p.last_sent - heartbeat_ms_ - base);
  }
  return worst;
}

}  // namespace meshchat::router
