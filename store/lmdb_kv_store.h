// KvStore on LMDB: one write transaction per batch, opened at the first operation and ended by
// Commit() (durable unless opened without sync) or Rollback(). Logical tables are key prefixes
// in LMDB's main database.
#pragma once

#include <map>
#include <memory>
#include <optional>

#include "store/kv_store.h"
#include "store/lmdb_env.h"

namespace meshchat::store {

class LmdbKvStore final : public KvStore {
 public:
  static Result<std::unique_ptr<LmdbKvStore>> Open(const std::string& dir, const LmdbOptions& opts);
  Result<std::string> Get(std::string_view table, std::string_view key) override;
  Status Put(std::string_view table, std::string_view key, std::string_view value) override;
  Status Del(std::string_view table, std::string_view key) override;
  Status Scan(std::string_view table, std::string_view from, const ScanFn& fn) override;
  Result<std::string> LastKeyWithPrefix(std::string_view table, std::string_view prefix) override;
  Status ScanRows(std::string_view after_table, std::string_view after_key,
                  const RowFn& fn) override;
  Status Clear() override;
  Status Commit() override;
  void Rollback() override;
  bool dirty() const override { return dirty_; }
  Result<size_t> UsedBytes() override { return env_->UsedBytes(); }
  LmdbEnv& env() { return *env_; }

 private:
  explicit LmdbKvStore(std::unique_ptr<LmdbEnv> env) : env_(std::move(env)) {}
  static std::string Prefixed(std::string_view table, std::string_view key);
  Result<MDB_dbi> Main();
  Status EnsureTxn();

  std::unique_ptr<LmdbEnv> env_;
  std::optional<MDB_dbi> main_;
  std::optional<WriteTxn> txn_;
  bool dirty_ = false;  // writes pending
};

}  // namespace meshchat::store
