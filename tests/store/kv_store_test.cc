// One suite, both KvStore implementations: the LMDB one on a real file, the in-memory fake.
#include <catch2/catch.hpp>

#include "store/lmdb_kv_store.h"
#include "store/mem_kv_store.h"
#include "store/recording_kv_store.h"
#include "tests/temp_dir.h"

using namespace meshchat;
using namespace meshchat::store;

namespace {

const std::string kU("u\0", 2);

void Suite(KvStore& kv) {
  SECTION("batches commit atomically and reads see the batch's own writes") {
    REQUIRE(kv.Put("t", "a", "1").ok());
    REQUIRE(kv.Put("t", "b", "2").ok());
    CHECK(*kv.Get("t", "a") == "1");
    REQUIRE(kv.Commit().ok());
    REQUIRE(kv.Del("t", "a").ok());  // a cached table in a new batch (regression)
    REQUIRE(kv.Put("t", "c", "3").ok());
    REQUIRE(kv.Commit().ok());
    CHECK(kv.Get("t", "a").status().code() == Code::kNotFound);
    CHECK(*kv.Get("t", "c") == "3");
  }
  SECTION("rollback discards the batch") {
    REQUIRE(kv.Put("t", "x", "1").ok());
    REQUIRE(kv.Commit().ok());
    REQUIRE(kv.Put("t", "x", "2").ok());
    REQUIRE(kv.Put("t", "y", "2").ok());
    kv.Rollback();
    CHECK(*kv.Get("t", "x") == "1");
    CHECK(kv.Get("t", "y").status().code() == Code::kNotFound);
    CHECK_FALSE(kv.dirty());
  }
  SECTION("scan is ordered and big-endian keys sort numerically") {
    for (uint64_t n : {300u, 2u, 70000u, 1u})
      REQUIRE(kv.Put("q", kU + BigEndian64(n), std::to_string(n)).ok());
    REQUIRE(kv.Commit().ok());
    std::vector<std::string> got;
    REQUIRE(kv.Scan("q", kU + BigEndian64(2), [&](std::string_view, std::string_view v) {
                got.emplace_back(v);
                return true;
              }).ok());
    CHECK(got == std::vector<std::string>{"2", "300", "70000"});
    auto last = kv.LastKeyWithPrefix("q", kU);
    REQUIRE(last.ok());
    CHECK(ReadBigEndian64(last->substr(2)) == 70000);
    CHECK(kv.LastKeyWithPrefix("q", "v").status().code() == Code::kNotFound);
  }
  SECTION("every row of every table, in order, resumable after any row, and cleared") {
    REQUIRE(kv.Put("b", "2", "b2").ok());
    REQUIRE(kv.Put("a", "1", "a1").ok());
    REQUIRE(kv.Put("b", "1", "b1").ok());
    REQUIRE(kv.Put("ab", "", "ab-empty").ok());
    REQUIRE(kv.Commit().ok());
    auto rows = [&](std::string_view t, std::string_view k, size_t max) {
      std::vector<std::string> got;
      REQUIRE(kv.ScanRows(t, k, [&](std::string_view tt, std::string_view kk, std::string_view v) {
                  got.push_back(std::string(tt) + "/" + std::string(kk) + "=" + std::string(v));
                  return got.size() < max;
                }).ok());
      return got;
    };
    CHECK(rows("", "", 10) ==
          std::vector<std::string>{"a/1=a1", "ab/=ab-empty", "b/1=b1", "b/2=b2"});
    CHECK(rows("", "", 2) == std::vector<std::string>{"a/1=a1", "ab/=ab-empty"});
    CHECK(rows("ab", "", 10) == std::vector<std::string>{"b/1=b1", "b/2=b2"});
    CHECK(rows("a", "1", 1) == std::vector<std::string>{"ab/=ab-empty"});
    CHECK(rows("b", "2", 10).empty());
    REQUIRE(kv.Clear().ok());
    REQUIRE(kv.Put("c", "1", "c1").ok());  // the batch that clears can write again
    CHECK(rows("", "", 10) == std::vector<std::string>{"c/1=c1"});
    kv.Rollback();
    CHECK(rows("", "", 10).size() == 4);  // a clear is part of its batch
    REQUIRE(kv.Clear().ok());
    REQUIRE(kv.Commit().ok());
    CHECK(rows("", "", 10).empty());
    CHECK(kv.Get("a", "1").status().code() == Code::kNotFound);
  }
}

}  // namespace

TEST_CASE("KvStore contract: LMDB", "[store]") {
  test::TempDir dir;
  auto kv = LmdbKvStore::Open(dir.path(), {});
  REQUIRE(kv.ok());
  Suite(**kv);
}

TEST_CASE("KvStore contract: in-memory", "[store]") {
  MemKvStore kv;
  Suite(kv);
}

TEST_CASE("a recording store keeps the writes of each committed batch, in order", "[store]") {
  MemKvStore inner;
  RecordingKvStore kv(inner);
  REQUIRE(kv.Put("t", "a", "1").ok());
  REQUIRE(kv.Commit().ok());
  CHECK(kv.TakeCommitted().empty());  // off until switched on
  kv.set_recording(true);
  REQUIRE(kv.Put("t", "b", "2").ok());
  REQUIRE(kv.Del("t", "a").ok());
  CHECK(kv.pending_bytes() == 5);
  REQUIRE(kv.Commit().ok());
  auto ops = kv.TakeCommitted();
  REQUIRE(ops.size() == 2);
  CHECK(ops[0] == WriteOp{WriteOp::Kind::kPut, "t", "b", "2"});
  CHECK(ops[1] == WriteOp{WriteOp::Kind::kDel, "t", "a", ""});
  CHECK(kv.TakeCommitted().empty());  // taken
  SECTION("a rolled-back or failed batch leaves nothing to send") {
    REQUIRE(kv.Put("t", "c", "3").ok());
    kv.Rollback();
    REQUIRE(kv.Put("t", "d", "4").ok());
    inner.FailNextCommit();
    CHECK_FALSE(kv.Commit().ok());
    CHECK(kv.TakeCommitted().empty());
    CHECK(kv.pending_bytes() == 0);
  }
  SECTION("the writes replayed on another store give the same rows") {
    REQUIRE(kv.Put("u", "x", "y").ok());
    REQUIRE(kv.Clear().ok());
    REQUIRE(kv.Put("u", "z", "w").ok());
    REQUIRE(kv.Commit().ok());
    ops = kv.TakeCommitted();
    REQUIRE(ops.size() == 2);  // the clear drops what came before it in the batch
    MemKvStore replica;
    REQUIRE(replica.Put("old", "k", "v").ok());
    for (const auto& op : ops) REQUIRE(ApplyWrite(replica, op).ok());
    REQUIRE(replica.Commit().ok());
    CHECK(replica.Get("old", "k").status().code() == Code::kNotFound);
    CHECK(*replica.Get("u", "z") == "w");
    CHECK(replica.Get("t", "b").status().code() == Code::kNotFound);  // cleared
  }
}

TEST_CASE("LMDB store survives reopen and refuses writes past its map size", "[store]") {
  test::TempDir dir;
  {
    auto kv = LmdbKvStore::Open(dir.path(), {});
    REQUIRE((*kv)->Put("t", "k", "v").ok());
    REQUIRE((*kv)->Commit().ok());
  }
  LmdbOptions small;
  small.map_size = 256 * 1024;
  auto kv = LmdbKvStore::Open(dir.path(), small);
  REQUIRE(kv.ok());
  CHECK(*(*kv)->Get("t", "k") == "v");
  Status s;
  for (int i = 0; i < 200 && s.ok(); ++i) {
    s = (*kv)->Put("t", "big" + std::to_string(i), std::string(8000, 'x'));
    if (s.ok()) s = (*kv)->Commit();
  }
  CHECK(s.code() == Code::kFull);
  (*kv)->Rollback();
  CHECK(*(*kv)->Get("t", "k") == "v");  // still usable
}

TEST_CASE("deleted entries free space for reuse", "[store]") {
  test::TempDir dir;
  auto kv = LmdbKvStore::Open(dir.path(), {});
  REQUIRE(kv.ok());
  auto& s = **kv;
  auto fill_and_clear = [&] {
    for (int batch = 0; batch < 20; ++batch) {
      for (int i = 0; i < 100; ++i)
        REQUIRE(s.Put("t", std::to_string(batch * 100 + i), std::string(500, 'x')).ok());
      REQUIRE(s.Commit().ok());
    }
    for (int k = 0; k < 2000; ++k) REQUIRE(s.Del("t", std::to_string(k)).ok());
    REQUIRE(s.Commit().ok());
  };
  fill_and_clear();
  const size_t after_first = *s.UsedBytes();
  for (int round = 0; round < 5; ++round) fill_and_clear();
  CHECK(*s.UsedBytes() <= after_first + 64 * 1024);  // pages are reused, not appended
}
