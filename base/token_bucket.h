// A token bucket on an injected clock: `rate` tokens per second, at most `burst` saved up.
#pragma once

#include <algorithm>
#include <cstdint>

namespace meshchat {

class TokenBucket {
 public:
  TokenBucket(double rate_per_s, double burst) : rate_(rate_per_s), burst_(burst), tokens_(burst) {}

  // Takes `n` tokens (one by default) if there are that many; `now_ms` is monotonic. A cost
  // over the burst is let through when the bucket is full (it could never be paid otherwise).
  bool Take(int64_t now_ms, double n = 1) {
    Refill(now_ms);
    const double need = std::min(n, burst_);
    if (tokens_ < need) return false;
    tokens_ -= need;
    return true;
  }
  // Milliseconds until `n` tokens will be there (0 if they are).
  int64_t RetryAfterMs(int64_t now_ms, double n = 1) {
    Refill(now_ms);
    const double need = std::min(n, burst_);
    if (tokens_ >= need || rate_ <= 0) return 0;
    return static_cast<int64_t>((need - tokens_) * 1000 / rate_) + 1;
  }

 private:
  void Refill(int64_t now_ms) {
    if (last_ms_ != 0 && now_ms > last_ms_)
      tokens_ = std::min(burst_, tokens_ + rate_ * static_cast<double>(now_ms - last_ms_) / 1000);
    last_ms_ = std::max(last_ms_, now_ms);
  }
  double rate_, burst_, tokens_;
  int64_t last_ms_ = 0;
};

}  // namespace meshchat
