// Shard replication without sockets: a primary and a replica on in-memory stores, envelopes
// carried by hand (nodes/shard/replication.h).
#include "nodes/shard/replication.h"

#include <catch2/catch.hpp>

#include "store/mem_kv_store.h"

using namespace meshchat;
using namespace meshchat::nodes;
using codec::MeshType;

namespace {

std::map<std::string, std::string> Rows(store::KvStore& kv, bool with_repl = false) {
  std::map<std::string, std::string> out;
  REQUIRE(kv.ScanRows("", "", [&](std::string_view t, std::string_view k, std::string_view v) {
              if (with_repl || t != kReplTable)
                out[std::string(t) + "/" + std::string(k)] = std::string(v);
              return true;
            }).ok());
  return out;
}

struct Shard {
  explicit Shard(ReplicationConfig cfg = {})
      : primary(cfg, {"r1"}, pkv, clock), replica(rkv, clock, "p1") {
    REQUIRE(replica.Load().ok());
    pkv.set_recording(true);
  }
  // One primary batch: puts (value empty: delete), committed and sent.
  void Commit(const std::map<std::string, std::string>& rows) {
    for (const auto& [k, v] : rows)
      REQUIRE((v.empty() ? pkv.Del("t", k) : pkv.Put("t", k, v)).ok());
    const uint64_t seq = primary.seq() + 1;
    REQUIRE(SaveReplPosition(pkv, primary.term(), seq).ok());
    REQUIRE(pkv.Commit().ok());
    Effects fx;
    primary.OnCommitted(seq, pkv.TakeCommitted(), fx);
    Route(fx, "p1");
  }
  void Route(Effects& fx, const std::string& from) {
    for (auto& m : fx.mesh) {
      if (m.node == "r1")
        to_replica.push_back(std::move(m.env));
      else
        to_primary.push_back(std::move(m.env));
    }
    fx.Clear();
    (void)from;
  }
  // The replica's service: one turn over what arrived, a commit, the fsync, the acks.
  void ReplicaTurn(size_t max = SIZE_MAX) {
    Effects fx;
    for (size_t i = 0; i < max && !to_replica.empty(); ++i) {
      auto env = std::move(to_replica.front());
      to_replica.pop_front();
      if (drop_next_batch && env.type == MeshType::kReplBatch) {
        drop_next_batch = false;
        continue;
      }
      REQUIRE(replica.OnBatch("p1", env, fx).ok());
    }
    REQUIRE(rkv.Commit().ok());
    if (!replica_silent) Route(fx, "r1");
  }
  void PrimaryTurn() {
    Effects fx;
    while (!to_primary.empty()) {
      auto env = std::move(to_primary.front());
      to_primary.pop_front();
      if (env.type == MeshType::kReplAck) primary.OnAck("r1", env);
      if (env.type == MeshType::kReplHello) primary.OnHello("r1", env, fx);
    }
    primary.OnTurn(fx);
    Route(fx, "p1");
  }
  // The replica says hello; `settle`: and everything that follows is carried until quiet,
  // else only the primary's answer is made.
  void Hello(bool settle = true) {
    Effects fx;
    replica.Hello(fx);
    Route(fx, "r1");
    if (settle)
      Settle();
    else
      PrimaryTurn();
  }
  void Settle() {
    for (int i = 0; i < 1000 && (!to_replica.empty() || !to_primary.empty()); ++i) {
      ReplicaTurn();
      PrimaryTurn();
    }
  }
  std::string StateOfReplica() const { return primary.Replicas().at(0).state; }

  FakeClock clock;
  store::MemKvStore pkv_inner;
  store::RecordingKvStore pkv{pkv_inner};
  store::MemKvStore rkv;
  PrimaryReplication primary;
  ReplicaReplication replica;
  std::deque<codec::Envelope> to_replica, to_primary;
  bool drop_next_batch = false;
  bool replica_silent = false;
};

}  // namespace

TEST_CASE("replication: batches reach the replica in order and are released on its ack",
          "[replication]") {
  Shard s;
  s.Hello();
  CHECK(s.StateOfReplica() == "in-sync");
  s.Commit({{"a", "1"}, {"b", "2"}});
  CHECK(s.primary.ReleasableUpTo() == 0);  // the replica has not said it holds batch 1
  s.ReplicaTurn();
  CHECK(s.primary.ReleasableUpTo() == 0);
  s.PrimaryTurn();
  CHECK(s.primary.ReleasableUpTo() == 1);
  s.Commit({{"a", ""}, {"c", "3"}});
  s.Commit({{"d", std::string(700'000, 'd')}});  // more than one part
  s.Settle();
  CHECK(s.primary.ReleasableUpTo() == 3);
  CHECK(Rows(s.rkv) == Rows(s.pkv));
  CHECK(Rows(s.rkv, true) == Rows(s.pkv, true));  // the position travels with the batches
  auto pos = LoadReplPosition(s.rkv);
  REQUIRE(pos.ok());
  CHECK(pos->seq == 3);
  CHECK(pos->term == 1);
  CHECK(s.primary.Replicas().at(0).lag == 0);
  // Said again (its primary was quiet): it keeps its place in the in-sync set.
  s.Hello(false);
  CHECK(s.StateOfReplica() == "in-sync");
  CHECK(s.primary.copies_started() == 1);
  s.Commit({{"e", "5"}});
  CHECK(s.primary.ReleasableUpTo() == 3);  // still waits for it
  s.clock.Advance(5000);                   // with nothing outstanding, time alone takes nobody out
  s.Settle();
  CHECK(s.primary.ReleasableUpTo() == 4);
  CHECK(s.primary.dropped_from_sync() == 0);
}

TEST_CASE("replication: an empty replica gets a copy while batches go on, and converges",
          "[replication]") {
  Shard s;
  // 4 MB of rows before the replica says hello: a copy of several parts.
  for (int b = 0; b < 40; ++b) {
    std::map<std::string, std::string> rows;
    for (int i = 0; i < 100; ++i)
      rows["k" + std::to_string(b * 100 + i)] = std::string(1000, 'a' + b % 26);
    s.Commit(rows);
  }
  REQUIRE(s.rkv.Put("stale", "x", "from an old life").ok());  // what the copy must erase
  REQUIRE(s.rkv.Commit().ok());
  s.Hello(false);
  CHECK(s.StateOfReplica() == "copying");
  CHECK(s.primary.copies_started() == 1);
  // Batches during the copy touch rows already copied, rows not yet copied, and new rows.
  int round = 0;
  while (s.StateOfReplica() == "copying" && round < 200) {
    s.ReplicaTurn(2);
    s.Commit({{"k" + std::to_string(round * 7 % 4000), "changed"},
              {"k" + std::to_string(3999 - round * 13 % 4000), ""},
              {"new" + std::to_string(round), "n"}});
    s.PrimaryTurn();
    ++round;
  }
  s.Settle();
  CHECK(s.StateOfReplica() == "in-sync");
  CHECK(Rows(s.rkv) == Rows(s.pkv));
  CHECK(s.rkv.Get("stale", "x").status().code() == Code::kNotFound);
  CHECK(LoadReplPosition(s.rkv)->complete);
  CHECK(s.primary.ReleasableUpTo() == s.primary.seq());
}

TEST_CASE("replication: a replica that stops mid-copy starts the copy again", "[replication]") {
  Shard s;
  for (int b = 0; b < 10; ++b) s.Commit({{"k" + std::to_string(b), std::string(300'000, 'x')}});
  s.Hello(false);
  s.ReplicaTurn(2);  // two parts applied, then the replica "restarts"
  s.to_replica.clear();
  s.to_primary.clear();
  ReplicaReplication restarted(s.rkv, s.clock, "p1");
  REQUIRE(restarted.Load().ok());
  CHECK_FALSE(restarted.position().complete);
  Effects fx;
  restarted.Hello(fx);
  REQUIRE(fx.mesh.front().env.type == MeshType::kReplHello);
  CHECK(fx.mesh.front().env.ftype == 0);  // incomplete: it asks for a copy, not for batches
  s.primary.OnPeerDown("r1");
  s.Route(fx, "r1");
  s.PrimaryTurn();
  CHECK(s.primary.copies_started() == 2);
}

TEST_CASE("replication: a lost batch is asked for again and resent from the log", "[replication]") {
  Shard s;
  s.Hello();
  s.Commit({{"a", "1"}});
  s.drop_next_batch = true;
  s.ReplicaTurn();
  s.Commit({{"b", "2"}});  // batch 2 arrives with batch 1 missing: a gap
  s.Settle();
  CHECK(Rows(s.rkv) == Rows(s.pkv));
  CHECK(s.primary.ReleasableUpTo() == 2);
  CHECK(s.primary.copies_started() == 1);  // the first, of an empty store: no other
}

TEST_CASE("replication: a silent replica leaves the in-sync set, then comes back",
          "[replication]") {
  ReplicationConfig cfg;
  cfg.timeout_ms = 1000;
  Shard s(cfg);
  s.Hello();
  s.replica_silent = true;
  s.Commit({{"a", "1"}});
  s.ReplicaTurn();
  s.PrimaryTurn();
  CHECK(s.primary.ReleasableUpTo() == 0);
  s.clock.Advance(1001);
  s.PrimaryTurn();
  CHECK(s.StateOfReplica() == "catching-up");
  CHECK(s.primary.dropped_from_sync() == 1);
  CHECK(s.primary.ReleasableUpTo() == 1);  // alone, as min_in_sync = 1 allows
  s.replica_silent = false;
  s.Commit({{"b", "2"}});
  s.Settle();
  CHECK(s.StateOfReplica() == "in-sync");
  s.Commit({{"c", "3"}});
  CHECK(s.primary.ReleasableUpTo() == 2);  // in sync again: batch 3 waits for it
  s.Settle();
  CHECK(s.primary.ReleasableUpTo() == 3);
}

TEST_CASE("replication: with min_in_sync 2 nothing goes while the replica is out",
          "[replication]") {
  ReplicationConfig cfg;
  cfg.min_in_sync = 2;
  Shard s(cfg);
  s.Commit({{"a", "1"}});
  CHECK(s.primary.ReleasableUpTo() == 0);  // the replica has not even said hello
  s.Hello();
  CHECK(s.primary.ReleasableUpTo() == 1);
  s.primary.OnPeerDown("r1");
  s.Commit({{"b", "2"}});
  CHECK(s.primary.ReleasableUpTo() == 1);
}

TEST_CASE("replication: fencing: a replica that follows a newer term stops the old primary",
          "[replication]") {
  Shard s;
  s.Hello();
  s.Commit({{"a", "1"}});
  s.Settle();
  // A newer primary (term 2) wrote batch 2 to this replica.
  codec::ReplBatch newer{2, 2, 0, true, false, {{codec::ReplWrite::Kind::kPut, "t", "z", "9"}}};
  codec::Envelope env;
  env.type = MeshType::kReplBatch;
  env.body = codec::Encode(newer);
  Effects fx;
  REQUIRE(s.replica.OnBatch("p1", env, fx).ok());
  fx.Clear();
  s.Commit({{"b", "2"}});  // the old primary's batch 2 (term 1): refused
  s.Settle();
  CHECK(s.replica.refused() == 1);
  CHECK(s.primary.fenced());
  CHECK(s.primary.ReleasableUpTo() == 1);
  CHECK(*s.rkv.Get("t", "z") == "9");
  CHECK(s.rkv.Get("t", "b").status().code() == Code::kNotFound);
}

TEST_CASE("replication: a replica ahead of the primary is never overwritten", "[replication]") {
  Shard s;
  REQUIRE(SaveReplPosition(s.rkv, 1, 50).ok());
  REQUIRE(s.rkv.Put("t", "precious", "1").ok());
  REQUIRE(s.rkv.Commit().ok());
  ReplicaReplication ahead(s.rkv, s.clock, "p1");
  REQUIRE(ahead.Load().ok());
  Effects fx;
  ahead.Hello(fx);
  s.Route(fx, "r1");
  s.PrimaryTurn();
  CHECK(s.to_replica.empty());
  CHECK(s.StateOfReplica() == "unknown");
  CHECK(*s.rkv.Get("t", "precious") == "1");
}

TEST_CASE("replication: batches are cut into parts that fit an envelope", "[replication]") {
  std::vector<store::WriteOp> writes;
  for (int i = 0; i < 5; ++i)
    writes.push_back(
        {store::WriteOp::Kind::kPut, "t", std::to_string(i), std::string(200'000, 'v')});
  auto parts = EncodeBatchParts(1, 9, writes);
  REQUIRE(parts.ok());
  CHECK(parts->size() == 3);
  size_t n = 0;
  for (size_t i = 0; i < parts->size(); ++i) {
    codec::ReplBatch b;
    REQUIRE(codec::Decode((*parts)[i], b) == codec::DecodeStatus::kOk);
    CHECK(b.part == i);
    CHECK(b.last == (i + 1 == parts->size()));
    n += b.writes.size();
  }
  CHECK(n == 5);
  writes.push_back(
      {store::WriteOp::Kind::kPut, "t", "huge", std::string(codec::kMaxEnvelopeBody, 'h')});
  CHECK(EncodeBatchParts(1, 10, writes).status().code() == Code::kTooLarge);
}
