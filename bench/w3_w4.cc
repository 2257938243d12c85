// W3: idle authenticated connections, and what each costs the gateways in memory.
// W4: a reconnect storm: N clients with messages waiting reconnect at once; how long until all
// are back and have drained their inboxes.
#include "bench/w3_w4.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <random>

#include "bench/event_loop.h"
#include "bench/histogram.h"
#include "bench/mesh_info.h"
#include "bench/proc_stats.h"
#include "codec/client_messages.h"
#include "codec/token.h"

namespace meshchat::bench {
namespace {

using codec::FrameType;

std::string HelloBody(const MeshInfo& m, const std::string& user) {
  codec::TokenClaims c{user, "lg", static_cast<int64_t>(time(nullptr)) + 86400, 1};
  return codec::Encode(codec::Hello{1, codec::SignToken(c, m.secret)});
}

std::string RunId() {
  std::random_device rd;
  return std::to_string(rd() % 1000000);
}

// Opens `n` authenticated connections; returns how many got their welcome.
size_t OpenIdle(FrameLoop& loop, const MeshInfo& m, const std::string& prefix, size_t first,
                size_t n) {
  size_t welcomed = 0;
  if (m.tls && !loop.EnableTls(m.ca_file)) return 0;
  loop.SetHandlers(
      [&](size_t, uint8_t t, std::string_view) {
        if (t == static_cast<uint8_t>(FrameType::kWelcome)) ++welcomed;
      },
      nullptr);
  for (size_t i = 0; i < n; ++i) {
    const auto& [host, port] = m.gateways[(first + i) % m.gateways.size()];
    int c = loop.Connect(host, static_cast<uint16_t>(port));
    if (c < 0) break;
    loop.Send(static_cast<size_t>(c), static_cast<uint8_t>(FrameType::kHello),
              HelloBody(m, prefix + std::to_string(first + i)));
    if (i % 500 == 499) loop.Poll(0);  // do not let a burst of connects overflow backlogs
  }
  const int64_t deadline = NowNs() + 120'000'000'000LL;
  while (welcomed < n && NowNs() < deadline) loop.Poll(20);
  return welcomed;
}

}  // namespace

// Each process opens its share in two halves; the gateways' RSS is read before, between and
// after. The second half's cost per connection is the marginal (steady-state) figure: the
// first half also pays one-time growth (hash tables, allocator arenas, ZeroMQ queue chunks).
int RunW3(const std::string& var, size_t conns, int procs) {
  MeshInfo m;
  if (!LoadMesh(var, m)) return 2;
  const auto gw_pids = MeshPids(var, "gw");
  const ProcUsage before = Sum(gw_pids);
  const std::string prefix = "idle" + RunId() + "-";
  std::vector<pid_t> kids;
  std::vector<int> ready_fds, go_fds;
  const size_t per = (conns + static_cast<size_t>(procs) - 1) / static_cast<size_t>(procs);
  for (int p = 0; p < procs; ++p) {
    int ready[2], go[2];
    if (pipe(ready) != 0 || pipe(go) != 0) return 2;
    const size_t first = static_cast<size_t>(p) * per;
    const size_t n = std::min(per, conns - std::min(conns, first));
    pid_t pid = fork();
    if (pid == 0) {
      close(ready[0]);
      close(go[1]);
      FrameLoop loop;
      const size_t half = n / 2;
      size_t ok = OpenIdle(loop, m, prefix, first, half);
      dprintf(ready[1], "%zu\n", ok);
      char b;
      if (read(go[0], &b, 1) != 1) _exit(1);
      ok += OpenIdle(loop, m, prefix, first + half, n - half);
      dprintf(ready[1], "%zu\n", ok);
      while (read(go[0], &b, 1) > 0) {
      }  // hold the connections until the parent has measured
      _exit(0);
    }
    close(ready[1]);
    close(go[0]);
    kids.push_back(pid);
    ready_fds.push_back(ready[0]);
    go_fds.push_back(go[1]);
  }
  auto gather = [&] {
    size_t total = 0;
    for (int fd : ready_fds) {
      char buf[32] = {};
      size_t len = 0;
      while (len < sizeof buf - 1 && read(fd, buf + len, 1) == 1 && buf[len] != '\n') ++len;
      total += std::strtoull(buf, nullptr, 10);
    }
    usleep(500'000);  // let the gateways settle (pending writes, allocator caches)
    return total;
  };
  const size_t half_total = gather();
  const ProcUsage mid = Sum(gw_pids);
  for (int fd : go_fds) (void)!write(fd, "g", 1);
  const size_t total = gather();
  const ProcUsage after = Sum(gw_pids);
  for (int fd : go_fds) close(fd);
  for (int fd : ready_fds) close(fd);
  for (pid_t k : kids) waitpid(k, nullptr, 0);
  const double overall = total ? (after.rss_kb - before.rss_kb) * 1024.0 / total : 0;
  const size_t second = total - half_total;
  const double marginal = second ? (after.rss_kb - mid.rss_kb) * 1024.0 / second : 0;
  std::cout << "result workload=w3 system=meshchat connections=" << total << " requested=" << conns
            << " procs=" << procs << " gateways=" << gw_pids.size()
            << " gateway_rss_before_kb=" << before.rss_kb << " gateway_rss_mid_kb=" << mid.rss_kb
            << " gateway_rss_after_kb=" << after.rss_kb
            << " gateway_bytes_per_conn=" << static_cast<long>(marginal)
            << " gateway_bytes_per_conn_overall=" << static_cast<long>(overall) << std::endl;
  std::printf(
      "\nW3 idle connections: %zu authenticated over %zu gateways; gateway RSS %ld KB ->"
      " %ld KB -> %ld KB: %.0f bytes per connection (second half; %.0f overall)\n",
      total, gw_pids.size(), before.rss_kb, mid.rss_kb, after.rss_kb, marginal, overall);
  return total == conns ? 0 : 1;
}

int RunW4(const std::string& var, size_t clients, size_t pending) {
  MeshInfo m;
  if (!LoadMesh(var, m)) return 2;
  const std::string prefix = "storm" + RunId() + "-";
  {  // 1. every client registers its device once, then goes away
    FrameLoop loop;
    if (OpenIdle(loop, m, prefix, 0, clients) != clients) {
      std::cerr << "loadgen: w4 could not register every client\n";
      return 1;
    }
  }
  // 2. a sender leaves `pending` messages for each of them, and waits until all are stored
  {
    FrameLoop loop;
    if (m.tls && !loop.EnableTls(m.ca_file)) return 2;
    size_t welcomed = 0, acked = 0;
    std::map<uint64_t, size_t> to_of;                 // cid -> client index
    std::vector<std::pair<int64_t, uint64_t>> retry;  // (when, cid) refused by the rate limit
    loop.SetHandlers(
        [&](size_t, uint8_t t, std::string_view body) {
          if (t == static_cast<uint8_t>(FrameType::kWelcome)) ++welcomed;
          if (t == static_cast<uint8_t>(FrameType::kSent)) ++acked;
          codec::Error e;
          if (t == static_cast<uint8_t>(FrameType::kError) &&
              codec::Decode(body, e) == codec::DecodeStatus::kOk &&
              e.code == codec::ErrorCode::kRateLimited && e.cid)
            retry.emplace_back(NowNs() + static_cast<int64_t>(e.retry_after) * 1'000'000, *e.cid);
        },
        nullptr);
    const auto& [host, port] = m.gateways[0];
    if (loop.Connect(host, static_cast<uint16_t>(port)) != 0) return 2;
    loop.Send(0, static_cast<uint8_t>(FrameType::kHello), HelloBody(m, prefix + "sender"));
    while (welcomed == 0) loop.Poll(10);
    uint64_t cid = 1;
    for (size_t k = 0; k < pending; ++k)
      for (size_t i = 0; i < clients; ++i) {
        to_of[cid] = i;
        loop.Send(0, static_cast<uint8_t>(FrameType::kSend),
                  codec::Encode(codec::Send{prefix + std::to_string(i), cid++, "storm"}));
      }
    const int64_t deadline = NowNs() + 300'000'000'000LL;
    while (acked < clients * pending && NowNs() < deadline) {
      loop.Poll(20);
      // One sender filling many inboxes runs into its send rate: resend when told to.
      const int64_t now = NowNs();
      std::vector<std::pair<int64_t, uint64_t>> later;
      for (auto [when, c] : retry) {
        if (when > now) {
          later.emplace_back(when, c);
          continue;
        }
        loop.Send(0, static_cast<uint8_t>(FrameType::kSend),
                  codec::Encode(codec::Send{prefix + std::to_string(to_of[c]), c, "storm"}));
      }
      retry.swap(later);
    }
    if (acked < clients * pending) {
      std::cerr << "loadgen: w4 only " << acked << " messages stored\n";
      return 1;
    }
  }
  // 3. the storm: everyone reconnects at once and drains
  FrameLoop loop;
  if (m.tls && !loop.EnableTls(m.ca_file)) return 2;
  std::vector<size_t> got(clients, 0);
  std::vector<uint64_t> max_n(clients, 0);
  size_t welcomed = 0, drained = 0;
  Histogram back, done;
  const int64_t t0 = NowNs();
  loop.SetHandlers(
      [&](size_t c, uint8_t t, std::string_view body) {
        if (t == static_cast<uint8_t>(FrameType::kWelcome)) {
          ++welcomed;
          back.Record((NowNs() - t0) / 1000);
        } else if (t == static_cast<uint8_t>(FrameType::kPush)) {
          codec::Push p;
          if (codec::Decode(body, p) != codec::DecodeStatus::kOk) return;
          max_n[c] = std::max(max_n[c], p.n);
          if (++got[c] == pending) {
            ++drained;
            done.Record((NowNs() - t0) / 1000);
          }
        }
      },
      nullptr);
  for (size_t i = 0; i < clients; ++i) {
    const auto& [host, port] = m.gateways[i % m.gateways.size()];
    if (loop.Connect(host, static_cast<uint16_t>(port)) < 0) return 2;
    loop.Send(i, static_cast<uint8_t>(FrameType::kHello), HelloBody(m, prefix + std::to_string(i)));
  }
  std::vector<uint64_t> acked_n(clients, 0);
  const int64_t deadline = NowNs() + 300'000'000'000LL;
  while (drained < clients && NowNs() < deadline) {
    loop.Poll(10);
    for (size_t i = 0; i < clients; ++i)
      if (max_n[i] > acked_n[i]) {
        acked_n[i] = max_n[i];
        loop.Send(i, static_cast<uint8_t>(FrameType::kAck), codec::Encode(codec::Ack{max_n[i]}));
      }
  }
  const double total_s = (NowNs() - t0) / 1e9;
  std::cout << "result workload=w4 clients=" << clients << " pending_each=" << pending
            << " reconnected=" << welcomed << " drained=" << drained
            << " all_back_ms=" << back.max() / 1000 << " all_drained_ms=" << done.max() / 1000
            << " " << back.Summary("back_") << " " << done.Summary("drained_")
            << " total_s=" << total_s << std::endl;
  std::printf(
      "\nW4 reconnect storm: %zu clients with %zu messages each: all back in %.2f s, all "
      "drained in %.2f s (p50 drained %.2f s)\n",
      clients, pending, back.max() / 1e6, done.max() / 1e6, done.Percentile(50) / 1e6);
  return drained == clients ? 0 : 1;
}

}  // namespace meshchat::bench
