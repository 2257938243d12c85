// Who leads a replicated shard, decided through a real etcd (nodes/shard/shard_election.h):
// the head first, an in-sync replica when the primary's lease expires, never a member the
// in-sync set does not name, and a primary cut off from etcd stops calling itself one.
#include "nodes/shard/shard_election.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "tests/etcd_server.h"
#include "tests/temp_dir.h"

using namespace meshchat;
using namespace meshchat::nodes;

namespace {

int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

ElectionConfig Member(const std::string& self, bool head) {
  ElectionConfig c;
  c.prefix = "test/";
  c.shard = "s1";
  c.self = self;
  c.head = head;
  return c;
}

// Steps `e` (and keeps `others` alive) until `done(view)` or `ms` pass.
template <typename Done>
ElectionView StepUntil(ShardElection& e, store::EtcdClient& etcd, int ms, Done done,
                       std::vector<ShardElection*> others = {}) {
  const int64_t end = NowMs() + ms;
  ElectionView v;
  while (NowMs() < end) {
    v = e.Step(etcd, NowMs());
    for (auto* o : others) (void)o->Step(etcd, NowMs());
    if (done(v)) return v;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return v;
}

}  // namespace

TEST_CASE("shard election: head first, an in-sync replica after the lease expires, no one else",
          "[nodes][etcd]") {
  test::TempDir dir;
  test::EtcdServer server(dir.path());
  REQUIRE(server.ready());
  auto etcd = store::EtcdClient::Make(server.endpoint(), 1000);
  REQUIRE(etcd.ok());
  auto& c = **etcd;
  ShardElection head(Member("s1", true)), replica(Member("s1-r1", false)),
      other(Member("s1-r2", false));

  // Nobody has led the shard: only the head may take it; the replica waits.
  auto r = replica.Step(c, NowMs());
  CHECK(r.reachable);
  CHECK(r.primary.empty());
  auto h = head.Step(c, NowMs());
  REQUIRE(h.self_primary);
  const int64_t term1 = h.term;
  CHECK(h.in_sync == std::vector<std::string>{"s1"});
  r = replica.Step(c, NowMs());
  CHECK(r.primary == "s1");
  CHECK(r.term == term1);
  CHECK_FALSE(r.self_primary);
  REQUIRE(*head.SetInSync(c, {"s1", "s1-r1"}));  // the replica caught up

  // The head dies (stops renewing): within the TTL the replica, named in sync, takes over.
  const int64_t died = NowMs();
  r = StepUntil(replica, c, 6000, [](const ElectionView& v) { return v.self_primary; }, {&other});
  REQUIRE(r.self_primary);
  const int64_t took_ms = NowMs() - died;
  CHECK(took_ms < 3500);  // lease TTL 2 s, plus one round
  CHECK(r.term > term1);
  CHECK(r.in_sync == std::vector<std::string>{"s1-r1"});  // the dead primary is out of it
  auto o = other.Step(c, NowMs());
  CHECK(o.primary == "s1-r1");
  CHECK_FALSE(o.self_primary);  // never named in sync: never took it

  // The old head comes back: its lease is gone, it is not primary, it cannot write.
  h = StepUntil(head, c, 2000, [](const ElectionView& v) { return !v.primary.empty(); });
  CHECK(h.primary == "s1-r1");
  CHECK_FALSE(h.self_primary);
  CHECK_FALSE(*head.SetInSync(c, {"s1"}));

  // The primary resigns: the next one must still be named in sync (only s1-r1 is).
  replica.Resign(c);
  CHECK_FALSE(other.Step(c, NowMs()).self_primary);
  CHECK_FALSE(head.Step(c, NowMs()).self_primary);
  r = StepUntil(replica, c, 2000, [](const ElectionView& v) { return v.self_primary; });
  CHECK(r.self_primary);
  CHECK(r.term > term1);
}

TEST_CASE("shard election: a primary that cannot reach etcd stops being one by itself",
          "[nodes][etcd]") {
  test::TempDir dir;
  test::EtcdServer server(dir.path());
  REQUIRE(server.ready());
  auto etcd = store::EtcdClient::Make(server.endpoint(), 1000);
  auto cut = store::EtcdClient::Make("http://127.0.0.1:1", 200);  // nothing listens there
  REQUIRE(etcd.ok());
  REQUIRE(cut.ok());
  ElectionConfig cfg = Member("s1", true);
  ShardElection head(cfg);
  const int64_t t0 = NowMs();
  REQUIRE(head.Step(**etcd, t0).self_primary);
  // Cut off: no renewal gets through. Before the lease can expire at etcd (TTL 2 s from the
  // last renewal), less the margin, it no longer says it is primary.
  auto v = head.Step(**cut, t0 + 600);
  CHECK_FALSE(v.reachable);
  CHECK(v.self_primary);  // one failed round: its lease is still safe
  v = head.Step(**cut, t0 + cfg.ttl_s * 1000 - cfg.margin_ms + 1);
  CHECK_FALSE(v.self_primary);
  CHECK(v.primary.empty());
  CHECK_FALSE(*head.SetInSync(**etcd, {"s1"}));  // it holds nothing it may write with
}
