// Anti-entropy for the connection directory (docs/ARCHITECTURE.md, "Which connections exist").
//
// A gateway says, every second, what it believes each session shard holds of its connections:
// for each of kConnSyncBuckets buckets (conn id mod buckets) the count and an order-free digest
// of the conn ids. The shard compares with what it holds from that gateway and answers only
// for the buckets that differ, with every connection it holds in them; the gateway then
// re-announces what the shard lacks and closes at the shard what it no longer has. Neither
// side trusts its own "peer down": the views cannot stay apart for longer than a round.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "codec/frame.h"

namespace meshchat::codec {

inline constexpr size_t kConnSyncBuckets = 64;  // one bit each in a uint64_t
// A shard's answer names at most this many connections; buckets past it wait for the next
// round (the answer stays far below kMaxEnvelopeBody: 16,384 x (9 + 65) bytes < 1.2 MiB
// would not, so it also stops at kMaxConnListBytes).
inline constexpr size_t kMaxConnListEntries = 16'384;
inline constexpr size_t kMaxConnListBytes = 512 * 1024;

// The mix of a conn id into a bucket digest (XOR of these over a bucket: order-free, and one
// connection more or less always changes it).
uint64_t ConnDigestOf(uint64_t conn);
inline size_t ConnBucketOf(uint64_t conn) {
  return conn % kConnSyncBuckets;
}

// kConnSync (gateway -> session): the gateway's registered connections owned by that shard.
struct ConnDigest {
  std::array<uint64_t, kConnSyncBuckets> count{};
  std::array<uint64_t, kConnSyncBuckets> xor_{};
  void Add(uint64_t conn) {
    ++count[ConnBucketOf(conn)];
    xor_[ConnBucketOf(conn)] ^= ConnDigestOf(conn);
  }
  bool operator==(const ConnDigest&) const = default;
};
std::string Encode(const ConnDigest& d);
DecodeStatus Decode(std::string_view body, ConnDigest& out);

// kConnSyncDiff (session -> gateway): for each bucket in `buckets`, every connection of that
// gateway the shard holds in it (conn id and user, same index).
struct ConnList {
  std::vector<uint64_t> buckets;
  std::vector<uint64_t> conns;
  std::vector<std::string> users;
  bool operator==(const ConnList&) const = default;
};
std::string Encode(const ConnList& l);
DecodeStatus Decode(std::string_view body, ConnList& out);

}  // namespace meshchat::codec
