#include "nodes/gateway/revocations.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/durable_file.h"
#include "codec/client_messages.h"

namespace meshchat::nodes {

bool Revocations::Add(const std::string& user, const std::string& device, int64_t at_s) {
  auto key = std::make_pair(user, device);
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    it->second = std::max(it->second, at_s);
    return true;
  }
  if (entries_.size() >= kMaxEntries) return false;
  entries_.emplace(std::move(key), at_s);
  return true;
}

bool Revocations::Revoked(const codec::TokenClaims& c) const {
  auto it = entries_.find({c.user, c.device});
  return it != entries_.end() && c.issued_s <= it->second;
}

void Revocations::Expire(int64_t now_s, int64_t max_token_ttl_s) {
  std::erase_if(entries_, [&](const auto& e) { return e.second + max_token_ttl_s < now_s; });
}

std::string Revocations::Serialize() const {
  std::string out;
  for (const auto& [who, at] : entries_)
    out += who.first + " " + who.second + " " + std::to_string(at) + "\n";
  return out;
}

Status Revocations::Parse(const std::string& text) {
  std::map<std::pair<std::string, std::string>, int64_t> parsed;
  std::istringstream in(text);
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    std::istringstream f(line);
    std::string user, device, at, extra;
    long long v = -1;
    if (!(f >> user >> device >> at) || (f >> extra) || !codec::IsValidId(user) ||
        !codec::IsValidId(device) || std::sscanf(at.c_str(), "%lld", &v) != 1 || v < 0 ||
        std::to_string(v) != at)
      return Status(Code::kInvalid, "revocation list line " + std::to_string(n) +
                                        ": want USER DEVICE UNIX_SECONDS");
    if (parsed.size() >= kMaxEntries)
      return Status(Code::kInvalid, "revocation list over " + std::to_string(kMaxEntries));
    auto& slot = parsed[{user, device}];
    slot = std::max<int64_t>(slot, v);
  }
  entries_ = std::move(parsed);
  return Status::Ok();
}

Status Revocations::Load(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    entries_.clear();
    return Status::Ok();
  }
  const auto size = std::filesystem::file_size(path, ec);
  if (ec || size > kMaxFileBytes)
    return Status(Code::kInvalid,
                  path + ": unreadable or over " + std::to_string(kMaxFileBytes >> 20) + " MiB");
  std::ifstream f(path);
  std::stringstream text;
  text << f.rdbuf();
  if (!f.good() && !f.eof()) return Status(Code::kIo, "cannot read " + path);
  Status s = Parse(text.str());
  return s.ok() ? s : Status(s.code(), path + ": " + s.message());
}

Status Revocations::Save(const std::string& path) const {
  // Durable before it is acknowledged: a gateway restarted after a crash must still refuse.
  return WriteFileDurably(path, Serialize(), 0600);
}

}  // namespace meshchat::nodes
