// Per source address (the client's IP) limits at a gateway: how fast new connections may come,
// and how many failed authentications it may make before its connections are refused for a
// while. Bounded: at most `max_addresses` are tracked; idle ones are forgotten first, and if
// every slot is busy the table starts over (failing open rather than growing).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include "base/token_bucket.h"

namespace meshchat::nodes {

struct AddressLimitConfig {
  double connect_rate = 100;    // new connections per second per address (0: no limit;
                                // loopback exempt)...
  double connect_burst = 500;   // ...with this many at once (NAT: many users, one address)
  double auth_fail_rate = 1;    // failed authentications per second per address (0: no limit)...
  double auth_fail_burst = 20;  // ...with this many allowed at once
  size_t max_addresses = 65536;
};

class AddressLimits {
 public:
  explicit AddressLimits(AddressLimitConfig cfg) : cfg_(cfg) {}

  enum class Verdict { kOk, kTooFast, kAuthFailures };
  // A new connection from `addr` at monotonic `now_ms`.
  Verdict Connect(const std::string& addr, int64_t now_ms);
  // A connection from `addr` failed to authenticate (bad or expired token).
  void AuthFailed(const std::string& addr, int64_t now_ms);
  size_t tracked() const { return by_addr_.size(); }

 private:
  struct State {
    TokenBucket connects, failures;
    int64_t last_ms = 0;
  };
  State& Get(const std::string& addr, int64_t now_ms);

  AddressLimitConfig cfg_;
  std::unordered_map<std::string, State> by_addr_;
  int64_t last_log_ms_ = -1'000'000;  // the table-full warning: at most once a minute
};

}  // namespace meshchat::nodes
