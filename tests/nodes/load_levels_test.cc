// Graceful degradation on a fake clock: the load monitor's levels and hysteresis, who counts
// as a heavy sender, and what each core sheds at each level.
#include <catch2/catch.hpp>

#include "codec/presence_messages.h"
#include "codec/token.h"
#include "nodes/gateway/gateway_core.h"
#include "nodes/runtime/load_levels.h"
#include "tests/nodes/shard_harness.h"

using namespace meshchat;
using namespace meshchat::codec;
using nodes::LoadLevel;
using nodes::LoadMonitor;
using nodes::LoadSample;
using nodes::LoadState;

namespace {

LoadSample Lag(double ms) {
  return LoadSample{ms, 0, 0};
}

}  // namespace

TEST_CASE("load monitor: climbs a level per two samples, falls one per calm period",
          "[nodes][overload]") {
  FakeClock clock;
  nodes::LoadConfig cfg;  // lag 50/200/500 ms, calm 3 s
  LoadMonitor m(cfg, clock);
  CHECK_FALSE(m.Observe(Lag(600)));  // one sample is a hiccup, not load
  CHECK(m.state().level == LoadLevel::kNormal);
  CHECK_FALSE(m.Observe(Lag(10)));  // and the count starts over
  CHECK_FALSE(m.Observe(Lag(600)));
  CHECK(m.Observe(Lag(600)));
  CHECK(m.state().level == LoadLevel::kShedHints);  // hints go first, whatever the load
  m.Observe(Lag(600));
  CHECK(m.Observe(Lag(600)));
  CHECK(m.state().level == LoadLevel::kDelayReceipts);
  m.Observe(Lag(600));
  CHECK(m.Observe(Lag(600)));
  CHECK(m.state().level == LoadLevel::kRefuseHeavy);
  m.Observe(Lag(600));
  CHECK_FALSE(m.Observe(Lag(600)));  // the top
  // Under the threshold of level 3 but over half of it: stays (no flapping at a threshold).
  for (int i = 0; i < 40; ++i) {
    clock.Advance(250);
    CHECK_FALSE(m.Observe(Lag(300)));
  }
  CHECK(m.state().level == LoadLevel::kRefuseHeavy);
  // Calm: down one level after 3 s, then another after 3 s more.
  int64_t start = clock.MonoMs();
  while (m.state().level == LoadLevel::kRefuseHeavy) {
    clock.Advance(250);
    m.Observe(Lag(5));
  }
  CHECK(clock.MonoMs() - start == 3250);  // the first calm sample starts the 3 s
  CHECK(m.state().level == LoadLevel::kDelayReceipts);
  start = clock.MonoMs();
  while (m.state().level != LoadLevel::kNormal) {
    clock.Advance(250);
    m.Observe(Lag(5));
  }
  CHECK(clock.MonoMs() - start == 6000);
  CHECK(m.changes() == 6);
}

TEST_CASE("load monitor: every signal counts, the worst decides - off stays normal",
          "[nodes][overload]") {
  FakeClock clock;
  nodes::LoadConfig cfg;
  LoadMonitor busy(cfg, clock);
  for (int i = 0; i < 6; ++i) busy.Observe({0, 0, 0, 90});
  CHECK(busy.state().level == LoadLevel::kShedHints);  // a loop busy 90% of the time
  LoadMonitor m(cfg, clock);
  for (int i = 0; i < 6; ++i) m.Observe({0, 25'000, 0});
  CHECK(m.state().level == LoadLevel::kDelayReceipts);  // queue over 20,000: no higher
  m.Observe({0, 0, 1500});
  m.Observe({0, 0, 1500});
  CHECK(m.state().level == LoadLevel::kRefuseHeavy);  // a commit waiting 1.5 s
  CHECK_FALSE(m.state().full);
  m.Observe({0, 250'000, 0});
  CHECK(m.state().full);  // the hard cap needs no second sample

  cfg.enabled = false;
  LoadMonitor off(cfg, clock);
  for (int i = 0; i < 5; ++i) off.Observe({900, 90'000, 2000});
  CHECK(off.state().level == LoadLevel::kNormal);
  CHECK(off.last().lag_ms == 900);  // still measured
}

TEST_CASE("load config from options, with clear errors", "[nodes][overload]") {
  nodes::LoadConfig c = nodes::LoadConfig::FromOptions(
      nodes::NodeOptions::Parse({"load_levels=off", "load_lag_ms=5,20,40", "load_hard_queue=1000"}),
      {});
  CHECK_FALSE(c.enabled);
  CHECK(c.lag_ms == std::array<double, 3>{5, 20, 40});
  CHECK(c.hard_queue == 1000);
  CHECK(c.queue == nodes::LoadConfig{}.queue);
  auto bad = [](const std::string& k, const std::string& v) {
    CHECK_THROWS_WITH(nodes::LoadConfig::FromOptions(nodes::NodeOptions::Parse({k + "=" + v}), {}),
                      Catch::Contains(k));
  };
  bad("load_lag_ms", "5,20");
  bad("load_lag_ms", "5,20,40,");
  bad("load_lag_ms", "5,x,40");
  bad("load_lag_ms", "50,20,40");  // falling
  bad("load_queue", "-1,2,3");
  bad("load_levels", "maybe");
  bad("load_calm_ms", "");
}

TEST_CASE("heavy senders: the few that send half, or half of equals", "[nodes][overload]") {
  nodes::HeavySenders h;
  int64_t t = 1000;
  for (int i = 0; i < 100; ++i) h.Count("flood", t);
  for (int u = 0; u < 20; ++u)
    for (int i = 0; i < 4; ++i) h.Count("u" + std::to_string(u), t);
  h.Count("flood", t + 1000);  // the window rolls
  CHECK(h.IsHeavy("flood"));
  CHECK(h.heavy() == 1);  // 100 of 180 is over half alone

  nodes::HeavySenders eq;
  for (int u = 0; u < 10; ++u)
    for (int i = 0; i < 5; ++i) eq.Count("u" + std::to_string(u), t);
  eq.Count("u0", t + 1000);
  CHECK(eq.heavy() == 5);
  nodes::HeavySenders few;  // under min_count nobody is heavy
  few.Count("a", t);
  few.Count("a", t);
  few.Count("a", t + 1000);
  CHECK(few.heavy() == 0);
  eq.Count("u0", t + 5000);  // a window long past says nothing about now
  CHECK(eq.heavy() == 0);
}

TEST_CASE("session at level 1 drops typing and last-seen updates, core messages flow",
          "[nodes][overload]") {
  test::Shards s({"s1"});
  Stamp alice{"alice", "phone", 1, "gw1"}, bob{"bob", "phone", 2, "gw2"};
  s.Connect("alice", "phone", "gw1", 1);
  s.Connect("bob", "phone", "gw2", 2);
  s.Frame(alice, FrameType::kTyping, Encode(Typing{"bob", false, true}));
  CHECK(s.Client("gw2", 2).typing == 1);
  s.SetLoad({LoadLevel::kShedHints, false});
  s.Frame(alice, FrameType::kTyping, Encode(Typing{"bob", false, true}));
  s.Send(alice, "bob", 1, "still here");
  CHECK(s.Client("gw2", 2).typing == 1);
  CHECK(s.core("s1").shed().typing == 1);
  CHECK(s.Client("gw1", 1).sent.size() == 1);
  CHECK(s.Client("gw2", 2).pushes.size() == 1);
}

TEST_CASE("session at level 2 stores read receipts and sends them later, once",
          "[nodes][overload]") {
  test::Shards s({"s1", "s2"});
  Stamp alice{"alice", "phone", 1, "gw1"}, bob{"bob", "phone", 2, "gw2"};
  s.Connect("alice", "phone", "gw1", 1);
  s.Connect("bob", "phone", "gw2", 2);
  for (uint64_t cid = 1; cid <= 3; ++cid) s.Send(alice, "bob", cid, "m");
  s.AckAll(bob);
  auto& av = s.Client("gw1", 1);
  const size_t delivered = av.receipts.size();
  s.SetLoad({LoadLevel::kDelayReceipts, false});
  s.Read(bob, "alice", 1);
  s.Read(bob, "alice", 3);  // collapses with the first: one receipt up to 3
  s.Tick();
  CHECK(av.receipts.size() == delivered);  // put off
  CHECK(s.core(s.Owner("bob")).shed().receipts_delayed == 2);
  s.AckAll(alice);
  // A restart loses none of them: they are stored.
  for (const char* id : {"s1", "s2"}) s.Restart(id);
  s.Connect("alice", "phone", "gw1", 1);
  s.Connect("bob", "phone", "gw2", 2);
  s.SetLoad({LoadLevel::kDelayReceipts, false});
  s.clock.Advance(5000);  // at level 2 a batch goes every 5 s
  s.Tick();
  REQUIRE(av.receipts.size() == delivered + 1);
  CHECK(av.receipts.back().kind == ReceiptKind::kRead);
  CHECK(av.receipts.back().seq == 3);
  s.AckAll(alice);
  s.clock.Advance(10'000);
  s.Tick();
  CHECK(av.receipts.size() == delivered + 1);  // sent once
  // Back at normal: reads go at once again.
  s.SetLoad({});
  s.Send(alice, "bob", 4, "m");
  s.AckAll(bob);
  s.Read(bob, "alice", 4);
  CHECK(av.receipts.back().kind == ReceiptKind::kRead);
  CHECK(av.receipts.back().seq == 4);
}

TEST_CASE("session at level 3 refuses the heaviest sender before storing - full refuses all",
          "[nodes][overload]") {
  nodes::SessionConfig cfg;
  cfg.send_rate = 1000;
  cfg.send_burst = 1000;
  test::Shards s({"s1"}, cfg);
  Stamp flood{"flood", "phone", 1, "gw1"}, calm{"calm", "phone", 2, "gw1"};
  s.Connect("flood", "phone", "gw1", 1);
  s.Connect("calm", "phone", "gw1", 2);
  s.Connect("bob", "phone", "gw2", 3);
  s.SetLoad({LoadLevel::kRefuseHeavy, false});
  uint64_t cid = 1;
  for (int i = 0; i < 50; ++i) s.Send(flood, "bob", cid++, "f");
  for (int i = 0; i < 5; ++i) s.Send(calm, "bob", 100 + i, "c");
  s.clock.Advance(1000);  // the window closes: flood sent 50 of 55
  s.Send(flood, "bob", cid, "f");
  s.Send(calm, "bob", 200, "c");
  auto& fv = s.Client("gw1", 1);
  auto& cv = s.Client("gw1", 2);
  REQUIRE(fv.errors.size() == 1);
  CHECK(fv.errors[0].code == ErrorCode::kRateLimited);
  CHECK(fv.errors[0].cid == std::optional<uint64_t>(cid));
  CHECK(fv.errors[0].retry_after == 1000);
  CHECK(fv.sent.size() == 50);
  CHECK(cv.sent.size() == 6);
  CHECK(cv.errors.empty());
  CHECK(s.Client("gw2", 3).pushes.size() == 56);  // the refused one was never stored
  CHECK(s.core("s1").shed().sends_refused == 1);

  s.SetLoad({LoadLevel::kNormal, true});
  s.Send(calm, "bob", 201, "c");
  REQUIRE(cv.errors.size() == 1);
  CHECK(cv.errors[0].code == ErrorCode::kServiceUnavailable);
  CHECK(cv.errors[0].retry_after == 1000);
  s.SetLoad({});
  s.Send(calm, "bob", 201, "c");  // the retry with the same cid goes through
  CHECK(cv.sent.size() == 7);
}

TEST_CASE("gateway at level 1 drops typing and holds presence pushes - level 3 refuses heavy",
          "[nodes][overload]") {
  FakeClock clock;
  router::HashRing ring({"s1"});
  const std::string secret = "gateway-test-secret-0123456789";
  nodes::GatewayConfig cfg{"gw1", secret};
  nodes::GatewayCore core(cfg, clock, ring, [](const std::string&) { return true; });
  nodes::Effects fx;
  auto login = [&](uint64_t conn, const std::string& user) {
    core.OnOpen(conn);
    core.OnFrame(
        conn,
        FrameView{0x01,
                  Encode(Hello{1, SignToken({user, "d", clock.WallMs() / 1000 + 60, 1}, secret)})},
        fx);
    Envelope ok;
    ok.type = MeshType::kConnOpened;
    ok.stamp = Stamp{user, "d", conn, "gw1"};
    core.OnMesh("s1", std::move(ok), fx);
  };
  login(1, "alice");
  login(2, "bob");
  // bob watches alice
  Envelope w;
  w.type = MeshType::kWatchOk;
  w.key = "alice";
  w.stamp = Stamp{"bob", "d", 2, "gw1"};
  core.OnMesh("p1", std::move(w), fx);
  fx.Clear();
  auto count = [&](uint64_t conn, FrameType t) {
    int n = 0;
    for (auto& wr : fx.writes)
      if (wr.conn == conn && static_cast<uint8_t>(wr.bytes[4]) == static_cast<uint8_t>(t)) ++n;
    return n;
  };
  core.SetLoad({LoadLevel::kShedHints, false}, fx);
  core.OnFrame(
      1, FrameView{static_cast<uint8_t>(FrameType::kTyping), Encode(Typing{"bob", false, true})},
      fx);
  CHECK(fx.mesh.empty());  // never reached a worker
  core.OnPublished("alice", "online-1", fx);
  core.OnPublished("alice", "online-2", fx);
  CHECK(count(2, FrameType::kPresence) == 0);
  CHECK(core.shed().typing == 1);
  CHECK(core.shed().presence == 2);
  core.OnFrame(1, FrameView{static_cast<uint8_t>(FrameType::kSend), Encode(Send{"bob", 1, "x"})},
               fx);
  CHECK(fx.mesh.size() == 1);  // core messages flow
  core.SetLoad({}, fx);        // back to normal: the newest presence state goes out
  REQUIRE(count(2, FrameType::kPresence) == 1);
  for (auto& wr : fx.writes)
    if (wr.conn == 2) CHECK(wr.bytes.substr(5) == "online-2");

  core.SetLoad({LoadLevel::kRefuseHeavy, false}, fx);
  fx.Clear();
  for (int i = 0; i < 20; ++i)
    core.OnFrame(1, FrameView{static_cast<uint8_t>(FrameType::kSend), Encode(Send{"bob", 2, "x"})},
                 fx);
  clock.Advance(1000);
  core.OnFrame(1, FrameView{static_cast<uint8_t>(FrameType::kSend), Encode(Send{"bob", 3, "x"})},
               fx);
  CHECK(count(1, FrameType::kError) == 1);
  CHECK(core.shed().sends_refused == 1);
}
