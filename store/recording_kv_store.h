// A KvStore that passes everything to another one and keeps the writes of each batch, so a
// shard's primary can send exactly what it committed to its replicas
// (nodes/shard/replication.h). The replicas apply the same writes to their own store.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "store/kv_store.h"

namespace meshchat::store {

struct WriteOp {
  enum class Kind : uint8_t { kPut = 1, kDel = 2, kClear = 3 };
  Kind kind = Kind::kPut;
  std::string table;
  std::string key;
  std::string value;  // kPut only
  bool operator==(const WriteOp&) const = default;
};

// Applies one write to `kv` in its current batch.
Status ApplyWrite(KvStore& kv, const WriteOp& op);

class RecordingKvStore final : public KvStore {
 public:
  explicit RecordingKvStore(KvStore& inner) : inner_(inner) {}
  Result<std::string> Get(std::string_view table, std::string_view key) override {
    return inner_.Get(table, key);
  }
  Status Put(std::string_view table, std::string_view key, std::string_view value) override;
  Status Del(std::string_view table, std::string_view key) override;
  Status Scan(std::string_view table, std::string_view from, const ScanFn& fn) override {
    return inner_.Scan(table, from, fn);
  }
  Result<std::string> LastKeyWithPrefix(std::string_view table, std::string_view prefix) override {
    return inner_.LastKeyWithPrefix(table, prefix);
  }
  Status ScanRows(std::string_view after_table, std::string_view after_key,
                  const RowFn& fn) override {
    return inner_.ScanRows(after_table, after_key, fn);
  }
  Status Clear() override;
  // On success the batch's writes become committed() until the next successful commit.
  Status Commit() override;
  void Rollback() override;
  bool dirty() const override { return inner_.dirty(); }
  Result<size_t> UsedBytes() override { return inner_.UsedBytes(); }

  // Recording is off until switched on (a replica's store, or a shard with no replicas, keeps
  // nothing).
  void set_recording(bool on) { recording_ = on; }
  // The writes of the last successful commit, taken (empty afterwards).
  std::vector<WriteOp> TakeCommitted() { return std::move(committed_); }
  size_t pending_bytes() const { return pending_bytes_; }

 private:
  KvStore& inner_;
  bool recording_ = false;
  std::vector<WriteOp> pending_;
  size_t pending_bytes_ = 0;
  std::vector<WriteOp> committed_;
};

}  // namespace meshchat::store
