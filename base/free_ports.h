// TCP ports to bind on loopback: free a moment ago, distinct, and below the kernel's
// ephemeral range (net.ipv4.ip_local_port_range). A port the kernel picked for us (bind to 0)
// lies in the range it also hands out to outgoing connections, so between choosing it and the
// node binding it, any process's connect() may take it: a rare "address in use" when tests
// or benchmarks with thousands of client connections run beside a starting mesh.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <random>
#include <set>
#include <vector>

namespace meshchat {

inline std::vector<uint16_t> FreeListenPorts(size_t n) {
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
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
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
  return ports;
}

}  // namespace meshchat
