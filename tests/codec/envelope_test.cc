#include <catch2/catch.hpp>

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
  good[1] = 2;  // version 2
  CHECK(Decode(good, out) == DecodeStatus::kMalformed);
  std::string bad_type = Encode(e);
  bad_type[2] = 0x7f;  // unknown mesh type
  CHECK(Decode(bad_type, out) == DecodeStatus::kMalformed);
  std::string trailing = Encode(e) + "x";
  CHECK(Decode(trailing, out) == DecodeStatus::kMalformed);
}

TEST_CASE("node status round trip", "[codec]") {
  NodeStatus st{"gw1", "gateway", 1234, 1, 5000, 17, 3, 3};
  NodeStatus out;
  REQUIRE(Decode(Encode(st), out) == DecodeStatus::kOk);
  CHECK(out == st);
}
