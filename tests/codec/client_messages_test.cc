#include <catch2/catch.hpp>

#include "tests/codec/round_trip.h"

#include "codec/client_messages.h"
#include "codec/msgpack_view.h"

using namespace meshchat::codec;

using meshchat::test::RoundTrip;

TEST_CASE("every client message round-trips", "[codec]") {
  RoundTrip(Hello{1, "mc1.token.sig"});
  RoundTrip(Welcome{"alice", "phone", 42, "gw1", 1700000000000});
  RoundTrip(Send{"bob", 7, std::string("bin\0ary", 7)});
  RoundTrip(Sent{7, "bob", 99, 1700000000000});
  RoundTrip(Push{12, "alice", "alice", "phone", 99, 7, 1700000000000, "hi", "", false});
  RoundTrip(Ack{12});
  RoundTrip(Receipt{13, "bob", ReceiptKind::kRead, 99});
  RoundTrip(Receipt{14, "bob", ReceiptKind::kExpired, 3});
  RoundTrip(Read{"alice", 99});
  RoundTrip(Ping{123456});
  RoundTrip(Bye{"shutting_down"});
  RoundTrip(Error{ErrorCode::kBadToken, "invalid token", std::nullopt, true});
  RoundTrip(Error{ErrorCode::kRecipientUnavailable, "offline", 7, false});
}

TEST_CASE("decoders reject missing and mistyped fields", "[codec]") {
  Send s;
  std::string body;
  Writer(body).Map(2).Key("to").Str("bob").Key("cid").Uint(1);  // no body
  CHECK(Decode(body, s) == DecodeStatus::kMalformed);
  body.clear();
  Writer(body).Map(3).Key("to").Uint(5).Key("cid").Uint(1).Key("body").Str("x");
  CHECK(Decode(body, s) == DecodeStatus::kMalformed);
  body.clear();
  Writer(body).Array(1).Uint(1);  // not a map
  CHECK(Decode(body, s) == DecodeStatus::kMalformed);
  CHECK(Decode("", s) == DecodeStatus::kMalformed);
  CHECK(Decode(std::string("\xc1"), s) == DecodeStatus::kMalformed);  // never-used byte
}

TEST_CASE("decoders accept str bodies and ignore unknown keys", "[codec]") {
  std::string body;
  Writer(body).Map(4).Key("to").Str("bob").Key("x").Uint(9).Key("cid").Uint(3).Key("body").Str(
      "text");
  Send s;
  REQUIRE(Decode(body, s) == DecodeStatus::kOk);
  CHECK(s == Send{"bob", 3, "text"});
}

TEST_CASE("receipt kinds are the documented strings", "[codec]") {
  std::string body;
  Writer(body).Map(4).Key("n").Uint(1).Key("chat").Str("b").Key("kind").Str("seen").Key("seq").Uint(
      1);
  Receipt r;
  CHECK(Decode(body, r) == DecodeStatus::kMalformed);
}

TEST_CASE("field limits are enforced", "[codec]") {
  Send s;
  CHECK(Decode(Encode(Send{"bob", 1, std::string(kMaxBodyBytes + 1, 'x')}), s) ==
        DecodeStatus::kTooLarge);
  CHECK(Decode(Encode(Send{std::string(65, 'u'), 1, "x"}), s) == DecodeStatus::kTooLarge);
  Hello h;
  CHECK(Decode(Encode(Hello{1, std::string(kMaxTokenBytes + 1, 't')}), h) ==
        DecodeStatus::kTooLarge);
}

TEST_CASE("hostile sizes and nesting never allocate or throw", "[codec]") {
  Send s;
  // map32 declaring 4 billion entries, in 5 bytes.
  CHECK(Decode(std::string("\xdf\xff\xff\xff\xff", 5), s) != DecodeStatus::kOk);
  // array32 with 4 billion elements.
  CHECK(Decode(std::string("\xdd\xff\xff\xff\xff", 5), s) != DecodeStatus::kOk);
  // str32 / bin32 claiming 4 GiB.
  CHECK(Decode(std::string("\x81\xa2to\xdb\xff\xff\xff\xff", 9), s) != DecodeStatus::kOk);
  CHECK(Decode(std::string("\x81\xa2to\xc6\xff\xff\xff\xff", 9), s) != DecodeStatus::kOk);
  // Deep nesting: 100 nested arrays. Not of the schema (malformed), not a field over a size
  // limit: the answer must not blame the body's size.
  std::string deep(100, '\x91');
  deep.push_back('\x01');
  CHECK(Decode(deep, s) == DecodeStatus::kMalformed);
  // Trailing bytes after a valid map.
  std::string body = Encode(Send{"bob", 1, "x"}) + "z";
  CHECK(Decode(body, s) == DecodeStatus::kMalformed);
}

TEST_CASE("ids are validated", "[codec]") {
  CHECK(IsValidId("alice"));
  CHECK(IsValidId("a.b-c_d@e"));
  CHECK_FALSE(IsValidId(""));
  CHECK_FALSE(IsValidId("has space"));
  CHECK_FALSE(IsValidId(std::string(65, 'a')));
  CHECK_FALSE(IsValidId(std::string("nul\0x", 5)));
  CHECK_FALSE(IsValidId("üser"));
}
