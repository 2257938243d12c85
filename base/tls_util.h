// Small helpers shared by the TLS code of the gateway, meshctl's development certificates and
// the client library (all of which link OpenSSL).
#pragma once

#include <arpa/inet.h>
#include <openssl/err.h>

#include <string>

namespace meshchat {

// The OpenSSL error queue as one line (and cleared), for logs and errors.
inline std::string TakeSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no detail" : out;
}

// An IPv4 or IPv6 address (a certificate names it as IP:, not DNS:).
inline bool IsIpAddress(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace meshchat
