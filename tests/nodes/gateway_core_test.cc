// GatewayCore without sockets: frames in, effects out, on a fake clock.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "codec/client_messages.h"
#include "codec/token.h"
#include "nodes/gateway/gateway_core.h"

using namespace meshchat;
using namespace meshchat::codec;
using namespace meshchat::nodes;

namespace {

const std::string kSecret = "gateway-test-secret-0123456789";

struct Fixture {
  FakeClock clock;
  router::HashRing ring{{"s1", "s2"}};
  std::set<std::string> up{"s1", "s2"};
  GatewayCore core{GatewayConfig{"gw1", kSecret}, clock, ring,
                   [this](const std::string& n) { return up.count(n) > 0; }};
  Effects fx;

  std::string Token(const std::string& user, int64_t ttl = 3600) {
    return SignToken({user, "phone", clock.WallMs() / 1000 + ttl, 1}, kSecret);
  }
  void Frame(uint64_t conn, FrameType t, const std::string& body) {
    core.OnFrame(conn, FrameView{static_cast<uint8_t>(t), body}, fx);
  }
  void Hello(uint64_t conn, const std::string& token, uint64_t v = 1) {
    Frame(conn, FrameType::kHello, Encode(codec::Hello{v, token}));
  }
  // Hello, then the shard's confirmation, as the mesh would deliver it.
  void Login(uint64_t conn, const std::string& user) {
    core.OnOpen(conn);
    Hello(conn, Token(user));
    for (auto& m : fx.mesh)
      if (m.env.type == MeshType::kConnOpen) {
        Envelope ok;
        ok.type = MeshType::kConnOpened;
        ok.stamp = m.env.stamp;
        core.OnMesh(m.node, std::move(ok), fx);
      }
  }
  // Ticks, leaving out the connection digests sent to every shard (tests/nodes/conn_sync_test.cc).
  void TickWithoutDigests() {
    core.OnTick(fx);
    std::erase_if(fx.mesh,
                  [](const Effects::MeshSend& m) { return m.env.type == MeshType::kConnSync; });
  }
  // The single frame written to `conn` in fx.
  codec::FrameView Written(size_t i = 0) {
    REQUIRE(fx.writes.size() > i);
    FrameView f;
    size_t used;
    REQUIRE(DecodeFrame(fx.writes[i].bytes, f, used) == DecodeStatus::kOk);
    return f;
  }
  codec::Error ErrorWritten(size_t i = 0) {
    auto f = Written(i);
    REQUIRE(f.type == static_cast<uint8_t>(FrameType::kError));
    codec::Error e;
    REQUIRE(Decode(f.body, e) == DecodeStatus::kOk);
    return e;
  }
};

}  // namespace

TEST_CASE("hello with a good token: conn_open to the shard, welcome once it confirms", "[nodes]") {
  Fixture f;
  f.core.OnOpen(1);
  f.Hello(1, f.Token("alice"));
  CHECK(f.fx.writes.empty());  // not yet reachable: no welcome
  REQUIRE(f.fx.mesh.size() == 1);
  Envelope ok;
  ok.type = MeshType::kConnOpened;
  ok.stamp = f.fx.mesh[0].env.stamp;
  f.core.OnMesh(f.fx.mesh[0].node, std::move(ok), f.fx);
  auto w = f.Written();
  REQUIRE(w.type == static_cast<uint8_t>(FrameType::kWelcome));
  Welcome welcome;
  REQUIRE(Decode(w.body, welcome) == DecodeStatus::kOk);
  CHECK(welcome.user == "alice");
  CHECK(welcome.device == "phone");
  CHECK(welcome.conn == 1);
  CHECK(welcome.node == "gw1");
  REQUIRE(f.fx.mesh.size() == 1);
  CHECK(f.fx.mesh[0].node == f.ring.Owner("alice"));
  CHECK(f.fx.mesh[0].env.type == MeshType::kConnOpen);
  CHECK(f.fx.mesh[0].env.stamp == Stamp{"alice", "phone", 1, "gw1"});
  CHECK(f.core.authenticated() == 1);
  CHECK(f.fx.closes.empty());
}

TEST_CASE("bad, expired, foreign tokens and wrong versions are fatal", "[nodes]") {
  struct Case {
    std::string token;
    uint64_t version;
    ErrorCode code;
  };
  Fixture f;
  const std::vector<Case> cases = {
      {"garbage", 1, ErrorCode::kBadToken},
      {f.Token("alice", -3600), 1, ErrorCode::kTokenExpired},
      {SignToken({"alice", "d", f.clock.WallMs() / 1000 + 60, 1}, "some-other-cluster-secret"), 1,
       ErrorCode::kBadToken},
      {f.Token("alice"), 2, ErrorCode::kUnsupportedVersion},
  };
  uint64_t conn = 10;
  for (const auto& c : cases) {
    f.fx.Clear();
    f.core.OnOpen(conn);
    f.Hello(conn, c.token, c.version);
    auto e = f.ErrorWritten();
    CHECK(e.code == c.code);
    CHECK(e.fatal);
    CHECK(f.fx.closes == std::vector<uint64_t>{conn});
    CHECK(f.fx.mesh.empty());
    ++conn;
  }
  CHECK(f.core.authenticated() == 0);
}

TEST_CASE("anything but hello before authentication is refused", "[nodes]") {
  Fixture f;
  f.core.OnOpen(1);
  f.Frame(1, FrameType::kSend, Encode(Send{"bob", 1, "hi"}));
  auto e = f.ErrorWritten();
  CHECK(e.code == ErrorCode::kNotAuthenticated);
  CHECK(e.fatal);
  CHECK(f.fx.mesh.empty());
  CHECK(f.fx.closes == std::vector<uint64_t>{1});
}

TEST_CASE("unknown and server-only frame types are fatal", "[nodes]") {
  Fixture f;
  f.Login(1, "alice");
  for (uint8_t t : {uint8_t{0x00}, uint8_t{0x02}, uint8_t{0x05}, uint8_t{0x42}}) {
    f.fx.Clear();
    f.core.OnFrame(1, FrameView{t, ""}, f.fx);
    CHECK(f.ErrorWritten().code == ErrorCode::kUnknownType);
    CHECK(f.fx.closes == std::vector<uint64_t>{1});
  }
}

TEST_CASE("authenticated frames are stamped and forwarded undecoded", "[nodes]") {
  Fixture f;
  f.Login(7, "alice");
  f.fx.Clear();
  // Even a body that is not valid msgpack is forwarded: the gateway does not parse bodies.
  f.Frame(7, FrameType::kSend, "\xc1not-msgpack");
  REQUIRE(f.fx.mesh.size() == 1);
  const auto& m = f.fx.mesh[0];
  CHECK(m.node == f.ring.Owner("alice"));
  CHECK(m.fail_conn == 7);
  CHECK(m.env.type == MeshType::kClientFrame);
  CHECK(m.env.ftype == static_cast<uint8_t>(FrameType::kSend));
  CHECK(m.env.body == "\xc1not-msgpack");
  CHECK(m.env.stamp == Stamp{"alice", "phone", 7, "gw1"});
  CHECK(m.env.key == "alice");
}

TEST_CASE("ping is answered by the gateway with the same body", "[nodes]") {
  Fixture f;
  f.Login(1, "alice");
  f.fx.Clear();
  f.Frame(1, FrameType::kPing, Encode(Ping{99}));
  auto p = f.Written();
  CHECK(p.type == static_cast<uint8_t>(FrameType::kPong));
  CHECK(p.body == Encode(Ping{99}));
  CHECK(f.fx.mesh.empty());
}

TEST_CASE("an unreachable shard gets a retryable error, not silence", "[nodes]") {
  Fixture f;
  f.Login(1, "alice");
  f.up.clear();
  f.fx.Clear();
  f.Frame(1, FrameType::kSend, Encode(Send{"bob", 1, "hi"}));
  auto e = f.ErrorWritten();
  CHECK(e.code == ErrorCode::kServiceUnavailable);
  CHECK_FALSE(e.fatal);
  CHECK(f.fx.closes.empty());
}

TEST_CASE("mesh frames reach only the stamped user's connection", "[nodes]") {
  Fixture f;
  f.Login(1, "alice");
  f.fx.Clear();
  Envelope env;
  env.type = MeshType::kToClient;
  env.stamp = Stamp{"alice", "phone", 1, "gw1"};
  env.ftype = static_cast<uint8_t>(FrameType::kPush);
  env.body = "B";
  f.core.OnMesh("s1", Envelope(env), f.fx);
  REQUIRE(f.fx.writes.size() == 1);
  CHECK(f.fx.writes[0].bytes == EncodeFrame(0x05, "B"));
  f.fx.Clear();
  env.stamp.user = "mallory";  // stale or wrong stamp
  f.core.OnMesh("s1", Envelope(env), f.fx);
  env.stamp = Stamp{"alice", "phone", 99, "gw1"};  // unknown connection
  f.core.OnMesh("s1", Envelope(env), f.fx);
  CHECK(f.fx.writes.empty());
}

TEST_CASE("closing an authenticated connection tells its shard", "[nodes]") {
  Fixture f;
  f.Login(1, "alice");
  f.fx.Clear();
  f.core.OnClosed(1, f.fx);
  REQUIRE(f.fx.mesh.size() == 1);
  CHECK(f.fx.mesh[0].env.type == MeshType::kConnClose);
  CHECK(f.core.connections() == 0);
  CHECK(f.core.authenticated() == 0);
}

TEST_CASE("connections that never say hello are closed after the timeout", "[nodes]") {
  Fixture f;
  f.core.OnOpen(1);
  f.Login(2, "bob");
  f.fx.Clear();
  f.clock.Advance(9000);
  f.core.OnTick(f.fx);
  CHECK(f.fx.closes.empty());
  f.clock.Advance(2000);
  f.core.OnTick(f.fx);
  CHECK(f.fx.closes == std::vector<uint64_t>{1});
  CHECK(f.ErrorWritten().code == ErrorCode::kHelloTimeout);
}

TEST_CASE("a client whose shard never confirms is told to reconnect", "[nodes]") {
  Fixture f;
  f.core.OnOpen(1);
  f.Hello(1, f.Token("alice"));
  f.fx.Clear();
  f.clock.Advance(3001);
  f.core.OnTick(f.fx);
  CHECK(f.ErrorWritten().code == ErrorCode::kServiceUnavailable);
  CHECK(f.fx.closes == std::vector<uint64_t>{1});
}

TEST_CASE("a registration the shard refuses is fatal with its code", "[nodes]") {
  Fixture f;
  f.core.OnOpen(1);
  f.Hello(1, f.Token("alice"));
  Envelope no;
  no.type = MeshType::kConnOpened;
  no.arg = static_cast<uint64_t>(ErrorCode::kTooManyDevices);
  no.stamp = f.fx.mesh[0].env.stamp;
  f.fx.Clear();
  f.core.OnMesh("s1", std::move(no), f.fx);
  CHECK(f.ErrorWritten().code == ErrorCode::kTooManyDevices);
  CHECK(f.fx.closes == std::vector<uint64_t>{1});
}

TEST_CASE("hello while the user's shard is unreachable fails at once", "[nodes]") {
  Fixture f;
  f.up.clear();
  f.core.OnOpen(1);
  f.Hello(1, f.Token("alice"));
  CHECK(f.ErrorWritten().code == ErrorCode::kServiceUnavailable);
  CHECK(f.fx.closes == std::vector<uint64_t>{1});
  CHECK(f.fx.mesh.empty());
}

TEST_CASE("a session shard coming up gets the connections it owns re-announced", "[nodes]") {
  Fixture f;
  uint64_t conn = 1;
  for (const char* u : {"alice", "bob", "carol", "dave", "erin", "frank"}) {
    f.Login(conn++, u);
  }
  f.fx.Clear();
  f.core.OnPeerUp("s1", f.fx);
  size_t expected = 0;
  for (const char* u : {"alice", "bob", "carol", "dave", "erin", "frank"})
    expected += f.ring.Owner(u) == "s1";
  CHECK(f.fx.mesh.size() == expected);
  for (const auto& m : f.fx.mesh) {
    CHECK(m.node == "s1");
    CHECK(m.env.type == MeshType::kConnOpen);
  }
}

TEST_CASE("re-announcements repeat every tick until the shard confirms", "[nodes]") {
  Fixture f;
  f.Login(1, "alice");
  const std::string shard = f.ring.Owner("alice");
  f.fx.Clear();
  f.core.OnPeerUp(shard, f.fx);  // the shard restarted; this announcement gets lost
  REQUIRE(f.fx.mesh.size() == 1);
  f.fx.Clear();
  f.TickWithoutDigests();
  REQUIRE(f.fx.mesh.size() == 1);
  CHECK(f.fx.mesh[0].env.type == MeshType::kConnOpen);
  Envelope ok;
  ok.type = MeshType::kConnOpened;
  ok.stamp = f.fx.mesh[0].env.stamp;
  f.fx.Clear();
  f.core.OnMesh(shard, std::move(ok), f.fx);
  CHECK(f.fx.writes.empty());  // already welcomed: no second welcome
  f.TickWithoutDigests();
  CHECK(f.fx.mesh.empty());
}
