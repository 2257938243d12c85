// W2: group fan-out. `groups` groups of `size` members, every member connected; an open-loop
// schedule offers `rate` group messages per second, each from one member (round robin), so
// deliveries per second = rate x (size - 1). Latency from the scheduled time to each member's
// device; server CPU per delivery.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bench/histogram.h"

namespace meshchat::bench {

struct W2Stats {
  Histogram deliver;
  uint64_t sent = 0, acked = 0, deliveries = 0, errors = 0;
};

class GroupDriver {
 public:
  virtual ~GroupDriver() = default;
  virtual std::string name() const = 0;
  virtual bool Setup(int groups, int size) = 0;
  // Message k, from member `member` of group `group`, due at `sched_ns`.
  virtual void Send(int group, int member, uint64_t k, int64_t sched_ns) = 0;
  virtual void Poll(int timeout_ms, W2Stats& stats) = 0;
  virtual std::vector<long> ServerPids() const = 0;
};

struct W2Options {
  int groups = 20;
  int size = 50;
  std::vector<double> rates = {200, 500, 1000};  // group messages per second
  double step_s = 5;
  double drain_s = 2;
  size_t body_bytes = 100;
  double max_p99_ms = 10;
};

std::unique_ptr<GroupDriver> MakeMeshchatGroupDriver(const std::string& var, size_t body_bytes);
std::unique_ptr<GroupDriver> MakeMqttGroupDriver(const std::string& host, int port,
                                                 size_t body_bytes, std::vector<long> pids);
int RunW2(GroupDriver& d, const W2Options& o);

}  // namespace meshchat::bench
