// One suite, both KvStore implementations: the LMDB one on a real file, the in-memory fake.
#include <catch2/catch.hpp>

#include "store/lmdb_kv_store.h"
#include "store/mem_kv_store.h"
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
