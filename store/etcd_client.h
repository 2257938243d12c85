// A small client for etcd v3 (Debian's etcd-server), over its JSON gateway (POST /v3/...),
// for what a replicated shard must agree on with others (docs/ARCHITECTURE.md, "Replicated
// shards"): who is the shard's primary (a key held by a lease; its create revision is the
// primary's term) and which replicas are in sync (a key only the lease holder may change).
// etcd does the agreeing (Raft); we only ask. Calls block for at most `timeout_ms`: run them
// off the loop thread.
//
// Every answer is checked: at most kMaxEtcdResponseBytes, JSON parsed without exceptions,
// fields of the expected types, or an error status naming what was wrong.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "base/status.h"

namespace httplib {
class Client;
}

namespace meshchat::store {

inline constexpr size_t kMaxEtcdResponseBytes = 1 << 20;

struct EtcdKey {
  std::string key;
  std::string value;
  int64_t create_revision = 0;  // the revision that created it (a term, for a leader key)
  int64_t mod_revision = 0;
  int64_t lease = 0;
};

class EtcdClient {
 public:
  // `endpoint`: http://HOST:PORT of an etcd member.
  static Result<std::unique_ptr<EtcdClient>> Make(const std::string& endpoint, int timeout_ms);
  ~EtcdClient();

  // A lease of `ttl_s` seconds; returns its id.
  Result<int64_t> GrantLease(int64_t ttl_s);
  // Renews the lease; returns the TTL it now has. kNotFound if it has expired.
  Result<int64_t> KeepAlive(int64_t lease);
  Status Revoke(int64_t lease);
  // The key, or nullopt if absent.
  Result<std::optional<EtcdKey>> Get(const std::string& key);
  // Creates `key` = `value` on `lease` if it does not exist. Returns whether this call created
  // it, and the key as it now is (ours, or whoever holds it).
  Result<std::pair<bool, EtcdKey>> CreateIfAbsent(const std::string& key, const std::string& value,
                                                  int64_t lease);
  // Puts `key` = `value` only while `guard` still exists with create revision `guard_rev`
  // (the caller's leadership). False if the guard no longer holds.
  Result<bool> PutIfHeld(const std::string& key, const std::string& value, const std::string& guard,
                         int64_t guard_rev);

 private:
  explicit EtcdClient(std::unique_ptr<httplib::Client> http);
  Result<std::string> Post(const std::string& path, const std::string& body);
  std::unique_ptr<httplib::Client> http_;
};

}  // namespace meshchat::store
