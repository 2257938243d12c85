// The clock is injected everywhere time matters, so timeouts, token expiry and presence
// thresholds are tested deterministically with FakeClock instead of sleeping.
#pragma once

#include <chrono>
#include <cstdint>

namespace meshchat {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time in milliseconds since the Unix epoch (timestamps users see, token expiry).
  virtual int64_t WallMs() const = 0;
  // Monotonic milliseconds (deadlines, heartbeats): never jumps with clock changes.
  virtual int64_t MonoMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t WallMs() const override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  }
  int64_t MonoMs() const override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
  }
};

// The process's one SystemClock, for what is not given another (a Reactor by default).
inline const Clock& DefaultClock() {
  static const SystemClock clock;
  return clock;
}

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t wall_ms = 1'700'000'000'000, int64_t mono_ms = 1'000)
      : wall_(wall_ms), mono_(mono_ms) {}
  int64_t WallMs() const override { return wall_; }
  int64_t MonoMs() const override { return mono_; }
  void Advance(int64_t ms) {
    wall_ += ms;
    mono_ += ms;
  }

 private:
  int64_t wall_;
  int64_t mono_;
};

}  // namespace meshchat
