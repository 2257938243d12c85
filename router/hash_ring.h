// Consistent-hash ring with virtual nodes. A value type: no sockets, no I/O.
// Each node owns `vnodes` points on a 64-bit circle; a key belongs to the first point at or
// after its hash. Adding or removing one of N nodes moves about 1/N of the keys, and only
// to (or from) that node.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace meshchat::router {

uint64_t Hash64(std::string_view s);

class HashRing {
 public:
  static constexpr int kDefaultVnodes = 1024;
  HashRing() = default;
  explicit HashRing(std::vector<std::string> nodes, int vnodes = kDefaultVnodes);

  // Owner of `key`. The ring must not be empty.
  const std::string& Owner(std::string_view key) const;
  bool empty() const { return nodes_.empty(); }
  // The fraction of the key space each node owns (sums to 1).
  std::vector<std::pair<std::string, double>> Shares() const;
  const std::vector<std::string>& nodes() const { return nodes_; }

 private:
  std::vector<std::string> nodes_;
  std::vector<std::pair<uint64_t, uint32_t>> points_;  // (position, index into nodes_), sorted
};

}  // namespace meshchat::router
