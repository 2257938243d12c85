// One suite for every blob store: the embedded local directory, the in-memory fake, and real
// Ceph RADOS (scripts/ceph-dev up; MESHCHAT_CEPH_CONF names its conf; scripts/test sets it).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <functional>
#include <memory>
#include <random>

#include "store/localdir_blob_store.h"
#include "store/mem_blob_store.h"
#include "store/rados_blob_store.h"
#include "tests/random_bytes.h"
#include "tests/temp_dir.h"

using namespace meshchat;
using meshchat::test::RandomBytes;
using namespace meshchat::store;

namespace {

std::string UniqueId() {
  static std::mt19937_64 rng(std::random_device{}());
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return buf;
}

std::string ReadAll(BlobStore& s, const std::string& id, uint64_t off, size_t n) {
  std::string out(n, '\0');
  auto got = s.Read(id, off, out);
  REQUIRE(got.ok());
  out.resize(*got);
  return out;
}

// Stripes of 64 KiB on RADOS, so the suite crosses object boundaries with small data.
RadosOptions TestRados() {
  RadosOptions o;
  const char* conf = std::getenv("MESHCHAT_CEPH_CONF");
  o.conf_file = conf ? conf : "";
  o.client = "meshchat";
  const char* pool = std::getenv("MESHCHAT_CEPH_POOL");
  o.pool = pool ? pool : "meshchat";
  o.stripe_bytes = 64 << 10;
  o.op_timeout_s = 5;
  return o;
}

void RunSuite(BlobStore& s) {
  SECTION("write in pieces, read back by range") {
    const std::string id = UniqueId(), data = RandomBytes(300'000, 7);
    for (size_t off = 0; off < data.size(); off += 70'000)
      REQUIRE(s.Write(id, off, std::string_view(data).substr(off, 70'000)).ok());
    CHECK(ReadAll(s, id, 0, data.size() + 10) == data);            // short read at the end
    CHECK(ReadAll(s, id, 65'530, 20) == data.substr(65'530, 20));  // across a stripe edge
    CHECK(ReadAll(s, id, 299'999, 5) == data.substr(299'999));
    CHECK(ReadAll(s, id, 300'000, 5).empty());  // past the end
    CHECK(ReadAll(s, id, 500'000, 5).empty());
    REQUIRE(s.Remove(id, data.size()).ok());
    std::string buf(10, '\0');
    CHECK(s.Read(id, 0, buf).status().code() == Code::kNotFound);
  }
  SECTION("rewriting a range replaces it (a resumed upload re-sends its last chunk)") {
    const std::string id = UniqueId();
    REQUIRE(s.Write(id, 0, std::string(1000, 'a')).ok());
    REQUIRE(s.Write(id, 500, std::string(500, 'b')).ok());
    CHECK(ReadAll(s, id, 0, 2000) == std::string(500, 'a') + std::string(500, 'b'));
    REQUIRE(s.Remove(id, 1000).ok());
  }
  SECTION("missing blobs and bad ids") {
    std::string buf(10, '\0');
    CHECK(s.Read(UniqueId(), 0, buf).status().code() == Code::kNotFound);
    CHECK(s.Remove(UniqueId(), 100).ok());  // idempotent
    if (std::string(s.Kind()) != "mem") {
      CHECK(s.Write("../etc/passwd", 0, "x").code() == Code::kInvalid);
      CHECK(s.Write("", 0, "x").code() == Code::kInvalid);
      CHECK(s.Read("ABC", 0, buf).status().code() == Code::kInvalid);
    }
  }
  SECTION("an empty blob exists once written") {
    const std::string id = UniqueId();
    REQUIRE(s.Write(id, 0, "").ok());
    REQUIRE(s.Remove(id, 0).ok());
  }
}

}  // namespace

TEST_CASE("blob store: local directory", "[store][blob]") {
  test::TempDir dir;
  LocalDirBlobStore s(dir.path() + "/media");
  RunSuite(s);
}

TEST_CASE("blob store: in-memory fake", "[store][blob]") {
  MemBlobStore s;
  RunSuite(s);
}

TEST_CASE("blob store: local directory survives reopening", "[store][blob]") {
  test::TempDir dir;
  const std::string id = UniqueId();
  { REQUIRE(LocalDirBlobStore(dir.path()).Write(id, 0, "durable").ok()); }
  LocalDirBlobStore again(dir.path());
  CHECK(ReadAll(again, id, 0, 100) == "durable");
}

TEST_CASE("blob store: Ceph RADOS", "[store][blob][rados]") {
  if (!std::getenv("MESHCHAT_CEPH_CONF"))
    FAIL(
        "MESHCHAT_CEPH_CONF is not set: run `scripts/ceph-dev up` and export "
        "MESHCHAT_CEPH_CONF=var/ceph/ceph.conf (scripts/test does both)");
  RadosBlobStore s(TestRados());
  REQUIRE(s.Connect().ok());
  RunSuite(s);
  SECTION("objects are named from the id and stripe, nothing else") {
    CHECK(RadosBlobStore::ObjectName("00ff", 0) == "00ff.0000");
    CHECK(RadosBlobStore::ObjectName("00ff", 0x1a) == "00ff.001a");
  }
}

TEST_CASE("blob store: RADOS down gives a bounded, retryable error", "[store][blob][rados]") {
  test::TempDir dir;
  // A conf pointing at a port nobody listens on: what a node sees when the mons are down.
  const std::string conf = dir.path() + "/ceph.conf";
  FILE* f = std::fopen(conf.c_str(), "w");
  REQUIRE(f);
  std::fputs("[global]\nmon_host = 127.0.0.1:1\nauth_client_required = none\n", f);
  std::fclose(f);
  RadosOptions o = TestRados();
  o.conf_file = conf;
  o.op_timeout_s = 1;
  o.reconnect_interval_ms = 60'000;
  RadosBlobStore s(o);
  const auto t0 = std::chrono::steady_clock::now();
  Status w = s.Write(UniqueId(), 0, "x");
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(w.code() == Code::kUnavailable);
  CHECK(w.message().find("retry") != std::string::npos);
  CHECK(took < std::chrono::seconds(30));  // bounded (the mount timeout), not a hang
  // Within the reconnect interval the store answers at once instead of blocking again.
  const auto t1 = std::chrono::steady_clock::now();
  CHECK(s.Write(UniqueId(), 0, "x").code() == Code::kUnavailable);
  CHECK(std::chrono::steady_clock::now() - t1 < std::chrono::seconds(1));
}
