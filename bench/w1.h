// W1: one-to-one chat. `pairs` senders each talk to their own receiver; an open-loop schedule
// offers `rate` messages per second in total (message k is due at t0 + k/rate, whatever the
// server does, so a slow server cannot slow the generator and hide its latency). Latency is
// measured from the scheduled time: delivery (sender -> receiver's device), sent ack (durably
// stored), and delivered receipt back at the sender.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/histogram.h"

namespace meshchat::bench {

struct W1Stats {
  Histogram deliver, ack, receipt;
  uint64_t sent = 0, delivered = 0, acked = 0, receipts = 0, errors = 0;
  // --chatty (meshchat): deliveries of messages never refused, refusals (each resent after its
  // retry_after with the same cid), typing notices and read receipts that reached clients.
  Histogram deliver_first;
  Histogram deliver_light;  // --heavy: deliveries to the light pairs only
  uint64_t refused = 0, typing = 0, reads = 0;
  void Clear() { *this = W1Stats(); }
};

// One system under test, driven by the step runner.
class ChatDriver {
 public:
  virtual ~ChatDriver() = default;
  virtual std::string name() const = 0;
  // Connects and authenticates every client; false (with a message on stderr) on failure.
  virtual bool Setup(int pairs) = 0;
  // Sends message k of the schedule from pair `pair`'s sender, stamped with `sched_ns`.
  virtual void Send(int pair, uint64_t k, int64_t sched_ns) = 0;
  // Handles I/O for up to timeout_ms, recording into stats.
  virtual void Poll(int timeout_ms, W1Stats& stats) = 0;
  // Pids whose CPU and memory count as the server's.
  virtual std::vector<long> ServerPids() const = 0;
};

struct W1Options {
  int pairs = 1000;
  std::vector<double> rates = {5000, 10000, 20000};
  double step_s = 5;
  double drain_s = 2;
  size_t body_bytes = 100;
  double max_p99_ms = 10;  // a step is "sustained" if all are delivered and p99 is under this
  // Like a chat app: a typing indicator before each message, a read receipt for each delivery;
  // sends refused with retry_after are resent then (meshchat only).
  bool chatty = false;
  // The first `heavy_pairs` pairs send `heavy_factor` times as often as the others (a few
  // users sending most of the traffic); latency of the others is reported apart.
  int heavy_pairs = 0;
  int heavy_factor = 1;
};

std::unique_ptr<ChatDriver> MakeMeshchatDriver(const std::string& var_dir, size_t body_bytes,
                                               bool chatty = false, int heavy_pairs = 0);
std::unique_ptr<ChatDriver> MakeMqttDriver(const std::string& host, int port, size_t body_bytes,
                                           std::vector<long> server_pids);

// Runs the ramp; prints one key=value line per step and a table. Returns 0 if at least one
// step was sustained.
int RunW1(ChatDriver& d, const W1Options& o);

}  // namespace meshchat::bench
