#include "store/recording_kv_store.h"

namespace meshchat::store {

Status ApplyWrite(KvStore& kv, const WriteOp& op) {
  switch (op.kind) {
    case WriteOp::Kind::kPut: return kv.Put(op.table, op.key, op.value);
    case WriteOp::Kind::kDel: return kv.Del(op.table, op.key);
    case WriteOp::Kind::kClear: return kv.Clear();
  }
  return {Code::kInvalid, "unknown write kind"};
}

Status RecordingKvStore::Put(std::string_view table, std::string_view key, std::string_view value) {
  Status s = inner_.Put(table, key, value);
  if (s.ok() && recording_) {
    pending_.push_back(
        {WriteOp::Kind::kPut, std::string(table), std::string(key), std::string(value)});
    pending_bytes_ += table.size() + key.size() + value.size();
  }
  return s;
}

Status RecordingKvStore::Del(std::string_view table, std::string_view key) {
  Status s = inner_.Del(table, key);
  if (s.ok() && recording_) {
    pending_.push_back({WriteOp::Kind::kDel, std::string(table), std::string(key), {}});
    pending_bytes_ += table.size() + key.size();
  }
  return s;
}

Status RecordingKvStore::Clear() {
  Status s = inner_.Clear();
  if (s.ok() && recording_) {
    pending_.clear();  // everything before it in the batch is gone anyway
    pending_.push_back({WriteOp::Kind::kClear, {}, {}, {}});
    pending_bytes_ = 0;
  }
  return s;
}

Status RecordingKvStore::Commit() {
  Status s = inner_.Commit();
  if (s.ok()) {
    committed_ = std::move(pending_);
  }
  pending_.clear();
  pending_bytes_ = 0;
  return s;
}

void RecordingKvStore::Rollback() {
  inner_.Rollback();
  pending_.clear();
  pending_bytes_ = 0;
}

}  // namespace meshchat::store
