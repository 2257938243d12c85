#include "bench/histogram.h"

#include <algorithm>
#include <bit>
#include <sstream>

namespace meshchat::bench {

size_t Histogram::Index(int64_t us) {
  uint64_t v = us < 1 ? 1 : static_cast<uint64_t>(us);
  const int exp = 63 - std::countl_zero(v);           // floor(log2 v)
  if (exp < kSubBits) return static_cast<size_t>(v);  // exact below 64 us
  const uint64_t sub = (v >> (exp - kSubBits)) & ((1u << kSubBits) - 1);
  const size_t e = static_cast<size_t>(std::min(exp - kSubBits + 1, kMaxExp));
  return (e << kSubBits) | sub;
}

int64_t Histogram::UpperEdge(size_t index) {
  const size_t e = index >> kSubBits, sub = index & ((1u << kSubBits) - 1);
  if (e == 0) return static_cast<int64_t>(sub);
  const int exp = static_cast<int>(e) + kSubBits - 1;
  return static_cast<int64_t>(((uint64_t{1} << kSubBits) | sub) + 1) << (exp - kSubBits);
}

void Histogram::Record(int64_t us) {
  ++buckets_[Index(us)];
  ++count_;
  max_ = std::max(max_, us);
}

void Histogram::Merge(const Histogram& o) {
  for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += o.buckets_[i];
  count_ += o.count_;
  max_ = std::max(max_, o.max_);
}

int64_t Histogram::Percentile(double p) const {
  if (count_ == 0) return 0;
  const uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(p / 100.0 * count_ + 0.5));
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::min(UpperEdge(i), max_);
  }
  return max_;
}

std::string Histogram::Summary(const std::string& prefix) const {
  std::ostringstream o;
  o << prefix << "p50_us=" << Percentile(50) << " " << prefix << "p99_us=" << Percentile(99) << " "
    << prefix << "p999_us=" << Percentile(99.9) << " " << prefix << "max_us=" << max_;
  return o.str();
}

std::string Histogram::Serialize() const {
  std::ostringstream o;
  o << count_ << " " << max_;
  for (size_t i = 0; i < buckets_.size(); ++i)
    if (buckets_[i]) o << " " << i << ":" << buckets_[i];
  return o.str();
}

bool Histogram::Deserialize(const std::string& s) {
  Clear();
  std::istringstream in(s);
  if (!(in >> count_ >> max_)) return false;
  std::string item;
  while (in >> item) {
    const size_t colon = item.find(':');
    if (colon == std::string::npos) return false;
    const size_t i = std::stoull(item.substr(0, colon));
    if (i >= buckets_.size()) return false;
    buckets_[i] = std::stoull(item.substr(colon + 1));
  }
  return true;
}

}  // namespace meshchat::bench
