#include <catch2/catch.hpp>

#include "codec/client_messages.h"
#include "codec/envelope.h"
#include "codec/msgpack_view.h"

using namespace meshchat::codec;

TEST_CASE("envelope round trip", "[codec]") {
  Envelope e;
  e.type = MeshType::kClientFrame;
  e.incarnation = 0xdeadbeefcafe;
  e.epoch = 3;
  e.req = 77;
  e.arg = 9;
  e.key = "alice";
  e.stamp = Stamp{"alice", "phone", 12, "gw1"};
  e.link = 41;
  e.ftype = 3;
  e.body = std::string("\x83\x00binary", 8);
  Envelope out;
  REQUIRE(Decode(Encode(e), out) == DecodeStatus::kOk);
  CHECK(out == e);
}

TEST_CASE("envelope decoder rejects bad shapes", "[codec]") {
  Envelope out;
  CHECK(Decode("", out) == DecodeStatus::kMalformed);
  std::string s;
  Writer(s).Array(2).Uint(1).Uint(1);
  CHECK(Decode(s, out) == DecodeStatus::kMalformed);
  Envelope e;
  e.type = MeshType::kHeartbeat;
  std::string good = Encode(e);
  good[1] = 3;  // version 3 (an unknown one)
  CHECK(Decode(good, out) == DecodeStatus::kMalformed);
  std::string bad_type = Encode(e);
  bad_type[2] = 0x7f;  // unknown mesh type
  CHECK(Decode(bad_type, out) == DecodeStatus::kMalformed);
  std::string trailing = Encode(e) + "x";
  CHECK(Decode(trailing, out) == DecodeStatus::kMalformed);
}

TEST_CASE("node status round trip", "[codec]") {
  NodeStatus st{"gw1", "gateway", 1234, 1, 5000, 17, 3, 3, 420, 1 << 20, "accept: EMFILE"};
  NodeStatus out;
  REQUIRE(Decode(Encode(st), out) == DecodeStatus::kOk);
  CHECK(out == st);
  st.last_error.assign(kMaxErrorTextBytes + 1, 'x');  // over the limit: refused
  CHECK(Decode(Encode(st), out) == DecodeStatus::kTooLarge);
}

TEST_CASE("node status from an older node, without the optional fields", "[codec]") {
  std::string old;
  Writer(old).Map(8).Key("id").Str("s1").Key("role").Str("session").Key("pid").Uint(9);
  Writer(old).Key("epoch").Uint(1).Key("uptime_ms").Uint(5).Key("connections").Uint(2);
  Writer(old).Key("peers_up").Uint(3).Key("peers_total").Uint(4);
  NodeStatus out;
  out.msgs_per_s = 7;
  REQUIRE(Decode(old, out) == DecodeStatus::kOk);
  CHECK(out.id == "s1");
  CHECK(out.peers_total == 4);
  CHECK(out.msgs_per_s == 0);
  CHECK(out.store_bytes == 0);
  CHECK(out.last_error.empty());
  std::string bad;
  Writer(bad).Map(9).Key("id").Str("s1").Key("role").Str("session").Key("pid").Uint(9);
  Writer(bad).Key("epoch").Uint(1).Key("uptime_ms").Uint(5).Key("connections").Uint(2);
  Writer(bad).Key("peers_up").Uint(3).Key("peers_total").Uint(4).Key("store_bytes").Str("x");
  CHECK(Decode(bad, out) == DecodeStatus::kMalformed);
}
