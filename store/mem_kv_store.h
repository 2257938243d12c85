// In-memory KvStore for unit tests: same batch semantics as LmdbKvStore, plus fault injection
// (fail the next commit) to test that nothing is acknowledged when a commit fails.
#pragma once

#include <map>
#include <string>

#include "store/kv_store.h"

namespace meshchat::store {

class MemKvStore final : public KvStore {
 public:
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
  Result<size_t> UsedBytes() override;

  void FailNextCommit() { fail_next_ = true; }
  size_t commits() const { return commits_; }
  size_t Count(const std::string& table) const;  // committed + pending view

 private:
  using Table = std::map<std::string, std::string, std::less<>>;
  Table& Working(std::string_view table);
  std::map<std::string, Table, std::less<>> committed_, working_;
  bool dirty_ = false;
  bool fail_next_ = false;
  size_t commits_ = 0;
};

}  // namespace meshchat::store
