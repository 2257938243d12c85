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

Result<std::vector<std::string>> DueKeys(KvStore& kv, std::string_view table, uint64_t now,
                                         size_t max) {
  std::vector<std::string> due;
  Status s = kv.Scan(table, "", [&](std::string_view k, std::string_view) {
    if (due.size() >= max || k.size() <= 8 || ReadBigEndian64(k) > now) return false;
    due.emplace_back(k);
    return true;
  });
  if (!s.ok()) return s;
  return due;
}

Status PutMarkOnce(KvStore& kv, std::string_view table, std::string_view key) {
  auto have = kv.Get(table, key);
  if (have.ok()) return Status::Ok();
  if (have.status().code() != Code::kNotFound) return have.status();
  return kv.Put(table, key, "");
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

// All logical tables live in LMDB's main database, each under the prefix "name\0": one B-tree
// instead of one per table means fewer pages copied and written per commit (LMDB copies every
// page it touches, and each named database adds its own root and catalog update).
std::string LmdbKvStore::Prefixed(std::string_view table, std::string_view key) {
  std::string k;
  k.reserve(table.size() + 1 + key.size());
  k.append(table);
  k.push_back('\0');
  k.append(key);
  return k;
}

Result<MDB_dbi> LmdbKvStore::Main() {
  if (Status s = EnsureTxn(); !s.ok()) return s;
  if (main_) return *main_;
  MDB_dbi dbi = 0;
  if (int rc = mdb_dbi_open(txn_->raw(), nullptr, 0, &dbi); rc != MDB_SUCCESS)
    return LmdbStatus(rc, "open main database");
  main_ = dbi;  // the main database's handle is always valid
  return dbi;
}

Result<std::string> LmdbKvStore::Get(std::string_view table, std::string_view key) {
  auto t = Main();
  if (!t.ok()) return t.status();
  auto v = txn_->Get(*t, Prefixed(table, key));
  if (!v.ok()) return v.status();
  return std::string(*v);
}

Status LmdbKvStore::Put(std::string_view table, std::string_view key, std::string_view value) {
  auto t = Main();
  if (!t.ok()) return t.status();
  dirty_ = true;
  return txn_->Put(*t, Prefixed(table, key), value);
}

Status LmdbKvStore::Del(std::string_view table, std::string_view key) {
  auto t = Main();
  if (!t.ok()) return t.status();
  dirty_ = true;
  return txn_->Del(*t, Prefixed(table, key));
}

Status LmdbKvStore::Scan(std::string_view table, std::string_view from, const ScanFn& fn) {
  auto t = Main();
  if (!t.ok()) return t.status();
  const std::string prefix = Prefixed(table, "");
  return txn_->Scan(*t, Prefixed(table, from), [&](std::string_view k, std::string_view v) {
    if (k.substr(0, prefix.size()) != prefix) return false;  // past the table
    return fn(k.substr(prefix.size()), v);
  });
}

Result<std::string> LmdbKvStore::LastKeyWithPrefix(std::string_view table,
                                                   std::string_view prefix) {
  auto t = Main();
  if (!t.ok()) return t.status();
  const std::string full = Prefixed(table, prefix);
  MDB_cursor* cur = nullptr;
  if (int rc = mdb_cursor_open(txn_->raw(), *t, &cur); rc) return LmdbStatus(rc, "cursor");
  // Position after the prefix range (prefix + 0xFF...), then step back one.
  std::string upper = full + std::string(9, '\xff');
  MDB_val k{upper.size(), upper.data()}, v{};
  int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  rc = rc == MDB_SUCCESS ? mdb_cursor_get(cur, &k, &v, MDB_PREV)
                         : mdb_cursor_get(cur, &k, &v, MDB_LAST);
  std::string found;
  if (rc == MDB_SUCCESS) found.assign(static_cast<const char*>(k.mv_data), k.mv_size);
  mdb_cursor_close(cur);
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) return LmdbStatus(rc, "cursor");
  if (rc == MDB_NOTFOUND || found.compare(0, full.size(), full) != 0)
    return Status(Code::kNotFound, "no key with prefix");
  return found.substr(table.size() + 1);
}

Status LmdbKvStore::ScanRows(std::string_view after_table, std::string_view after_key,
                             const RowFn& fn) {
  auto t = Main();
  if (!t.ok()) return t.status();
  const bool from_start = after_table.empty() && after_key.empty();
  const std::string after = from_start ? std::string() : Prefixed(after_table, after_key);
  return txn_->Scan(*t, after, [&](std::string_view k, std::string_view v) {
    if (!from_start && k == after) return true;  // strictly after
    const size_t sep = k.find('\0');
    if (sep == std::string_view::npos) return true;  // not a table row (none are written)
    return fn(k.substr(0, sep), k.substr(sep + 1), v);
  });
}

Status LmdbKvStore::Clear() {
  auto t = Main();
  if (!t.ok()) return t.status();
  dirty_ = true;
  if (int rc = mdb_drop(txn_->raw(), *t, 0); rc) return LmdbStatus(rc, "clear");
  return Status::Ok();
}

Status LmdbKvStore::Commit() {
  if (!txn_) return Status::Ok();
  Status s = dirty_ ? txn_->Commit() : Status::Ok();
  txn_.reset();  // a clean read-only batch is simply ended
  dirty_ = false;
  return s;
}

void LmdbKvStore::Rollback() {
  txn_.reset();
  dirty_ = false;
}

}  // namespace meshchat::store
