// ReliableChannel on its own: two ends on in-memory stores, envelopes passed by hand.
#include <catch2/catch.hpp>

#include "nodes/shard/channel.h"
#include "store/mem_kv_store.h"

using namespace meshchat;
using namespace meshchat::nodes;

namespace {

struct End {
  store::MemKvStore kv;
  std::unique_ptr<ReliableChannel> ch;
  std::vector<std::string> applied;
};

struct Pair {
  FakeClock clock;
  End a, b;
  bool b_up = true;
  Pair(ChannelConfig cfg = {}) {
    a.ch = std::make_unique<ReliableChannel>(cfg, a.kv, clock,
                                             [this](const std::string&) { return b_up; });
    b.ch = std::make_unique<ReliableChannel>(cfg, b.kv, clock,
                                             [](const std::string&) { return true; });
    REQUIRE(a.ch->Load().ok());
    REQUIRE(b.ch->Load().ok());
    REQUIRE(a.kv.Commit().ok());
    REQUIRE(b.kv.Commit().ok());
  }
  // Delivers a's messages to b (optionally dropping some), commits b, returns b's acks.
  std::vector<codec::Envelope> ToB(Effects& fx, const std::function<bool(uint64_t)>& drop = {}) {
    for (auto& m : fx.mesh) {
      if (m.env.type != codec::MeshType::kChanMsg || (drop && drop(m.env.req))) continue;
      REQUIRE(b.ch->OnMessage("a", m.env,
                              [&](const std::string&, std::string_view p) {
                                b.applied.emplace_back(p);
                                return Status::Ok();
                              })
                  .ok());
    }
    fx.Clear();
    Effects acks;
    b.ch->FlushAcks(acks);
    REQUIRE(b.kv.Commit().ok());
    std::vector<codec::Envelope> out;
    for (auto& m : acks.mesh) out.push_back(m.env);
    return out;
  }
  void AcksToA(const std::vector<codec::Envelope>& acks, Effects& fx) {
    for (const auto& e : acks) REQUIRE(a.ch->OnAck("b", e, fx).ok());
    REQUIRE(a.kv.Commit().ok());
  }
};

}  // namespace

TEST_CASE("messages are applied once, in order, and deleted when acked", "[nodes][channel]") {
  Pair p;
  Effects fx;
  for (int i = 1; i <= 5; ++i) REQUIRE(p.a.ch->Append("b", "m" + std::to_string(i), fx).ok());
  REQUIRE(p.a.kv.Commit().ok());
  CHECK(fx.mesh.size() == 5);
  Effects copy = fx;
  auto acks = p.ToB(fx);
  auto dup = p.ToB(copy);  // the same five again: duplicates, re-acked
  CHECK(p.b.applied == std::vector<std::string>{"m1", "m2", "m3", "m4", "m5"});
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].req == 5);
  p.AcksToA(acks, fx);
  CHECK(p.a.kv.Count("chan_out") == 0);
  CHECK(p.a.ch->Unacked() == 0);
}

TEST_CASE("a gap waits for the resend - the timeout resends from the last ack",
          "[nodes][channel]") {
  Pair p;
  Effects fx;
  for (int i = 1; i <= 4; ++i) REQUIRE(p.a.ch->Append("b", "m" + std::to_string(i), fx).ok());
  REQUIRE(p.a.kv.Commit().ok());
  auto acks = p.ToB(fx, [](uint64_t seq) { return seq == 2; });  // lose #2
  CHECK(p.b.applied == std::vector<std::string>{"m1"});
  p.AcksToA(acks, fx);
  CHECK(fx.mesh.empty());  // no timeout yet
  p.clock.Advance(600);
  REQUIRE(p.a.ch->OnTick(fx).ok());
  CHECK(fx.mesh.size() == 3);  // 2, 3, 4 again
  p.ToB(fx);
  CHECK(p.b.applied == std::vector<std::string>{"m1", "m2", "m3", "m4"});
}

TEST_CASE("the window bounds what is in flight", "[nodes][channel]") {
  ChannelConfig cfg;
  cfg.window = 3;
  Pair p(cfg);
  Effects fx;
  for (int i = 1; i <= 10; ++i) REQUIRE(p.a.ch->Append("b", std::to_string(i), fx).ok());
  REQUIRE(p.a.kv.Commit().ok());
  CHECK(fx.mesh.size() == 3);
  for (int round = 0; round < 10 && p.b.applied.size() < 10; ++round) p.AcksToA(p.ToB(fx), fx);
  CHECK(p.b.applied.size() == 10);
}

TEST_CASE("nothing is sent to a peer that is down - it all goes when it is up",
          "[nodes][channel]") {
  Pair p;
  p.b_up = false;
  Effects fx;
  for (int i = 1; i <= 3; ++i) REQUIRE(p.a.ch->Append("b", std::to_string(i), fx).ok());
  REQUIRE(p.a.kv.Commit().ok());
  CHECK(fx.mesh.empty());
  p.b_up = true;
  REQUIRE(p.a.ch->OnPeerUp("b", fx).ok());
  CHECK(fx.mesh.size() == 3);
}

TEST_CASE("the outbox survives a restart of the sender", "[nodes][channel]") {
  Pair p;
  Effects fx;
  for (int i = 1; i <= 3; ++i) REQUIRE(p.a.ch->Append("b", std::to_string(i), fx).ok());
  REQUIRE(p.a.kv.Commit().ok());
  fx.Clear();  // all lost in transit
  p.a.ch = std::make_unique<ReliableChannel>(ChannelConfig{}, p.a.kv, p.clock,
                                             [](const std::string&) { return true; });
  REQUIRE(p.a.ch->Load().ok());
  REQUIRE(p.a.ch->OnPeerUp("b", fx).ok());
  p.ToB(fx);
  CHECK(p.b.applied == std::vector<std::string>{"1", "2", "3"});
}

TEST_CASE("a receiver resets when the sender's store is new", "[nodes][channel]") {
  Pair p;
  Effects fx;
  REQUIRE(p.a.ch->Append("b", "old", fx).ok());
  REQUIRE(p.a.kv.Commit().ok());
  p.ToB(fx);
  // The sender loses its store: a new channel id, sequences from 1 again.
  store::MemKvStore fresh;
  ReliableChannel a2(ChannelConfig{}, fresh, p.clock, [](const std::string&) { return true; });
  REQUIRE(a2.Load().ok());
  REQUIRE(a2.Append("b", "new", fx).ok());
  REQUIRE(fresh.Commit().ok());
  p.ToB(fx);
  CHECK(p.b.applied == std::vector<std::string>{"old", "new"});
}
