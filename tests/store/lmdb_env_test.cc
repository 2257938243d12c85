#include <catch2/catch.hpp>

#include "store/lmdb_env.h"
#include "tests/temp_dir.h"

using namespace meshchat;
using namespace meshchat::store;

TEST_CASE("put, get, delete and scan on a real LMDB file", "[store]") {
  test::TempDir dir;
  auto env = LmdbEnv::Open(dir.path(), {});
  REQUIRE(env.ok());
  auto t = (*env)->OpenTable("inbox");
  REQUIRE(t.ok());
  {
    auto w = (*env)->BeginWrite();
    REQUIRE(w.ok());
    for (int i = 0; i < 10; ++i)
      REQUIRE(w->Put(*t, "k" + std::to_string(i), "v" + std::to_string(i)).ok());
    REQUIRE(w->Del(*t, "k3").ok());
    REQUIRE(w->Del(*t, "missing").ok());
    REQUIRE(w->Commit().ok());
  }
  auto r = (*env)->BeginRead();
  REQUIRE(r.ok());
  auto v = r->Get(*t, "k5");
  REQUIRE(v.ok());
  CHECK(*v == "v5");
  CHECK(r->Get(*t, "k3").status().code() == Code::kNotFound);
  std::vector<std::string> keys;
  REQUIRE(r->Scan(*t, "k6", [&](std::string_view k, std::string_view) {
             keys.emplace_back(k);
             return keys.size() < 3;
           }).ok());
  CHECK(keys == std::vector<std::string>{"k6", "k7", "k8"});
}

TEST_CASE("an aborted transaction leaves nothing behind", "[store]") {
  test::TempDir dir;
  auto env = LmdbEnv::Open(dir.path(), {});
  REQUIRE(env.ok());
  auto t = (*env)->OpenTable("t");
  REQUIRE(t.ok());
  {
    auto w = (*env)->BeginWrite();
    REQUIRE(w->Put(*t, "a", "1").ok());
    // destroyed without Commit: aborted
  }
  auto r = (*env)->BeginRead();
  CHECK(r->Get(*t, "a").status().code() == Code::kNotFound);
}

TEST_CASE("data survives close and reopen", "[store]") {
  test::TempDir dir;
  {
    auto env = LmdbEnv::Open(dir.path(), {});
    REQUIRE(env.ok());
    auto t = (*env)->OpenTable("t");
    auto w = (*env)->BeginWrite();
    REQUIRE(w->Put(*t, "durable", "yes").ok());
    REQUIRE(w->Commit().ok());
  }
  auto env = LmdbEnv::Open(dir.path(), {});
  REQUIRE(env.ok());
  auto t = (*env)->OpenTable("t");
  REQUIRE(t.ok());
  auto r = (*env)->BeginRead();
  auto v = r->Get(*t, "durable");
  REQUIRE(v.ok());
  CHECK(*v == "yes");
}

TEST_CASE("a full map is an error, not a crash, and the store stays usable", "[store]") {
  test::TempDir dir;
  LmdbOptions opts;
  opts.map_size = 256 * 1024;  // tiny
  auto env = LmdbEnv::Open(dir.path(), opts);
  REQUIRE(env.ok());
  auto t = (*env)->OpenTable("t");
  REQUIRE(t.ok());
  Status last;
  const std::string value(4000, 'x');
  for (int i = 0; i < 1000 && last.ok(); ++i) {
    auto w = (*env)->BeginWrite();
    REQUIRE(w.ok());
    last = w->Put(*t, "key" + std::to_string(i), value);
    if (last.ok()) last = w->Commit();
  }
  CHECK(last.code() == Code::kFull);
  // Earlier commits are intact and reads still work.
  auto r = (*env)->BeginRead();
  CHECK(r->Get(*t, "key0").ok());
}

TEST_CASE("opening a missing directory fails with an error", "[store]") {
  auto env = LmdbEnv::Open("/nonexistent/meshchat/dir", {});
  REQUIRE_FALSE(env.ok());
  CHECK(env.status().code() != Code::kOk);
  CHECK(env.status().message().find("/nonexistent/meshchat/dir") != std::string::npos);
}

TEST_CASE("oversize keys are refused", "[store]") {
  test::TempDir dir;
  auto env = LmdbEnv::Open(dir.path(), {});
  auto t = (*env)->OpenTable("t");
  auto w = (*env)->BeginWrite();
  CHECK(w->Put(*t, std::string(1000, 'k'), "v").code() == Code::kTooLarge);
}
