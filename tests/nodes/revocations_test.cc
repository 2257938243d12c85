// Revoked devices: the list (bounded, persisted, parsed with limits) and the gateway refusing
// their tokens and closing their connections.
#include <catch2/catch.hpp>

#include <fstream>

#include "codec/token.h"
#include "nodes/gateway/gateway_core.h"
#include "nodes/gateway/revocations.h"
#include "tests/temp_dir.h"

using namespace meshchat;
using namespace meshchat::codec;
using nodes::Revocations;

namespace {
const std::string kSecret = "gateway-test-secret-0123456789";

struct Gateway {
  FakeClock clock;
  router::HashRing ring{{"s1"}};
  nodes::GatewayCore core{nodes::GatewayConfig{"gw1", kSecret}, clock, ring,
                          [](const std::string&) { return true; }};
  nodes::Effects fx;
  int64_t now_s() const { return clock.WallMs() / 1000; }
  // Opens `conn` and says hello with a token; true if it was accepted (registered).
  bool Login(uint64_t conn, const TokenClaims& c) {
    fx.Clear();
    core.OnOpen(conn);
    core.OnFrame(conn, FrameView{0x01, Encode(Hello{1, SignToken(c, kSecret)})}, fx);
    for (auto& m : fx.mesh)
      if (m.env.type == MeshType::kConnOpen) return true;
    return false;
  }
  std::string ErrorTo(uint64_t conn) {
    for (auto& w : fx.writes) {
      FrameView f;
      size_t used;
      if (w.conn != conn || DecodeFrame(w.bytes, f, used) != DecodeStatus::kOk || f.type != 0x0F)
        continue;
      Error e;
      REQUIRE(Decode(f.body, e) == DecodeStatus::kOk);
      return e.msg;
    }
    return "";
  }
  bool Closed(uint64_t conn) {
    return std::find(fx.closes.begin(), fx.closes.end(), conn) != fx.closes.end();
  }
};
}  // namespace

TEST_CASE("revocation list: later wins, expiry, bounded parse, durable file", "[nodes][security]") {
  Revocations r;
  CHECK(r.Add("alice", "phone", 100));
  CHECK(r.Add("alice", "phone", 50));  // an older one does not undo a newer
  CHECK(r.Revoked({"alice", "phone", 999, 1, 100}));
  CHECK_FALSE(r.Revoked({"alice", "phone", 999, 1, 101}));  // signed after: fine
  CHECK(r.Revoked({"alice", "phone", 999, 1, 0}));          // no "iat": refused
  CHECK_FALSE(r.Revoked({"alice", "laptop", 999, 1, 0}));
  r.Expire(100 + 3600, 3600);
  CHECK(r.size() == 1);  // a token signed before it may still be valid
  r.Expire(100 + 3601, 3600);
  CHECK(r.size() == 0);

  CHECK(r.Parse("bob pc 5\n\ncarol tab 7\n").ok());
  CHECK(r.size() == 2);
  for (std::string bad : {"bob pc\n", "bob pc 5 extra\n", "bob pc -1\n", "b@d! pc 5\n",
                          "bob pc 5x\n", "bob pc 99999999999999999999999\n"}) {
    INFO(bad);
    Status s = r.Parse(bad);
    CHECK_FALSE(s.ok());
    CHECK_THAT(s.message(), Catch::Contains("line 1"));
  }
  CHECK(r.size() == 2);  // a bad file changes nothing

  test::TempDir dir;
  const std::string path = dir.path() + "/revoked";
  Revocations empty;
  CHECK(empty.Load(path).ok());  // missing: empty
  REQUIRE(r.Save(path).ok());
  Revocations back;
  REQUIRE(back.Load(path).ok());
  CHECK(back.Serialize() == r.Serialize());
  std::ofstream(path) << "garbage\n";
  CHECK_FALSE(back.Load(path).ok());
}

TEST_CASE("gateway: a revoked device's connections close and its old tokens are refused",
          "[nodes][security]") {
  Gateway g;
  const int64_t t0 = g.now_s();
  REQUIRE(g.Login(1, {"alice", "phone", t0 + 600, 1, t0}));
  REQUIRE(g.Login(2, {"alice", "laptop", t0 + 600, 2, t0}));
  g.fx.Clear();
  REQUIRE(g.core.Revoke("alice", "phone", t0, g.fx));
  CHECK(g.Closed(1));
  CHECK(g.ErrorTo(1) == "device revoked");
  CHECK_FALSE(g.Closed(2));  // the user's other device stays
  CHECK_FALSE(g.Login(3, {"alice", "phone", t0 + 600, 3, t0}));
  CHECK(g.ErrorTo(3) == "token revoked");
  g.clock.Advance(1000);  // a token signed after the revocation is fine
  CHECK(g.Login(4, {"alice", "phone", t0 + 600, 4, t0 + 1}));
  g.fx.Clear();
  REQUIRE(g.core.Revoke("alice", "phone", t0, g.fx));  // the same revocation again
  CHECK_FALSE(g.Closed(4));                            // does not close the newer login
}

TEST_CASE("gateway: tokens living longer than the maximum are refused", "[nodes][security]") {
  Gateway g;
  const int64_t t0 = g.now_s();
  CHECK(g.Login(1, {"alice", "phone", t0 + 86'400, 1, t0}));
  CHECK_FALSE(g.Login(2, {"alice", "phone", t0 + 86'400 + 31, 2, t0}));
  CHECK_THAT(g.ErrorTo(2), Catch::Contains("token lifetime over 86400 s"));
}
