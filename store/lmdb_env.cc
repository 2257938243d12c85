#include "store/lmdb_env.h"

namespace meshchat::store {
namespace {
MDB_val Val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}
std::string_view View(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}
}  // namespace

Status LmdbStatus(int rc, std::string_view what) {
  if (rc == MDB_SUCCESS) return Status::Ok();
  std::string msg = std::string(what) + ": " + mdb_strerror(rc);
  switch (rc) {
    case MDB_NOTFOUND: return {Code::kNotFound, msg};
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
    case MDB_DBS_FULL:
    case MDB_READERS_FULL: return {Code::kFull, msg};
    case MDB_BAD_VALSIZE: return {Code::kTooLarge, msg};
    case EINVAL: return {Code::kInvalid, msg};
    default: return {Code::kIo, msg};
  }
}

Txn::~Txn() {
  if (txn_) mdb_txn_abort(txn_);
}

Result<std::string_view> Txn::Get(MDB_dbi table, std::string_view key) const {
  MDB_val k = Val(key), v{};
  int rc = mdb_get(txn_, table, &k, &v);
  if (rc != MDB_SUCCESS) return LmdbStatus(rc, "get");
  return View(v);
}

Status Txn::Scan(MDB_dbi table, std::string_view from,
                 const std::function<bool(std::string_view, std::string_view)>& fn) const {
  MDB_cursor* cur = nullptr;
  if (int rc = mdb_cursor_open(txn_, table, &cur); rc != MDB_SUCCESS)
    return LmdbStatus(rc, "cursor open");
  MDB_val k = Val(from), v{};
  int rc = from.empty() ? mdb_cursor_get(cur, &k, &v, MDB_FIRST)
                        : mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  while (rc == MDB_SUCCESS) {
    if (!fn(View(k), View(v))) break;
    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) return LmdbStatus(rc, "cursor");
  return Status::Ok();
}

Status WriteTxn::Put(MDB_dbi table, std::string_view key, std::string_view value) {
  MDB_val k = Val(key), v = Val(value);
  return LmdbStatus(mdb_put(txn_, table, &k, &v, 0), "put");
}

Status WriteTxn::Del(MDB_dbi table, std::string_view key) {
  MDB_val k = Val(key);
  int rc = mdb_del(txn_, table, &k, nullptr);
  return rc == MDB_NOTFOUND ? Status::Ok() : LmdbStatus(rc, "del");
}

Status WriteTxn::Commit() {
  MDB_txn* t = txn_;
  txn_ = nullptr;  // mdb_txn_commit frees the handle even when it fails
  return LmdbStatus(mdb_txn_commit(t), "commit");
}

Result<std::unique_ptr<LmdbEnv>> LmdbEnv::Open(const std::string& dir, const LmdbOptions& opts) {
  MDB_env* env = nullptr;
  if (int rc = mdb_env_create(&env); rc != MDB_SUCCESS) return LmdbStatus(rc, "env create");
  auto fail = [&](int rc, const char* what) -> Status {
    mdb_env_close(env);
    return LmdbStatus(rc, std::string(what) + " " + dir);
  };
  if (int rc = mdb_env_set_mapsize(env, opts.map_size); rc) return fail(rc, "set mapsize");
  if (int rc = mdb_env_set_maxdbs(env, opts.max_tables); rc) return fail(rc, "set maxdbs");
  // NOTLS: read transactions are not tied to OS threads' TLS slots (our reactors own theirs).
  unsigned flags =
      MDB_NOTLS | (opts.durable ? 0u : MDB_NOSYNC) | (opts.writemap ? MDB_WRITEMAP : 0u);
  if (int rc = mdb_env_open(env, dir.c_str(), flags, 0640); rc) return fail(rc, "open");
  return std::unique_ptr<LmdbEnv>(new LmdbEnv(env, opts));
}

LmdbEnv::~LmdbEnv() {
  mdb_env_close(env_);
}

Result<MDB_dbi> LmdbEnv::OpenTable(const std::string& name) {
  auto txn = BeginWrite();
  if (!txn.ok()) return txn.status();
  MDB_dbi dbi = 0;
  if (int rc = mdb_dbi_open(txn->raw(), name.c_str(), MDB_CREATE, &dbi); rc)
    return LmdbStatus(rc, "open table " + name);
  if (Status s = txn->Commit(); !s.ok()) return s;
  return dbi;
}

Result<WriteTxn> LmdbEnv::BeginWrite() {
  MDB_txn* t = nullptr;
  if (int rc = mdb_txn_begin(env_, nullptr, 0, &t); rc) return LmdbStatus(rc, "begin write");
  return WriteTxn(t);
}

Result<ReadTxn> LmdbEnv::BeginRead() {
  MDB_txn* t = nullptr;
  if (int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &t); rc)
    return LmdbStatus(rc, "begin read");
  return ReadTxn(t);
}

Status LmdbEnv::Sync() {
  return LmdbStatus(mdb_env_sync(env_, 1), "sync");
}

Result<size_t> LmdbEnv::UsedBytes() {
  MDB_envinfo info{};
  MDB_stat st{};
  if (int rc = mdb_env_info(env_, &info); rc) return LmdbStatus(rc, "env info");
  if (int rc = mdb_env_stat(env_, &st); rc) return LmdbStatus(rc, "env stat");
  return static_cast<size_t>(info.me_last_pgno + 1) * st.ms_psize;
}

}  // namespace meshchat::store
