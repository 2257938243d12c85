#include "nodes/gateway/address_limits.h"

#include <spdlog/spdlog.h>

namespace meshchat::nodes {
namespace {
constexpr int64_t kIdleMs = 60'000;  // an address quiet this long is forgotten first
}  // namespace

AddressLimits::State& AddressLimits::Get(const std::string& addr, int64_t now_ms) {
  auto it = by_addr_.find(addr);
  if (it == by_addr_.end()) {
    if (by_addr_.size() >= cfg_.max_addresses) {
      std::erase_if(by_addr_, [&](const auto& kv) { return now_ms - kv.second.last_ms > kIdleMs; });
      if (by_addr_.size() >= cfg_.max_addresses) {
        if (now_ms - last_log_ms_ >= 60'000) {  // clients can cause this: not once each time
          last_log_ms_ = now_ms;
          spdlog::warn("{} client addresses tracked: per-address limits start over",
                       by_addr_.size());
        }
        by_addr_.clear();
      }
    }
    it = by_addr_
             .emplace(addr, State{TokenBucket(cfg_.connect_rate, cfg_.connect_burst),
                                  TokenBucket(cfg_.auth_fail_rate, cfg_.auth_fail_burst), now_ms})
             .first;
  }
  it->second.last_ms = now_ms;
  return it->second;
}

AddressLimits::Verdict AddressLimits::Connect(const std::string& addr, int64_t now_ms) {
  if (addr.empty()) return Verdict::kOk;  // not a network peer (tests)
  State& s = Get(addr, now_ms);
  // An address that used up its failed authentications waits until it earns one back.
  if (cfg_.auth_fail_rate > 0 && s.failures.RetryAfterMs(now_ms) > 0) return Verdict::kAuthFailures;
  // Processes on this machine (a local proxy, the load generator) may connect as fast as they
  // like; failed authentications count for them too.
  const bool local = addr.rfind("127.", 0) == 0 || addr == "::1";
  if (cfg_.connect_rate > 0 && !local && !s.connects.Take(now_ms)) return Verdict::kTooFast;
  return Verdict::kOk;
}

void AddressLimits::AuthFailed(const std::string& addr, int64_t now_ms) {
  if (addr.empty() || cfg_.auth_fail_rate <= 0) return;
  (void)Get(addr, now_ms).failures.Take(now_ms);
}

}  // namespace meshchat::nodes
