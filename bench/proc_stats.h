// CPU time and resident memory of processes, read from /proc, so benchmarks can report the
// server's cost next to its throughput (chats per CPU-second summed over every mesh process).
#pragma once

#include <string>
#include <vector>

namespace meshchat::bench {

struct ProcUsage {
  double cpu_s = 0;  // user + system seconds
  long rss_kb = 0;
};

ProcUsage ReadProc(long pid);
ProcUsage Sum(const std::vector<long>& pids);
// Pids from the pid files of a meshctl state directory (VAR/run/*.pid); with `role_prefix`
// only nodes whose id starts with it (e.g. "gw").
std::vector<long> MeshPids(const std::string& var_dir, const std::string& id_prefix = "");

}  // namespace meshchat::bench
