#include "client/local_history.h"

#include "codec/media_messages.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace meshchat::client {
namespace {

std::string Escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '\\')
      o += "\\\\";
    else if (c == '\t')
      o += "\\t";
    else if (c == '\n')
      o += "\\n";
    else
      o.push_back(c);
  }
  return o;
}

std::string Unescape(const std::string& s) {
  std::string o;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char n = s[++i];
      o.push_back(n == 't' ? '\t' : n == 'n' ? '\n' : n);
    } else {
      o.push_back(s[i]);
    }
  }
  return o;
}

}  // namespace

std::string LocalHistory::DefaultDir() {
  const char* home = std::getenv("MESHCHAT_HOME");
  return (home && *home ? std::string(home) : std::string(".")) + "/var/client";
}

LocalHistory::LocalHistory(const std::string& user, const std::string& device)
    : base_(DefaultDir() + "/" + user + "." + device) {}

void LocalHistory::SaveMedia(const codec::MediaRef& r) const {
  std::error_code ec;
  std::filesystem::create_directories(DefaultDir(), ec);
  std::ofstream out(base_ + ".media", std::ios::app);
  out << codec::HexOf(r.id) << '\t' << r.size << '\t' << r.type << '\t' << codec::HexOf(r.sha256)
      << '\t' << codec::HexOf(r.ticket) << '\n';
}

std::optional<codec::MediaRef> LocalHistory::FindMedia(const std::string& id_hex) const {
  std::ifstream in(base_ + ".media");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, size, type, sha, ticket;
    if (!std::getline(ls, id, '\t') || id != id_hex || !std::getline(ls, size, '\t') ||
        !std::getline(ls, type, '\t') || !std::getline(ls, sha, '\t') || !std::getline(ls, ticket))
      continue;
    codec::MediaRef r;
    r.size = std::strtoull(size.c_str(), nullptr, 10);
    r.type = type;
    if (codec::UnHex(id, r.id, codec::kMediaIdBytes) &&
        codec::UnHex(sha, r.sha256, codec::kSha256Bytes) &&
        codec::UnHex(ticket, r.ticket, codec::kSha256Bytes))
      return r;
  }
  return std::nullopt;
}

void LocalHistory::Append(const codec::Push& p) {
  std::error_code ec;
  std::filesystem::create_directories(DefaultDir(), ec);
  if (p.media) SaveMedia(*p.media);
  std::ofstream out(base_ + ".history", std::ios::app);
  out << p.ts << '\t' << p.chat << '\t' << p.from << '\t' << p.seq << '\t' << Escape(p.body);
  if (p.exp) out << '\t' << p.exp;  // a disappearing message: deleted from here at that time
  out << '\n';
}

std::vector<HistoryLine> LocalHistory::Read(const std::string& with, uint64_t now_ms) const {
  std::vector<HistoryLine> out;
  std::vector<std::string> keep;  // every line still alive, to rewrite the file without the rest
  bool vanished = false;
  std::ifstream in(base_ + ".history");
  std::string line;
  while (std::getline(in, line)) {
    // The body is escaped (no raw tabs), so a tab after it starts the optional expiry.
    const size_t cut = line.rfind('\t');
    size_t tabs = 0;
    for (char ch : line) tabs += ch == '\t' ? 1 : 0;
    if (tabs == 5) {
      const uint64_t exp = std::strtoull(line.c_str() + cut + 1, nullptr, 10);
      if (exp != 0 && exp <= now_ms) {
        vanished = true;
        continue;
      }
      keep.push_back(line);
      line.resize(cut);
    } else {
      keep.push_back(line);
    }
    std::istringstream ls(line);
    HistoryLine h;
    std::string ts, seq;
    if (!std::getline(ls, ts, '\t') || !std::getline(ls, h.chat, '\t') ||
        !std::getline(ls, h.from, '\t') || !std::getline(ls, seq, '\t'))
      continue;
    std::getline(ls, h.body);
    h.body = Unescape(h.body);
    h.ts = std::strtoull(ts.c_str(), nullptr, 10);
    h.seq = std::strtoull(seq.c_str(), nullptr, 10);
    if (with.empty() || h.chat == with) out.push_back(std::move(h));
  }
  if (vanished) {  // disappearing messages are deleted on the device too, not just hidden
    in.close();
    const std::string tmp = base_ + ".history.tmp";
    {
      std::ofstream o(tmp, std::ios::trunc);
      for (const auto& l : keep) o << l << '\n';
    }
    std::error_code ec;
    std::filesystem::rename(tmp, base_ + ".history", ec);
  }
  return out;
}

uint64_t LocalHistory::LastN() const {
  std::ifstream in(base_ + ".state");
  uint64_t n = 0;
  in >> n;
  return n;
}

void LocalHistory::SaveLastN(uint64_t n) const {
  std::error_code ec;
  std::filesystem::create_directories(DefaultDir(), ec);
  const std::string tmp = base_ + ".state.tmp";
  std::ofstream(tmp) << n << "\n";
  std::filesystem::rename(tmp, base_ + ".state", ec);
}

}  // namespace meshchat::client
