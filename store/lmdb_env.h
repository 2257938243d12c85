// A thin, typed wrapper over an LMDB environment.
//
// Contracts:
// - Every LMDB failure becomes a Status (MDB_MAP_FULL -> Code::kFull, MDB_NOTFOUND ->
//   Code::kNotFound); nothing here throws or aborts on a data-path error.
// - Commits are durable by default (fsync on commit). Callers batch many writes per WriteTxn
//   (group commit) to make durability cheap.
// - A string_view returned by Get() points into the LMDB map and is valid only until the
//   transaction it came from ends.
// - One WriteTxn at a time per environment (LMDB serialises writers); transactions belong to
//   the thread that began them.
#pragma once

#include <lmdb.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace meshchat::store {

struct LmdbOptions {
  size_t map_size = size_t{1} << 30;  // bytes; the file grows sparsely up to this
  unsigned max_tables = 32;
  bool durable = true;    // false = MDB_NOSYNC: the caller syncs (see BackgroundSyncer)
  bool writemap = false;  // MDB_WRITEMAP: commits modify the map in place, no write() calls
};

Status LmdbStatus(int rc, std::string_view what);

class LmdbEnv;

class Txn {
 public:
  Txn(Txn&& o) noexcept : txn_(o.txn_) { o.txn_ = nullptr; }
  Txn& operator=(Txn&&) = delete;
  ~Txn();

  // Value for `key`, or Code::kNotFound.
  Result<std::string_view> Get(MDB_dbi table, std::string_view key) const;
  // Visits keys >= `from` in order until `fn` returns false.
  Status Scan(MDB_dbi table, std::string_view from,
              const std::function<bool(std::string_view key, std::string_view value)>& fn) const;
  MDB_txn* raw() const { return txn_; }

 protected:
  explicit Txn(MDB_txn* t) : txn_(t) {}
  MDB_txn* txn_;
  friend class LmdbEnv;
};

class ReadTxn : public Txn {
  using Txn::Txn;
  friend class LmdbEnv;
};

class WriteTxn : public Txn {
 public:
  Status Put(MDB_dbi table, std::string_view key, std::string_view value);
  // Deleting a missing key is not an error.
  Status Del(MDB_dbi table, std::string_view key);
  // Commits (durably unless the env was opened with durable = false). After Commit, whatever
  // its result, the transaction is finished.
  Status Commit();

 private:
  using Txn::Txn;
  friend class LmdbEnv;
};

class LmdbEnv {
 public:
  // Opens (creating if needed) an environment in directory `dir`, which must exist.
  static Result<std::unique_ptr<LmdbEnv>> Open(const std::string& dir, const LmdbOptions& opts);
  ~LmdbEnv();
  LmdbEnv(const LmdbEnv&) = delete;
  LmdbEnv& operator=(const LmdbEnv&) = delete;

  // Opens or creates a named table. Call once per table at start-up.
  Result<MDB_dbi> OpenTable(const std::string& name);
  Result<WriteTxn> BeginWrite();
  Result<ReadTxn> BeginRead();
  // Forces everything committed so far to disk (fdatasync). Safe from another thread while
  // transactions run; used with durable = false for pipelined group commit.
  Status Sync();
  // Bytes of the map actually used (last page in use * page size).
  Result<size_t> UsedBytes();
  const LmdbOptions& options() const { return opts_; }

 private:
  LmdbEnv(MDB_env* env, LmdbOptions opts) : env_(env), opts_(opts) {}
  MDB_env* env_;
  LmdbOptions opts_;
};

}  // namespace meshchat::store
