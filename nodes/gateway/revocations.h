// Revoked devices, at a gateway (`meshctl revoke USER DEVICE`). A revocation refuses every
// token of that device signed at or before it (claim `iat`; tokens without one count as
// signed at 0) and closes the device's connections. Tokens live at most `max_token_ttl_s`, so
// an entry older than that refuses nothing a gateway would still accept: it is dropped, and
// the list stays bounded. Persisted by the gateway service in its data directory, one entry
// per line: "USER DEVICE UNIX_SECONDS".
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "base/status.h"
#include "codec/token.h"

namespace meshchat::nodes {

class Revocations {
 public:
  static constexpr size_t kMaxEntries = 1'000'000;
  static constexpr size_t kMaxFileBytes = 256u << 20;

  // Records a revocation (the later one wins). False if the list is full.
  bool Add(const std::string& user, const std::string& device, int64_t at_s);
  bool Revoked(const codec::TokenClaims& c) const;
  // Drops entries that can no longer match an acceptable token.
  void Expire(int64_t now_s, int64_t max_token_ttl_s);
  size_t size() const { return entries_.size(); }

  std::string Serialize() const;
  // Replaces the list with `text` (Serialize's format); kInvalid names the first bad line.
  Status Parse(const std::string& text);
  // File I/O: a missing file is an empty list; writes go to a temporary file renamed over.
  Status Load(const std::string& path);
  Status Save(const std::string& path) const;

 private:
  std::map<std::pair<std::string, std::string>, int64_t> entries_;  // (user, device) -> at
};

}  // namespace meshchat::nodes
