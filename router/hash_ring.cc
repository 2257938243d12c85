#include "router/hash_ring.h"

#include <algorithm>
#include <cassert>

namespace meshchat::router {

uint64_t Hash64(std::string_view s) {
  // FNV-1a, then the splitmix64 finaliser: FNV alone clusters similar keys ("user1", "user2").
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

HashRing::HashRing(std::vector<std::string> nodes, int vnodes) : nodes_(std::move(nodes)) {
  std::sort(nodes_.begin(), nodes_.end());  // same ring whatever order the map lists nodes in
  points_.reserve(nodes_.size() * static_cast<size_t>(vnodes));
  for (uint32_t i = 0; i < nodes_.size(); ++i)
    for (int v = 0; v < vnodes; ++v)
      points_.emplace_back(Hash64(nodes_[i] + "#" + std::to_string(v)), i);
  std::sort(points_.begin(), points_.end());
}

std::vector<std::pair<std::string, double>> HashRing::Shares() const {
  std::vector<double> owned(nodes_.size(), 0.0);
  for (size_t i = 0; i < points_.size(); ++i) {
    // A point owns the arc from its predecessor (exclusive) up to itself.
    const uint64_t prev = points_[(i + points_.size() - 1) % points_.size()].first;
    const uint64_t arc = points_[i].first - prev;  // wraps correctly for the first point
    owned[points_[i].second] += static_cast<double>(arc) / 18446744073709551616.0;
  }
  std::vector<std::pair<std::string, double>> out;
  for (size_t i = 0; i < nodes_.size(); ++i) out.emplace_back(nodes_[i], owned[i]);
  return out;
}

const std::string& HashRing::Owner(std::string_view key) const {
  assert(!points_.empty());
  const uint64_t h = Hash64(key);
  auto it = std::lower_bound(points_.begin(), points_.end(), std::make_pair(h, uint32_t{0}));
  if (it == points_.end()) it = points_.begin();
  return nodes_[it->second];
}

}  // namespace meshchat::router
