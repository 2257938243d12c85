// Media bytes in Ceph RADOS (librados C++ API), one pool. A blob is striped over objects
// "<id>.<stripe as 4 hex digits>" of `stripe_bytes` each (4 MiB by default), so no object is
// ever larger than a stripe and a large upload never rewrites a large object.
//
// Every call is bounded: the op, mon and mount timeouts are set on the client (librados hangs
// forever by default). The connection is made lazily and re-tried at most every
// `reconnect_interval_ms`, so a node starts, and chat keeps flowing, while Ceph is down; media
// calls then fail with kUnavailable (retryable) instead of blocking.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "store/blob_store.h"

namespace meshchat::store {

struct RadosOptions {
  std::string conf_file;         // ceph.conf with mon_host (and the keyring path)
  std::string client = "admin";  // cephx user, without "client."
  std::string pool = "meshchat";
  uint64_t stripe_bytes = 4ull << 20;
  int op_timeout_s = 5;  // rados_osd_op_timeout, rados_mon_op_timeout, client_mount_timeout
  int64_t reconnect_interval_ms = 2000;
};

class RadosBlobStore : public BlobStore {
 public:
  explicit RadosBlobStore(RadosOptions opts);
  ~RadosBlobStore() override;
  // Connects now; the error says why not (wrong conf, no mon, no pool, no permission).
  Status Connect();
  Status Write(std::string_view id, uint64_t offset, std::string_view data) override;
  Result<size_t> Read(std::string_view id, uint64_t offset, std::span<char> out) override;
  Status Remove(std::string_view id, uint64_t size) override;
  const char* Kind() const override { return "rados"; }
  bool Shared() const override { return true; }

  static std::string ObjectName(std::string_view id, uint64_t stripe);

 private:
  struct Conn;
  // A shared handle: a reconnect never frees one another thread is using (the HTTP thread).
  Result<std::shared_ptr<Conn>> Ready();
  // After a timeout the cluster may have moved or restarted: the next call reconnects
  // (re-reading the conf) instead of reusing a handle that may never answer again.
  Status Check(Status s);
  RadosOptions opts_;
  std::mutex mu_;  // guards connecting; ops on a connected IoCtx are thread-safe
  std::shared_ptr<Conn> conn_;
  int64_t last_attempt_ms_ = -1'000'000'000;
};

}  // namespace meshchat::store
