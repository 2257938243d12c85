#include "bench/proc_stats.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace meshchat::bench {

ProcUsage ReadProc(long pid) {
  ProcUsage u;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (std::getline(stat, line)) {
    // Fields after the command name, which may hold spaces: skip past the last ')'.
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::string f;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> f; ++i) {
      if (i == 14) utime = std::stoull(f);
      if (i == 15) stime = std::stoull(f);
    }
    u.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) u.rss_kb = std::stol(line.substr(6));
  return u;
}

ProcUsage Sum(const std::vector<long>& pids) {
  ProcUsage total;
  for (long p : pids) {
    ProcUsage u = ReadProc(p);
    total.cpu_s += u.cpu_s;
    total.rss_kb += u.rss_kb;
  }
  return total;
}

std::vector<long> MeshPids(const std::string& var_dir, const std::string& id_prefix) {
  std::vector<long> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(var_dir + "/run", ec)) {
    if (e.path().extension() != ".pid") continue;
    if (!id_prefix.empty() && e.path().stem().string().rfind(id_prefix, 0) != 0) continue;
    std::ifstream in(e.path());
    long pid = 0;
    if (in >> pid && pid > 0 && kill(static_cast<pid_t>(pid), 0) == 0) out.push_back(pid);
  }
  // Co-hosted nodes (meshchat-node) share one process: count it once.
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace meshchat::bench
