#include "codec/token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "codec/client_messages.h"
#include "codec/msgpack_view.h"

namespace meshchat::codec {
namespace {

constexpr std::string_view kPrefix = "mc1.";
constexpr size_t kMacBytes = 32;
constexpr size_t kMaxPayloadBytes = 512;

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int Sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

std::string Mac(std::string_view secret, std::string_view data) {
  return HmacSha256(secret, data);
}

}  // namespace

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len))
    return {};
  return std::string(reinterpret_cast<const char*>(out), len);
}

bool SameMac(std::string_view a, std::string_view b) {
  return a.size() == b.size() && !a.empty() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

const char* TokenStatusName(TokenStatus s) {
  switch (s) {
    case TokenStatus::kOk: return "ok";
    case TokenStatus::kMalformed: return "malformed token";
    case TokenStatus::kBadSignature: return "bad signature";
    case TokenStatus::kExpired: return "token expired";
  }
  return "?";
}

std::string Base64UrlEncode(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<unsigned char>(in[k]); };
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  if (size_t rest = in.size() - i; rest > 0) {
    uint32_t v = byte(i) << 16;
    if (rest == 2) v |= byte(i + 1) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    if (rest == 2) out.push_back(kAlphabet[(v >> 6) & 63]);
  }
  return out;
}

bool Base64UrlDecode(std::string_view in, std::string& out, size_t max_out) {
  if (in.size() % 4 == 1) return false;
  if (in.size() / 4 * 3 > max_out + 3) return false;  // bound before reserving
  out.clear();
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = Sextet(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  // Leftover bits must be zero, so every byte string has exactly one encoding.
  if ((acc & ((1u << bits) - 1)) != 0) return false;
  return out.size() <= max_out;
}

std::string SignToken(const TokenClaims& c, std::string_view secret) {
  if (secret.empty() || !IsValidId(c.user) || !IsValidId(c.device) || c.expires_s < 0) return {};
  std::string payload;
  Writer w(payload);
  w.Map(c.issued_s > 0 ? 5 : 4)
      .Key("u")
      .Str(c.user)
      .Key("d")
      .Str(c.device)
      .Key("exp")
      .Uint(static_cast<uint64_t>(c.expires_s))
      .Key("jti")
      .Uint(c.id);
  if (c.issued_s > 0) w.Key("iat").Uint(static_cast<uint64_t>(c.issued_s));
  std::string signed_part = std::string(kPrefix) + Base64UrlEncode(payload);
  return signed_part + "." + Base64UrlEncode(Mac(secret, signed_part));
}

namespace {
bool DecodeClaims(std::string_view payload, TokenClaims& c) {
  uint64_t exp = 0, iat = 0;
  DecodeStatus s = DecodeMap(payload, [&](const MapView& m) {
    MC_DECODE_TRY(ReadStr(m.Find("u"), c.user, kMaxIdBytes));
    MC_DECODE_TRY(ReadStr(m.Find("d"), c.device, kMaxIdBytes));
    MC_DECODE_TRY(ReadUint(m.Find("exp"), exp));
    MC_DECODE_TRY(ReadUint(m.Find("jti"), c.id));
    if (m.Find("iat")) MC_DECODE_TRY(ReadUint(m.Find("iat"), iat));
    return DecodeStatus::kOk;
  });
  if (s != DecodeStatus::kOk || !IsValidId(c.user) || !IsValidId(c.device) ||
      exp > static_cast<uint64_t>(INT64_MAX) || iat > static_cast<uint64_t>(INT64_MAX))
    return false;
  c.expires_s = static_cast<int64_t>(exp);
  c.issued_s = static_cast<int64_t>(iat);
  return true;
}
}  // namespace

bool ReadClaimsUnverified(std::string_view token, TokenClaims& out) {
  if (token.size() > kMaxTokenBytes || token.substr(0, kPrefix.size()) != kPrefix) return false;
  const size_t dot = token.rfind('.');
  if (dot <= kPrefix.size()) return false;
  std::string payload;
  if (!Base64UrlDecode(token.substr(kPrefix.size(), dot - kPrefix.size()), payload,
                       kMaxPayloadBytes))
    return false;
  return DecodeClaims(payload, out);
}

TokenStatus VerifyToken(std::string_view token, std::string_view secret, int64_t now_s,
                        TokenClaims& out, int64_t leeway_s) {
  if (token.size() > kMaxTokenBytes || token.substr(0, kPrefix.size()) != kPrefix)
    return TokenStatus::kMalformed;
  const size_t dot = token.rfind('.');
  if (dot < kPrefix.size()) return TokenStatus::kMalformed;
  std::string_view signed_part = token.substr(0, dot);
  std::string mac, payload;
  if (!Base64UrlDecode(token.substr(dot + 1), mac, kMacBytes) || mac.size() != kMacBytes)
    return TokenStatus::kMalformed;
  if (secret.empty()) return TokenStatus::kBadSignature;
  const std::string expect = Mac(secret, signed_part);
  if (expect.size() != kMacBytes || CRYPTO_memcmp(expect.data(), mac.data(), kMacBytes) != 0)
    return TokenStatus::kBadSignature;
  if (!Base64UrlDecode(signed_part.substr(kPrefix.size()), payload, kMaxPayloadBytes))
    return TokenStatus::kMalformed;
  TokenClaims c;
  if (!DecodeClaims(payload, c)) return TokenStatus::kMalformed;
  if (c.expires_s + leeway_s < now_s) return TokenStatus::kExpired;
  out = std::move(c);
  return TokenStatus::kOk;
}

}  // namespace meshchat::codec
