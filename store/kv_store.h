// The key-value store the services write through, injected so tests can use an in-memory
// store (and make commits fail on purpose).
//
// Model: one implicit write batch. Reads see the batch's own writes. Commit() makes the whole
// batch durable atomically, or fails and discards it (the caller then drops every effect that
// depended on it: nothing is acknowledged that was not stored). Services commit once per
// reactor turn (group commit).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace meshchat::store {

using ScanFn = std::function<bool(std::string_view key, std::string_view value)>;
using RowFn =
    std::function<bool(std::string_view table, std::string_view key, std::string_view value)>;

class KvStore {
 public:
  virtual ~KvStore() = default;
  // kNotFound if absent.
  virtual Result<std::string> Get(std::string_view table, std::string_view key) = 0;
  virtual Status Put(std::string_view table, std::string_view key, std::string_view value) = 0;
  virtual Status Del(std::string_view table, std::string_view key) = 0;
  // Keys >= from, in byte order, until fn returns false.
  virtual Status Scan(std::string_view table, std::string_view from, const ScanFn& fn) = 0;
  // Last key of the table that starts with `prefix`, or kNotFound.
  virtual Result<std::string> LastKeyWithPrefix(std::string_view table,
                                                std::string_view prefix) = 0;
  // Every row of every table in (table, key) byte order, from the first row after
  // (after_table, after_key) (both empty: from the very first), until fn returns false. What a
  // replica is copied from (nodes/shard/replication.h). Table names hold no '\0'.
  virtual Status ScanRows(std::string_view after_table, std::string_view after_key,
                          const RowFn& fn) = 0;
  // Deletes every row of every table, in the current batch (a replica starting over).
  virtual Status Clear() = 0;
  virtual Status Commit() = 0;
  virtual void Rollback() = 0;
  virtual bool dirty() const = 0;  // uncommitted writes pending
  // Approximate bytes in use (for status and for checking that deletions free space).
  virtual Result<size_t> UsedBytes() = 0;
};

// Big-endian fixed-width integers in keys keep byte order equal to numeric order.
std::string BigEndian64(uint64_t v);
uint64_t ReadBigEndian64(std::string_view s);  // s must hold 8 bytes

// Expiry indexes: keys that start with a big-endian time. The first `max` keys of `table` whose
// time is <= now, in time order.
Result<std::vector<std::string>> DueKeys(KvStore& kv, std::string_view table, uint64_t now,
                                         size_t max);
// Puts `key` -> "" unless it is there (a mark many writers set: no rewrite of the same page).
Status PutMarkOnce(KvStore& kv, std::string_view table, std::string_view key);

}  // namespace meshchat::store
