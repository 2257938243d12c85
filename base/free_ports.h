// TCP ports to bind on loopback: free a moment ago, distinct, below the kernel's ephemeral
// range (net.ipv4.ip_local_port_range), and not handed to another meshchat process within the
// last two minutes. A port the kernel picked (bind to 0) lies in the range it also hands out
// to outgoing connections, so between choosing it and the node binding it any process's
// connect() may take it; and two meshes started at once (tests run two at a time) must not
// pick the same ports, which random choice alone does often enough to fail CI. So choices go
// through a small registry, /tmp/meshchat-ports (flock'ed): ports recently given out are
// skipped. A port is free only if nothing listens or is bound there now.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace meshchat {

inline std::vector<uint16_t> FreeListenPorts(size_t n) {
  // The registry: "port unix-seconds" lines, under an exclusive lock for the whole choice.
  constexpr int64_t kKeepS = 120;
  const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  const int lock = open("/tmp/meshchat-ports", O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (lock >= 0) flock(lock, LOCK_EX);
  std::map<uint16_t, int64_t> recent;
  if (lock >= 0) {
    std::string text;
    char buf[4096];
    ssize_t got;
    while ((got = pread(lock, buf, sizeof buf, static_cast<off_t>(text.size()))) > 0 &&
           text.size() < (1u << 20))
      text.append(buf, static_cast<size_t>(got));
    std::istringstream in(text);
    unsigned port = 0;
    int64_t at = 0;
    while (in >> port >> at)
      if (port < 65536 && now_s - at < kKeepS) recent[static_cast<uint16_t>(port)] = at;
  }
  unsigned low = 32768, high = 60999;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> low >> high;
  const unsigned first = 10000, last = low > first + 1000 ? low - 1 : 0;
  std::mt19937 rng(std::random_device{}());
  std::vector<int> fds;
  std::vector<uint16_t> ports;
  std::set<uint16_t> taken;
  auto try_bind = [&](uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    int one = 1;  // as ZeroMQ and httplib bind: a port in TIME_WAIT is usable
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    socklen_t len = sizeof a;
    if ((port != 0 && recent.count(port)) ||
        bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0 ||
        !taken.insert(ntohs(a.sin_port)).second) {
      close(fd);
      return false;
    }
    ports.push_back(ntohs(a.sin_port));
    fds.push_back(fd);  // held open until all are chosen, so they differ
    return true;
  };
  for (size_t i = 0; i < n; ++i) {
    bool ok = false;
    for (int attempt = 0; !ok && last != 0 && attempt < 200; ++attempt)
      ok = try_bind(
          static_cast<uint16_t>(std::uniform_int_distribution<unsigned>(first, last)(rng)));
    if (!ok) try_bind(0);  // no room below the range: the kernel's choice
  }
  for (int fd : fds) close(fd);
  if (lock >= 0) {
    for (uint16_t p : ports) recent[p] = now_s;
    std::string out;
    for (const auto& [p, at] : recent) out += std::to_string(p) + " " + std::to_string(at) + "\n";
    if (ftruncate(lock, 0) == 0) (void)!pwrite(lock, out.data(), out.size(), 0);
    (void)fchmod(lock, 0666);  // every user's meshes share it
    flock(lock, LOCK_UN);
    close(lock);
  }
  return ports;
}

}  // namespace meshchat
