#include <catch2/catch.hpp>

#include "codec/token.h"

using namespace meshchat::codec;

namespace {
const std::string kSecret = "0123456789abcdef0123456789abcdef";
const int64_t kNow = 1'700'000'000;
}  // namespace

TEST_CASE("base64url round trip and strictness", "[codec]") {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00"}) {
    std::string out;
    REQUIRE(Base64UrlDecode(Base64UrlEncode(s), out, 100));
    CHECK(out == s);
  }
  std::string out;
  CHECK(Base64UrlEncode("\xfb\xff") == "-_8");
  CHECK_FALSE(Base64UrlDecode("ab=c", out, 100));  // padding is not part of the alphabet
  CHECK_FALSE(Base64UrlDecode("a", out, 100));     // impossible length
  CHECK_FALSE(Base64UrlDecode("AF", out, 100));    // non-zero leftover bits
  CHECK_FALSE(Base64UrlDecode(std::string(400, 'A'), out, 16));  // over the output cap
}

TEST_CASE("a signed token verifies and yields its claims", "[codec]") {
  TokenClaims c{"alice", "phone", kNow + 60, 42};
  std::string t = SignToken(c, kSecret);
  REQUIRE(t.rfind("mc1.", 0) == 0);
  TokenClaims out;
  REQUIRE(VerifyToken(t, kSecret, kNow, out) == TokenStatus::kOk);
  CHECK(out == c);
}

TEST_CASE("tampered, foreign and expired tokens are refused", "[codec]") {
  TokenClaims c{"alice", "phone", kNow + 60, 42};
  std::string t = SignToken(c, kSecret);
  TokenClaims out;
  CHECK(VerifyToken(t, "another-secret-of-some-length", kNow, out) == TokenStatus::kBadSignature);
  // Swap in bob's payload under alice's signature.
  std::string bob = SignToken({"bob", "phone", kNow + 60, 42}, kSecret);
  std::string forged = bob.substr(0, bob.rfind('.')) + t.substr(t.rfind('.'));
  CHECK(VerifyToken(forged, kSecret, kNow, out) == TokenStatus::kBadSignature);
  for (size_t i = 4; i < t.size(); i += 7) {
    std::string x = t;
    x[i] = x[i] == 'A' ? 'B' : 'A';
    CHECK(VerifyToken(x, kSecret, kNow, out) != TokenStatus::kOk);
  }
  CHECK(VerifyToken(t, kSecret, kNow + 60 + 31, out) == TokenStatus::kExpired);
  CHECK(VerifyToken(t, kSecret, kNow + 60 + 29, out) == TokenStatus::kOk);  // within leeway
  CHECK(VerifyToken("", kSecret, kNow, out) == TokenStatus::kMalformed);
  CHECK(VerifyToken("mc1.", kSecret, kNow, out) == TokenStatus::kMalformed);
  CHECK(VerifyToken("mc2.a.b", kSecret, kNow, out) == TokenStatus::kMalformed);
  CHECK(VerifyToken(std::string(5000, 'x'), kSecret, kNow, out) == TokenStatus::kMalformed);
}

TEST_CASE("tokens are not minted for invalid claims", "[codec]") {
  CHECK(SignToken({"", "d", kNow, 1}, kSecret).empty());
  CHECK(SignToken({"a b", "d", kNow, 1}, kSecret).empty());
  CHECK(SignToken({"a", "d", kNow, 1}, "").empty());
}

TEST_CASE("a token carries when it was signed - tokens without it read as 0", "[codec][security]") {
  TokenClaims c{"alice", "phone", kNow + 60, 42, kNow};
  TokenClaims out;
  REQUIRE(VerifyToken(SignToken(c, kSecret), kSecret, kNow, out) == TokenStatus::kOk);
  CHECK(out.issued_s == kNow);
  TokenClaims old{"alice", "phone", kNow + 60, 42};  // signed before "iat" existed
  REQUIRE(VerifyToken(SignToken(old, kSecret), kSecret, kNow, out) == TokenStatus::kOk);
  CHECK(out.issued_s == 0);
}
