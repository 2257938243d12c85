// The cluster secret file (`var/cluster.secret`, PROTOCOL.md section 8): line 1 is the secret
// that signs tokens (its text is the HMAC key), line 2, when present, the previous secret while
// one is rotated out (accepted, never used to sign). Read by every gateway at start-up and
// written by the operator tool.
#pragma once

#include <openssl/rand.h>

#include <cctype>
#include <fstream>
#include <string>

#include "base/durable_file.h"
#include "base/status.h"

namespace meshchat {

// Line `line` (0: the secret, 1: the previous one) without trailing whitespace; the secret
// must have at least 16 characters; a missing previous secret is "".
inline Result<std::string> ReadSecret(const std::string& path, int line = 0) {
  std::ifstream in(path);
  std::string s;
  for (int i = 0; i <= line; ++i)
    if (!std::getline(in, s)) s.clear();
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  if (line > 0 && s.empty()) return s;  // no previous secret
  if (s.size() < 16) return Status(Code::kInvalid, "no usable secret in " + path);
  return s;
}

// 32 random bytes as 64 lowercase hex characters.
inline Result<std::string> NewSecret() {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) return Status(Code::kIo, "no randomness for the secret");
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned char c : raw) {
    s.push_back(hex[c >> 4]);
    s.push_back(hex[c & 15]);
  }
  return s;
}

// Replaces the file in one rename (a node starting during a rotation reads the old or the new
// file), mode 0600.
inline Status WriteSecret(const std::string& path, const std::string& secret,
                          const std::string& previous = "") {
  return WriteFileDurably(path, secret + "\n" + (previous.empty() ? "" : previous + "\n"), 0600);
}

}  // namespace meshchat
