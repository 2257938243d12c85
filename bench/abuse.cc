#include "bench/abuse.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <random>

#include "bench/event_loop.h"
#include "bench/mesh_info.h"
#include "bench/proc_stats.h"
#include "codec/client_messages.h"
#include "codec/frame.h"
#include "codec/token.h"

namespace meshchat::bench {
namespace {

using codec::FrameType;

int Dial(const std::string& host, int port, bool small_buffer) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (small_buffer) {  // the kernel holds little for a client that never reads
    int sz = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host.c_str(), &a.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void WriteAll(int fd, const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// Whether the server closed the connection within `ms` (reads and discards what comes).
bool ClosedWithin(int fd, int ms) {
  timeval tv{0, 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const int64_t until = NowNs() + static_cast<int64_t>(ms) * 1'000'000;
  char buf[4096];
  while (NowNs() < until) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0) return true;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return true;  // reset
  }
  return false;
}

}  // namespace

int RunAbuse(const std::string& var, const AbuseOptions& o) {
  MeshInfo mesh;
  if (!LoadMesh(var, mesh) || mesh.gateways.empty()) return 2;
  const auto& [host, port] = mesh.gateways[0];  // every abuser on the first gateway
  std::mt19937_64 rng(42);
  auto token = [&](const std::string& user) {
    codec::TokenClaims c{user, "ab", static_cast<int64_t>(time(nullptr)) + 86400, 1};
    return codec::Encode(codec::Hello{1, codec::SignToken(c, mesh.secret)});
  };

  // Clients that never read: authenticated, then silent, on a tiny receive buffer.
  std::vector<int> sleepers;
  for (int i = 0; i < o.never_read; ++i) {
    const int fd = Dial(host, port, true);
    if (fd < 0) continue;
    WriteAll(fd, codec::EncodeFrame(static_cast<uint8_t>(FrameType::kHello),
                                    token("sleeper" + std::to_string(i))));
    sleepers.push_back(fd);
  }
  // Feeders write large messages to them as fast as their per-user limit lets them.
  FrameLoop feeders;
  feeders.SetHandlers([](size_t, uint8_t, std::string_view) {}, [](size_t) {});
  const int n_feeders = o.never_read * o.feeders_per_sleeper;
  for (int i = 0; i < n_feeders; ++i) {
    feeders.Connect(host, static_cast<uint16_t>(port));
    feeders.Send(static_cast<size_t>(i), static_cast<uint8_t>(FrameType::kHello),
                 token("feeder" + std::to_string(i)));
  }
  const std::string big(std::min<size_t>(o.feed_body, codec::kMaxBodyBytes), 'b');

  const std::vector<long> gateway = MeshPids(var, "gw1");
  const long rss_before = Sum(gateway).rss_kb;
  long rss_max = rss_before;
  uint64_t garbage = 0, cut = 0, lingered = 0, fed = 0, cid = 1;
  const int64_t end = NowNs() + static_cast<int64_t>(o.seconds * 1e9);
  int64_t next_feed = NowNs(), next_rss = NowNs(), next_garbage = NowNs();
  while (NowNs() < end) {
    const int64_t now = NowNs();
    if (now >= next_feed) {  // 20 feeds a second per feeder: under its 50/s limit
      for (int i = 0; i < n_feeders; ++i) {
        const std::string to = "sleeper" + std::to_string(i % std::max(1, o.never_read));
        feeders.Send(static_cast<size_t>(i), static_cast<uint8_t>(FrameType::kSend),
                     codec::Encode(codec::Send{to, cid++, big}));
        ++fed;
      }
      next_feed = now + 50'000'000;
    }
    feeders.Poll(0);
    // Garbage: a hello of random bytes, a header declaring 4 GiB, or an unknown frame type; each
    // connection must be cut at once.
    for (; next_garbage <= now; next_garbage += static_cast<int64_t>(1e9 / o.garbage_rate)) {
      const int fd = Dial(host, port, false);
      if (fd < 0) continue;
      std::string junk;
      switch (garbage % 3) {
        case 0: {  // a hello whose body is random bytes
          std::string body(64, '\0');
          for (char& c : body) c = static_cast<char>(rng());
          junk = codec::EncodeFrame(static_cast<uint8_t>(FrameType::kHello), body);
          break;
        }
        case 1: junk = std::string("\xff\xff\xff\xff\x02", 5) + std::string(1000, 'x'); break;
        default: junk = codec::EncodeFrame(0xEE, std::string(100, 'z')); break;
      }
      WriteAll(fd, junk);
      ++garbage;
      if (ClosedWithin(fd, 500))
        ++cut;
      else
        ++lingered;
      close(fd);
    }
    usleep(1000);
    if (now >= next_rss) {
      rss_max = std::max(rss_max, Sum(gateway).rss_kb);
      next_rss = now + 200'000'000;
    }
  }
  rss_max = std::max(rss_max, Sum(gateway).rss_kb);
  // Were the sleepers cut off (slow consumer)? A closed socket reads 0 or fails once drained.
  int sleepers_cut = 0;
  for (int fd : sleepers) {
    if (ClosedWithin(fd, 2000)) ++sleepers_cut;
    close(fd);
  }
  std::cout << "result workload=abuse seconds=" << o.seconds << " garbage_conns=" << garbage
            << " garbage_cut=" << cut << " garbage_lingered=" << lingered
            << " never_read_conns=" << sleepers.size() << " never_read_cut=" << sleepers_cut
            << " fed_messages=" << fed << " fed_bytes=" << fed * big.size()
            << " gateway_rss_kb_before=" << rss_before << " gateway_rss_kb_max=" << rss_max
            << std::endl;
  return lingered == 0 ? 0 : 1;
}

int RunUnauth(const std::string& var, const UnauthOptions& o) {
  MeshInfo mesh;
  if (!LoadMesh(var, mesh) || mesh.gateways.empty()) return 2;
  const auto& [host, port] = mesh.gateways[0];
  const std::vector<long> gateway = MeshPids(var, "gw1");
  const long rss_before = Sum(gateway).rss_kb;
  long rss_max = rss_before;
  // The start of one hello frame declaring `frame` bytes: sent up to `fill` bytes, never done.
  const std::string start =
      codec::EncodeFrame(static_cast<uint8_t>(FrameType::kHello), std::string(o.frame, 'h'))
          .substr(0, 4 + 1 + std::min(o.fill, o.frame));
  struct Stranger {
    int fd;
    size_t off = 0;
    bool cut = false;
  };
  std::vector<Stranger> strangers;
  for (int i = 0; i < o.conns; ++i) {
    const int fd = Dial(host, port, false);
    if (fd < 0) continue;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    strangers.push_back({fd});
  }
  auto sample = [&] { rss_max = std::max(rss_max, Sum(gateway).rss_kb); };
  const int64_t send_end = NowNs() + 5'000'000'000;
  int64_t next_rss = NowNs();
  for (bool busy = true; busy && NowNs() < send_end;) {
    busy = false;
    for (auto& c : strangers) {
      if (c.cut || c.off == start.size()) continue;
      const ssize_t n = send(c.fd, start.data() + c.off, start.size() - c.off, MSG_NOSIGNAL);
      if (n > 0) c.off += static_cast<size_t>(n);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) c.cut = true;
      busy = busy || (!c.cut && c.off < start.size());
    }
    if (NowNs() >= next_rss) {
      sample();
      next_rss = NowNs() + 50'000'000;
    }
    usleep(500);
  }
  for (const int64_t hold_end = NowNs() + static_cast<int64_t>(o.hold_seconds * 1e9);
       NowNs() < hold_end; usleep(100'000))
    sample();
  const long rss_held = Sum(gateway).rss_kb;
  size_t cut = 0, sent = 0;
  char buf[512];
  for (auto& c : strangers) {  // closed by the gateway: after its error frame, reads 0 or fails
    ssize_t n;
    while ((n = recv(c.fd, buf, sizeof buf, 0)) > 0) {
    }
    if (c.cut || n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) ++cut;
    sent += c.off;
    close(c.fd);
  }
  usleep(1'000'000);
  std::cout << "result workload=unauth conns=" << strangers.size() << " frame=" << o.frame
            << " fill=" << o.fill << " bytes_sent=" << sent << " cut=" << cut
            << " gateway_rss_kb_before=" << rss_before << " gateway_rss_kb_max=" << rss_max
            << " gateway_rss_kb_held=" << rss_held
            << " gateway_rss_kb_after_close=" << Sum(gateway).rss_kb << std::endl;
  return 0;
}

}  // namespace meshchat::bench
