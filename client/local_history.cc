#include "client/local_history.h"

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

void LocalHistory::Append(const codec::Push& p) {
  std::error_code ec;
  std::filesystem::create_directories(DefaultDir(), ec);
  std::ofstream out(base_ + ".history", std::ios::app);
  out << p.ts << '\t' << p.chat << '\t' << p.from << '\t' << p.seq << '\t' << Escape(p.body)
      << '\n';
}

std::vector<HistoryLine> LocalHistory::Read(const std::string& with) const {
  std::vector<HistoryLine> out;
  std::ifstream in(base_ + ".history");
  std::string line;
  while (std::getline(in, line)) {
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
