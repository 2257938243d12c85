// Rate limits on a fake clock: the token bucket, per-user sends, per-connection frames.
#include <catch2/catch.hpp>

#include "base/token_bucket.h"
#include "codec/token.h"
#include "nodes/gateway/address_limits.h"
#include "nodes/gateway/gateway_core.h"
#include "tests/nodes/shard_harness.h"

using namespace meshchat;
using namespace meshchat::codec;

TEST_CASE("token bucket: burst, then the rate", "[nodes][overload]") {
  TokenBucket b(10, 3);  // 10/s, 3 at once
  int64_t t = 1000;
  CHECK(b.Take(t));
  CHECK(b.Take(t));
  CHECK(b.Take(t));
  CHECK_FALSE(b.Take(t));
  CHECK(b.RetryAfterMs(t) == 101);
  t += 100;
  CHECK(b.Take(t));  // one token per 100 ms
  CHECK_FALSE(b.Take(t));
  t += 10'000;
  for (int i = 0; i < 3; ++i) CHECK(b.Take(t));  // never more than the burst saved up
  CHECK_FALSE(b.Take(t));
}

TEST_CASE("sends over the user's rate are refused before they are stored", "[nodes][overload]") {
  nodes::SessionConfig cfg;
  cfg.send_rate = 1;
  cfg.send_burst = 2;
  test::Shards s({"s1"}, cfg);
  Stamp alice{"alice", "phone", 1, "gw1"};
  s.Connect("alice", "phone", "gw1", 1);
  for (uint64_t cid = 1; cid <= 3; ++cid) s.Send(alice, "bob", cid, "x");
  auto& av = s.Client("gw1", 1);
  CHECK(av.sent.size() == 2);
  REQUIRE(av.errors.size() == 1);
  CHECK(av.errors[0].code == ErrorCode::kRateLimited);
  CHECK(av.errors[0].cid == std::optional<uint64_t>(3));
  CHECK(av.errors[0].retry_after > 0);
  s.clock.Advance(1000);
  s.Send(alice, "bob", 3, "x");  // the retry goes through once a token is back
  CHECK(av.sent.size() == 3);
}

TEST_CASE("a connection flooding frames is refused frame by frame, others are not",
          "[nodes][overload]") {
  FakeClock clock;
  router::HashRing ring({"s1"});
  nodes::GatewayConfig cfg{"gw1", "gateway-test-secret-0123456789"};
  cfg.frame_rate = 10;
  cfg.frame_burst = 5;
  nodes::GatewayCore core(cfg, clock, ring, [](const std::string&) { return true; });
  nodes::Effects fx;
  auto login = [&](uint64_t conn, const std::string& user) {
    core.OnOpen(conn);
    const std::string token =
        SignToken({user, "d", clock.WallMs() / 1000 + 60, 1}, "gateway-test-secret-0123456789");
    core.OnFrame(conn, FrameView{0x01, Encode(Hello{1, token})}, fx);
  };
  login(1, "flood");
  login(2, "calm");
  fx.Clear();
  const std::string ping = Encode(Ping{1});
  for (int i = 0; i < 20; ++i) core.OnFrame(1, FrameView{0x07, ping}, fx);
  core.OnFrame(2, FrameView{0x07, ping}, fx);
  int pongs1 = 0, limited1 = 0, pongs2 = 0;
  for (auto& w : fx.writes) {
    FrameView f;
    size_t used;
    REQUIRE(DecodeFrame(w.bytes, f, used) == DecodeStatus::kOk);
    if (w.conn == 2) pongs2 += f.type == 0x08;
    if (w.conn != 1) continue;
    pongs1 += f.type == 0x08;
    limited1 += f.type == 0x0F;
  }
  CHECK(pongs1 == 4);  // the hello took one token of the burst of 5
  CHECK(limited1 == 16);
  CHECK(pongs2 == 1);
  CHECK(fx.closes.empty());  // refused, not disconnected
}

TEST_CASE("per address: connects beyond the rate are refused, others unaffected",
          "[nodes][overload]") {
  nodes::AddressLimits l({10, 5, 1, 20, 1000});  // 10 connects/s, 5 at once
  int64_t t = 1000;
  for (int i = 0; i < 5; ++i) CHECK(l.Connect("10.0.0.1", t) == nodes::AddressLimits::Verdict::kOk);
  CHECK(l.Connect("10.0.0.1", t) == nodes::AddressLimits::Verdict::kTooFast);
  CHECK(l.Connect("10.0.0.2", t) == nodes::AddressLimits::Verdict::kOk);  // another address
  t += 100;                                                               // one more token
  CHECK(l.Connect("10.0.0.1", t) == nodes::AddressLimits::Verdict::kOk);
  CHECK(l.Connect("", t) == nodes::AddressLimits::Verdict::kOk);  // no address: not limited
  nodes::AddressLimits unlimited({0, 0, 0, 0, 1000});
  for (int i = 0; i < 1000; ++i)
    CHECK(unlimited.Connect("10.0.0.1", t) == nodes::AddressLimits::Verdict::kOk);
}

TEST_CASE("per address: failed authentications close the address for a while",
          "[nodes][overload]") {
  nodes::AddressLimits l({0, 0, 0.5, 3, 1000});  // 3 failures at once, then one per 2 s
  int64_t t = 1000;
  for (int i = 0; i < 3; ++i) {
    CHECK(l.Connect("10.0.0.9", t) == nodes::AddressLimits::Verdict::kOk);
    l.AuthFailed("10.0.0.9", t);
  }
  CHECK(l.Connect("10.0.0.9", t) == nodes::AddressLimits::Verdict::kAuthFailures);
  CHECK(l.Connect("10.0.0.8", t) == nodes::AddressLimits::Verdict::kOk);
  t += 1999;
  CHECK(l.Connect("10.0.0.9", t) == nodes::AddressLimits::Verdict::kAuthFailures);
  t += 2;
  CHECK(l.Connect("10.0.0.9", t) == nodes::AddressLimits::Verdict::kOk);  // earned one back
}

TEST_CASE("per address: the table is bounded", "[nodes][overload]") {
  nodes::AddressLimits l({10, 5, 1, 20, 100});
  for (int i = 0; i < 1000; ++i) {
    (void)l.Connect("10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256), 1000 + i);
    CHECK(l.tracked() <= 100);
  }
}

TEST_CASE("gateway: bad tokens from one address refuse its next connections", "[nodes][overload]") {
  FakeClock clock;
  router::HashRing ring{{"s1"}};
  nodes::GatewayConfig cfg{"gw1", "0123456789abcdef0123456789abcdef"};
  cfg.addresses = {0, 0, 1, 2, 1000};  // two failures at once, then one a second
  nodes::GatewayCore core(cfg, clock, ring, [](const std::string&) { return true; });
  nodes::Effects fx;
  for (uint64_t conn = 1; conn <= 2; ++conn) {
    REQUIRE(core.AllowConnect("10.0.0.5"));
    core.OnOpen(conn, "10.0.0.5");
    core.OnFrame(conn,
                 FrameView{static_cast<uint8_t>(FrameType::kHello),
                           Encode(codec::Hello{1, "mc1.forged.token"})},
                 fx);
  }
  CHECK_FALSE(core.AllowConnect("10.0.0.5"));
  CHECK(core.refused_auth() == 1);
  CHECK(core.AllowConnect("10.0.0.6"));
  clock.Advance(1001);
  CHECK(core.AllowConnect("10.0.0.5"));
}
