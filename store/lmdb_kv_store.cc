#include "store/lmdb_kv_store.h"

namespace meshchat::store {

std::string BigEndian64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) s[static_cast<size_t>(i)] = static_cast<char>(v & 0xFF);
  return s;
}

uint64_t ReadBigEndian64(std::string_view s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < s.size(); ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

Result<std::unique_ptr<LmdbKvStore>> LmdbKvStore::Open(const std::string& dir,
                                                       const LmdbOptions& opts) {
  auto env = LmdbEnv::Open(dir, opts);
  if (!env.ok()) return env.status();
  return std::unique_ptr<LmdbKvStore>(new LmdbKvStore(std::move(env).value()));
}

Status LmdbKvStore::EnsureTxn() {
  if (txn_) return Status::Ok();
  auto t = env_->BeginWrite();
  if (!t.ok()) return t.status();
  txn_.emplace(std::move(t).value());
  return Status::Ok();
}

Result<MDB_dbi> LmdbKvStore::Table(std::string_view name) {
  // Every operation runs in the batch's transaction: begin it first, table cached or not.
  if (Status s = EnsureTxn(); !s.ok()) return s;
  if (auto it = tables_.find(name); it != tables_.end()) return it->second;
  MDB_dbi dbi = 0;
  // Opened inside the batch's transaction: the handle becomes permanent when it commits.
  const std::string n(name);
  if (int rc = mdb_dbi_open(txn_->raw(), n.c_str(), MDB_CREATE, &dbi); rc != MDB_SUCCESS)
    return LmdbStatus(rc, "open table " + n);
  opened_ = true;  // the handle survives only if this transaction commits
  tables_.emplace(n, dbi);
  return dbi;
}

Result<std::string> LmdbKvStore::Get(std::string_view table, std::string_view key) {
  auto t = Table(table);
  if (!t.ok()) return t.status();
  auto v = txn_->Get(*t, key);
  if (!v.ok()) return v.status();
  return std::string(*v);
}

Status LmdbKvStore::Put(std::string_view table, std::string_view key, std::string_view value) {
  auto t = Table(table);
  if (!t.ok()) return t.status();
  dirty_ = true;
  return txn_->Put(*t, key, value);
}

Status LmdbKvStore::Del(std::string_view table, std::string_view key) {
  auto t = Table(table);
  if (!t.ok()) return t.status();
  dirty_ = true;
  return txn_->Del(*t, key);
}

Status LmdbKvStore::Scan(std::string_view table, std::string_view from, const ScanFn& fn) {
  auto t = Table(table);
  if (!t.ok()) return t.status();
  return txn_->Scan(*t, from, fn);
}

Result<std::string> LmdbKvStore::LastKeyWithPrefix(std::string_view table,
                                                   std::string_view prefix) {
  auto t = Table(table);
  if (!t.ok()) return t.status();
  MDB_cursor* cur = nullptr;
  if (int rc = mdb_cursor_open(txn_->raw(), *t, &cur); rc) return LmdbStatus(rc, "cursor");
  // Position after the prefix range (prefix + 0xFF...), then step back one.
  std::string upper = std::string(prefix) + std::string(9, '\xff');
  MDB_val k{upper.size(), upper.data()}, v{};
  int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  rc = rc == MDB_SUCCESS ? mdb_cursor_get(cur, &k, &v, MDB_PREV)
                         : mdb_cursor_get(cur, &k, &v, MDB_LAST);
  std::string found;
  if (rc == MDB_SUCCESS) found.assign(static_cast<const char*>(k.mv_data), k.mv_size);
  mdb_cursor_close(cur);
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) return LmdbStatus(rc, "cursor");
  if (rc == MDB_NOTFOUND || found.compare(0, prefix.size(), prefix) != 0)
    return Status(Code::kNotFound, "no key with prefix");
  return found;
}

Status LmdbKvStore::Commit() {
  if (!txn_) return Status::Ok();
  Status s = dirty_ || opened_ ? txn_->Commit() : Status::Ok();
  txn_.reset();                  // a clean read-only batch is simply ended
  if (!s.ok()) tables_.clear();  // handles opened in a failed transaction are void
  dirty_ = opened_ = false;
  return s;
}

void LmdbKvStore::Rollback() {
  if (txn_ && opened_) tables_.clear();  // handles opened in this batch are gone
  txn_.reset();
  dirty_ = opened_ = false;
}

}  // namespace meshchat::store
