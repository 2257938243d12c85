// Token parsing: arbitrary strings never crash the verifier; base64url decoding round-trips.
#include <cstdint>
#include <string>

#include "codec/token.h"
#include "tests/fuzz/fuzz_check.h"

using namespace meshchat::codec;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  TokenClaims claims;
  const auto st = VerifyToken(in, "fuzz-secret-0123456789abcdef", 1'700'000'000, claims);
  // Without the secret nothing can verify, except by forging HMAC-SHA256.
  FUZZ_CHECK(st != TokenStatus::kOk && st != TokenStatus::kExpired);
  std::string bytes;
  if (Base64UrlDecode(in, bytes, 4096)) FUZZ_CHECK(Base64UrlEncode(bytes) == in);
  return 0;
}
