// A log-linear latency histogram (HdrHistogram-style): values in microseconds, buckets of
// ~1.6% relative width from 1 us to over an hour, constant memory, mergeable. Percentiles are
// reported as the upper edge of their bucket.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace meshchat::bench {

class Histogram {
 public:
  static constexpr int kSubBits = 6;  // 64 sub-buckets per power of two
  static constexpr int kMaxExp = 33;  // up to 2^33 us (~2.4 hours)

  void Record(int64_t us);
  void Merge(const Histogram& o);
  void Clear() { *this = Histogram(); }
  uint64_t count() const { return count_; }
  int64_t max() const { return max_; }
  // p in [0, 100].
  int64_t Percentile(double p) const;
  // "p50=.. p99=.. p999=.. max=.." in microseconds, for key=value lines.
  std::string Summary(const std::string& prefix) const;
  // Serialized counts, for combining histograms from worker processes.
  std::string Serialize() const;
  bool Deserialize(const std::string& s);

 private:
  static size_t Index(int64_t us);
  static int64_t UpperEdge(size_t index);
  std::array<uint64_t, (kMaxExp + 1) << kSubBits> buckets_{};
  uint64_t count_ = 0;
  int64_t max_ = 0;
};

}  // namespace meshchat::bench
