#include "codec/replication_messages.h"

#include <catch2/catch.hpp>

#include "codec/msgpack_view.h"
#include "tests/codec/round_trip.h"

using namespace meshchat::codec;

TEST_CASE("replication batches round-trip: writes of every kind, parts and copies", "[codec]") {
  ReplBatch b{7, 42, 0, true, false, {}};
  meshchat::test::RoundTrip(b);  // a batch with no writes (a read-only turn is never sent,
                                 // but an empty copy is)
  b.writes.push_back({ReplWrite::Kind::kPut, "inbox", std::string("k\0\xff", 3), "value"});
  b.writes.push_back({ReplWrite::Kind::kPut, "t", "", ""});  // empty key and value
  b.writes.push_back({ReplWrite::Kind::kDel, "outbox", "s2", ""});
  meshchat::test::RoundTrip(b);
  b = ReplBatch{7, 0, 3, false, true, {{ReplWrite::Kind::kClear, "", "", ""}}};
  meshchat::test::RoundTrip(b);  // a copy may start before batch 1
  b.writes.front().value.clear();
  b.writes.push_back({ReplWrite::Kind::kPut, "big", "k", std::string(600'000, 'x')});
  meshchat::test::RoundTrip(b);
  CHECK(EncodedSize(b.writes.back()) >= 600'004);
}

TEST_CASE("replication batches: limits and malformed input are refused", "[codec]") {
  ReplBatch out;
  auto encode = [](auto fill) {
    std::string s;
    Writer w(s);
    fill(w);
    return s;
  };
  auto with_write = [&](auto put_write) {
    return encode([&](Writer& w) {
      w.Map(6).Key("term").Uint(1).Key("seq").Uint(1).Key("part").Uint(0);
      w.Key("last").Bool(true).Key("copy").Bool(false).Key("writes").Array(1);
      put_write(w);
    });
  };
  CHECK(Decode(with_write([](Writer& w) { w.Array(3).Uint(9).Str("t").Bin("k"); }), out) ==
        DecodeStatus::kMalformed);  // unknown kind
  CHECK(Decode(with_write([](Writer& w) { w.Array(3).Uint(1).Str("t").Bin("k"); }), out) ==
        DecodeStatus::kMalformed);  // a put without a value
  CHECK(Decode(with_write([](Writer& w) { w.Array(4).Uint(2).Str("t").Bin("k").Bin("v"); }),
               out) == DecodeStatus::kMalformed);  // a delete with one
  CHECK(Decode(with_write([](Writer& w) { w.Array(3).Uint(2).Str("").Bin("k"); }), out) ==
        DecodeStatus::kMalformed);  // no table
  CHECK(Decode(with_write([](Writer& w) { w.Array(3).Uint(3).Str("t").Bin(""); }), out) ==
        DecodeStatus::kMalformed);  // a clear names no table
  CHECK(
      Decode(with_write([](Writer& w) { w.Array(3).Uint(2).Str(std::string("a\0b", 3)).Bin(""); }),
             out) == DecodeStatus::kMalformed);  // '\0' would split the row key
  CHECK(Decode(with_write([](Writer& w) { w.Array(3).Uint(2).Str(std::string(65, 't')).Bin(""); }),
               out) == DecodeStatus::kTooLarge);
  CHECK(Decode(with_write([](Writer& w) {
                 w.Array(3).Uint(2).Str("t").Bin(std::string(kMaxReplKeyBytes + 1, 'k'));
               }),
               out) == DecodeStatus::kTooLarge);
  // Term 0 is no primary's; batch 0 exists only as a copy's starting point.
  CHECK(Decode(Encode(ReplBatch{0, 1, 0, true, false, {}}), out) == DecodeStatus::kMalformed);
  CHECK(Decode(Encode(ReplBatch{1, 0, 0, true, false, {}}), out) == DecodeStatus::kMalformed);
  CHECK(Decode(std::string("\xdd\xff\xff\xff\xff", 5), out) != DecodeStatus::kOk);
  CHECK(Decode(std::string(kMaxEnvelopeBody + 1, '\x90'), out) == DecodeStatus::kTooLarge);
  const std::string many = encode([](Writer& w) {
    w.Map(6).Key("term").Uint(1).Key("seq").Uint(1).Key("part").Uint(0);
    w.Key("last").Bool(true).Key("copy").Bool(false).Key("writes").Array(kMaxReplWrites + 1);
    for (size_t i = 0; i <= kMaxReplWrites; ++i) w.Array(3).Uint(2).Str("t").Bin("k");
  });
  CHECK(Decode(many, out) == DecodeStatus::kTooLarge);
}
