// Access tokens: `mc1.<payload>.<signature>`, both parts base64url without padding.
// payload   = msgpack map {"u": user, "d": device, "exp": unix seconds, "jti": uint}
// signature = HMAC-SHA256(cluster secret, "mc1." + payload part)
// Clients treat tokens as opaque strings; only gateways and meshctl look inside.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace meshchat::codec {

struct TokenClaims {
  std::string user;
  std::string device;
  int64_t expires_s = 0;  // unix seconds
  uint64_t id = 0;        // unique token id
  int64_t issued_s = 0;   // unix seconds it was signed ("iat"; 0 in tokens that predate it)
  bool operator==(const TokenClaims&) const = default;
};

enum class TokenStatus { kOk, kMalformed, kBadSignature, kExpired };
const char* TokenStatusName(TokenStatus s);

// Returns "" if a claim is invalid (ids must pass IsValidId) or the secret is empty.
std::string SignToken(const TokenClaims& claims, std::string_view secret);

// Checks format, size limits and signature (constant-time compare) before trusting any claim,
// then expiry against `now_s` with `leeway_s` of allowed clock skew.
TokenStatus VerifyToken(std::string_view token, std::string_view secret, int64_t now_s,
                        TokenClaims& out, int64_t leeway_s = 30);

// The claims of a token without checking its signature: for a client to learn whose token it
// holds (e.g. to find its local history). Never use this to authenticate.
bool ReadClaimsUnverified(std::string_view token, TokenClaims& out);

std::string Base64UrlEncode(std::string_view in);
// HMAC-SHA256 (32 raw bytes), and a constant-time comparison of two MACs (false if empty).
std::string HmacSha256(std::string_view key, std::string_view data);
bool SameMac(std::string_view a, std::string_view b);
// False on a character outside the alphabet, impossible length, or output over `max_out`.
bool Base64UrlDecode(std::string_view in, std::string& out, size_t max_out);

}  // namespace meshchat::codec
