// Replicated shards (meshctl up --replicas 2): what a primary acknowledges is on its
// replica's disk too, a replica that stops answering holds acks back only for
// repl_timeout_ms, with repl_min_in_sync=2 nothing is acknowledged on one copy, and a primary
// whose disk is destroyed comes back from its replica's store with every acked message.
// Real processes (one per node), real LMDB files.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "router/hash_ring.h"
#include "store/lmdb_kv_store.h"
#include "tests/integration/test_mesh.h"

using namespace meshchat;
using namespace meshchat::test;
using Clock = std::chrono::steady_clock;

namespace {

long PidOf(const TestMesh& mesh, const std::string& node) {
  std::ifstream in(mesh.var() + "/run/" + node + ".pid");
  long pid = 0;
  in >> pid;
  REQUIRE(pid > 0);
  return pid;
}

// Every row of a stopped node's store but its replication position (a replica's copy of a
// primary that never wrote a batch has one the primary lacks).
std::map<std::string, std::string> Rows(const TestMesh& mesh, const std::string& node) {
  auto kv = store::LmdbKvStore::Open(mesh.var() + "/data/" + node + "/lmdb", {});
  REQUIRE(kv.ok());
  std::map<std::string, std::string> out;
  REQUIRE((*kv)
              ->ScanRows("", "",
                         [&](std::string_view t, std::string_view k, std::string_view v) {
                           if (t != "repl")
                             out[std::string(t) + '\0' + std::string(k)] = std::string(v);
                           return true;
                         })
              .ok());
  return out;
}

// Waits until `node`'s metrics page shows `series` >= `at_least` (pages are rendered once a
// second).
void WaitMetric(const TestMesh& mesh, const std::string& node, const std::string& series,
                double at_least) {
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  double v = 0;
  while (Clock::now() < deadline && (v = Metric(mesh.Scrape(node), series)) < at_least)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(v >= at_least);
}

// Waits until shard `head` reports its replica in sync with nothing outstanding, on two pages
// in a row (a page can be up to a second old).
void WaitInSync(const TestMesh& mesh, const std::string& head, int timeout_ms = 10'000) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string page;
  int good = 0;
  while (Clock::now() < deadline) {
    page = mesh.Scrape(head);
    const bool ok = Metric(page, "meshchat_repl_in_sync") == 1 &&
                    Metric(page, "meshchat_repl_lag_batches{replica=\"" + head + "-r1\"}") == 0;
    good = ok ? good + 1 : 0;
    if (good == 2) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(ok ? 1100 : 100));
  }
  INFO(page);
  FAIL("shard " << head << " did not get its replica in sync");
}

}  // namespace

TEST_CASE("replicated shards: what was acknowledged is on the replica's disk, row for row",
          "[integration][replication]") {
  TestMesh mesh(2, 2, "--replicas 2");
  CHECK(mesh.map().ReplicasOf("s1") == std::vector<std::string>{"s1-r1"});
  CHECK(mesh.map().IdsWithRole(router::Role::kSession) == std::vector<std::string>{"s1", "s2"});
  auto [a, b] = mesh.CrossShardUsers();
  {
    auto ca = mesh.Connect(a, 0);
    for (int i = 0; i < 100; ++i) REQUIRE(ca.Send(b, "m" + std::to_string(i)).ok());
    for (int i = 0; i < 100; ++i) Expect<codec::Sent>(ca);
  }
  for (const char* head : {"s1", "s2", "g1", "p1"}) WaitInSync(mesh, head);
  REQUIRE(mesh.Meshctl("down") == 0);
  for (const char* head : {"s1", "s2", "g1", "p1"}) {
    INFO(head);
    const auto primary = Rows(mesh, head);
    const auto replica = Rows(mesh, std::string(head) + "-r1");
    CHECK(primary.size() == replica.size());
    CHECK(primary == replica);
  }
  // The recipient's inbox holds the 100 messages, on both copies of its shard.
  CHECK(Rows(mesh, "s1").size() + Rows(mesh, "s2").size() > 200);
}

TEST_CASE("replicated shards: a frozen replica holds acks back for repl_timeout_ms, no longer",
          "[integration][replication]") {
  TestMesh mesh(1, 1, "--replicas 2 --opt repl_timeout_ms=1000");
  auto [a, b] = std::pair<std::string, std::string>{"ann", "bea"};  // one session shard
  auto ca = mesh.Connect(a, 0);
  REQUIRE(ca.Send(b, "warm").ok());
  Expect<codec::Sent>(ca);
  WaitInSync(mesh, "s1");
  const long replica = PidOf(mesh, "s1-r1");
  REQUIRE(kill(replica, SIGSTOP) == 0);
  const auto t0 = Clock::now();
  REQUIRE(ca.Send(b, "while the replica is frozen").ok());
  Expect<codec::Sent>(ca, 8000);
  const auto held = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  CHECK(held.count() >= 900);  // it waited for the replica's ack until the timeout
  WaitMetric(mesh, "s1", "meshchat_repl_dropped_total", 1);
  // Out of the in-sync set, the shard acknowledges on its own copy.
  const auto t1 = Clock::now();
  REQUIRE(ca.Send(b, "alone").ok());
  Expect<codec::Sent>(ca);
  CHECK(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t1).count() < 900);
  REQUIRE(kill(replica, SIGCONT) == 0);
  WaitInSync(mesh, "s1");  // it catches up from the primary's log and is back in
}

TEST_CASE("replicated shards: with repl_min_in_sync=2 nothing is acknowledged on one copy",
          "[integration][replication]") {
  TestMesh mesh(1, 1, "--replicas 2 --opt repl_min_in_sync=2 --opt repl_timeout_ms=500");
  auto ca = mesh.Connect("ann", 0);
  REQUIRE(ca.Send("bea", "both copies").ok());
  Expect<codec::Sent>(ca);
  const long replica = PidOf(mesh, "s1-r1");
  REQUIRE(kill(replica, SIGSTOP) == 0);
  REQUIRE(ca.Send("bea", "one copy only").ok());
  auto ev = ca.Next(2000);  // the shard holds the ack back: no copy but its own
  if (ev.ok()) CHECK_FALSE(std::holds_alternative<codec::Sent>(*ev));
  REQUIRE(kill(replica, SIGCONT) == 0);
  auto sent = Expect<codec::Sent>(ca, 10'000);  // the replica catches up: both copies again
  CHECK(sent.to == "bea");
}

TEST_CASE(
    "replicated shards: a primary killed with its disk comes back from its replica, "
    "nothing acked lost",
    "[integration][replication]") {
  TestMesh mesh(2, 2, "--replicas 2");
  auto [a, b] = mesh.CrossShardUsers();
  router::HashRing ring(mesh.map().IdsWithRole(router::Role::kSession));
  const std::string victim = ring.Owner(b);  // b's inbox lives there
  std::vector<uint64_t> seqs;
  {
    auto ca = mesh.Connect(a, 0);
    for (int i = 0; i < 80; ++i) REQUIRE(ca.Send(b, "m" + std::to_string(i)).ok());
    for (int i = 0; i < 80; ++i) {  // (the per-user send burst is 100)
      INFO("sent " << i);
      seqs.push_back(Expect<codec::Sent>(ca).seq);
    }
  }
  REQUIRE(mesh.Meshctl("kill " + victim) == 0);  // SIGKILL, and the disk goes with it
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::filesystem::remove_all(mesh.var() + "/data/" + victim);
  std::string out;
  CHECK(mesh.Meshctl("restore " + victim + " --from s9", &out) != 0);  // not its replica
  REQUIRE(mesh.Meshctl("restore " + victim + " --from " + victim + "-r1", &out) == 0);
  INFO(out);
  WaitInSync(mesh, victim);
  auto cb = mesh.Connect(b, 1);
  std::vector<uint64_t> got;
  while (got.size() < seqs.size()) {
    INFO("pushes so far: " << got.size() << "; restore said: " << out);
    auto push = Expect<codec::Push>(cb, 10'000);
    CHECK(push.body == "m" + std::to_string(got.size()));  // in order, none twice
    got.push_back(push.seq);
  }
  CHECK(got == seqs);
  auto more = cb.Next(500);  // and nothing after them
  if (more.ok()) CHECK_FALSE(std::holds_alternative<codec::Push>(*more));
}
