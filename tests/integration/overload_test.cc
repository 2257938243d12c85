// Overload (nodes/runtime/load_levels.h) with real processes: a session node driven past what it is
// configured to take sheds hints first, keeps core messages flowing, loses no acknowledged
// message, and returns to normal by itself.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "codec/frame.h"
#include "tests/integration/test_mesh.h"

using namespace meshchat;
using namespace meshchat::test;
using Clock = std::chrono::steady_clock;

namespace {

// s1's load level from `meshctl status --json` (-1 if not found).
int LoadOf(const TestMesh& mesh, const std::string& node) {
  std::string out;
  mesh.Meshctl("status --json", &out);
  const size_t at = out.find("\"id\":\"" + node + "\"");
  if (at == std::string::npos) return -1;
  const size_t l = out.find("\"load\":", at);
  if (l == std::string::npos) return -1;
  return std::stoi(out.substr(l + 7));
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// One flooding user: up to `window` sends in flight, each resent with its cid until `sent`
// (the client library waits out retry_after by itself). Records what was acknowledged.
struct Flooder {
  std::map<uint64_t, uint64_t> acked;  // cid -> seq
  uint64_t busy = 0, overloaded = 0, other_errors = 0;
  size_t unacked = 0;  // still not acknowledged 30 s after the flood
};

void Flood(const TestMesh& mesh, const std::string& user, const std::string& to,
           std::atomic<bool>& stop, Flooder& f) {
  auto c = mesh.Connect(user, 0);
  constexpr size_t kWindow = 200;
  std::set<uint64_t> in_flight;
  std::vector<uint64_t> retry;
  uint64_t next_cid = 1;
  const std::string body(100, 'f');
  std::optional<Clock::time_point> drain_until;  // after `stop`: until every send is acked
  while (true) {
    if (stop) {
      if (!drain_until) drain_until = Clock::now() + std::chrono::seconds(30);
      if ((in_flight.empty() && retry.empty()) || Clock::now() > *drain_until) {
        f.unacked = in_flight.size();
        break;
      }
    }
    while (!retry.empty()) {
      const uint64_t cid = retry.back();
      retry.pop_back();
      if (!c.Send(to, body, cid).ok()) return;
    }
    while (!stop && in_flight.size() < kWindow) {
      const uint64_t cid = next_cid++;
      in_flight.insert(cid);
      if (!c.Send(to, body, cid).ok()) return;
    }
    auto ev = c.Next(200);
    if (!ev.ok()) continue;
    if (auto* s = std::get_if<codec::Sent>(&*ev)) {
      in_flight.erase(s->cid);
      f.acked[s->cid] = s->seq;
    } else if (auto* e = std::get_if<codec::Error>(&*ev)) {
      if (e->code == codec::ErrorCode::kRateLimited)
        ++f.busy;
      else if (e->code == codec::ErrorCode::kServiceUnavailable)
        ++f.overloaded;
      else
        ++f.other_errors;
      if (e->cid && in_flight.count(*e->cid)) retry.push_back(*e->cid);
    }
  }
}

// Reads pushes until told to stop and nothing came for a while; every sequence once.
struct Receiver {
  std::vector<uint64_t> seqs;
};

void Receive(const TestMesh& mesh, const std::string& user, std::atomic<bool>& stop, Receiver& r) {
  auto c = mesh.Connect(user, 0);
  auto quiet_since = Clock::now();
  while (!stop || Clock::now() - quiet_since < std::chrono::seconds(3)) {
    auto ev = c.Next(200);
    if (!ev.ok()) continue;
    if (auto* p = std::get_if<codec::Push>(&*ev)) {
      r.seqs.push_back(p->seq);
      quiet_since = Clock::now();
    }
  }
}

}  // namespace

TEST_CASE(
    "a session node past its capacity sheds hints first, keeps messages flowing, "
    "loses nothing acked and recovers",
    "[integration][overload]") {
  // No per-user or per-connection limits in the way: the node's own load decides.
  TestMesh mesh(1, 1,
                "--presence 1 --opt send_rate=1000000 --opt send_burst=1000000 "
                "--opt frame_rate=1000000 --opt frame_burst=1000000");
  // s1 on a slow disk (an fsync at most every 25 ms) with small queue thresholds: what this
  // test's threads can send on a 2-core machine is well past them.
  {
    std::ofstream o(mesh.var() + "/opts/s1.opts");
    o << "sync_interval_us=25000\nload_queue=20,80,250\nload_calm_ms=1000\n";
  }
  std::string out;
  REQUIRE(mesh.Meshctl("restart s1", &out) == 0);
  for (int i = 0; i < 50 && LoadOf(mesh, "s1") != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  REQUIRE(LoadOf(mesh, "s1") == 0);

  auto typer = mesh.Connect("typer", 0);
  auto watcher = mesh.Connect("watcher", 0);
  REQUIRE(typer.Typing("watcher").ok());
  Expect<codec::TypingNotice>(watcher);  // typing works at normal load

  constexpr int kFlooders = 4;
  std::atomic<bool> stop_flood{false}, stop_receive{false};
  std::vector<Flooder> flooders(kFlooders);
  std::vector<Receiver> receivers(kFlooders);
  std::vector<std::thread> sinks, floods;
  for (int i = 0; i < kFlooders; ++i) {
    sinks.emplace_back(
        [&, i] { Receive(mesh, "sink" + std::to_string(i), stop_receive, receivers[i]); });
    floods.emplace_back([&, i] {
      Flood(mesh, "flood" + std::to_string(i), "sink" + std::to_string(i), stop_flood, flooders[i]);
    });
  }

  // Meanwhile the typer types and writes one message at a time, as a person would.
  std::set<int> levels;
  int typer_acked = 0, typer_refused = 0;
  uint64_t cid = 1;
  const auto flood_end = Clock::now() + std::chrono::seconds(8);
  auto next_status = Clock::now();
  bool waiting = false;
  while (Clock::now() < flood_end) {
    (void)typer.Typing("watcher");
    if (!waiting) {
      REQUIRE(typer.Send("watcher", "still talking", cid).ok());
      waiting = true;
    }
    auto ev = typer.Next(100);
    if (ev.ok()) {
      if (auto* s = std::get_if<codec::Sent>(&*ev); s && s->cid == cid) {
        ++typer_acked;
        ++cid;
        waiting = false;
      } else if (auto* e = std::get_if<codec::Error>(&*ev); e && e->cid == cid) {
        ++typer_refused;
        waiting = false;  // the same cid again
      }
    }
    if (Clock::now() >= next_status) {
      levels.insert(LoadOf(mesh, "s1"));
      next_status = Clock::now() + std::chrono::milliseconds(250);
    }
  }
  stop_flood = true;
  const std::string during = mesh.Scrape("s1");

  // Recovery: back to normal by itself once the flood stops.
  const auto calm_start = Clock::now();
  int level = LoadOf(mesh, "s1");
  while (level != 0 && Clock::now() - calm_start < std::chrono::seconds(30)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    level = LoadOf(mesh, "s1");
  }
  CHECK(level == 0);
  const auto recovered_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - calm_start).count();
  for (auto& t : floods) t.join();
  stop_receive = true;
  for (auto& t : sinks) t.join();

  const std::string log = ReadFile(mesh.var() + "/log/s1.log");
  INFO("back to normal " << recovered_ms << " ms after the flood; levels seen " << levels.size()
                         << "; typer acked " << typer_acked << ", refused " << typer_refused);
  // Past capacity: the node climbed to refusing the heaviest senders, hints shed on the way.
  CHECK(levels.count(3) == 1);
  const size_t l1 = log.find("load level 1 (shed_hints)"), l3 = log.find("load level 3");
  REQUIRE(l1 != std::string::npos);
  REQUIRE(l3 != std::string::npos);
  CHECK(l1 < l3);
  CHECK(Metric(during, "meshchat_load_shed_total{kind=\"typing\"}") > 0);
  CHECK(Metric(during, "meshchat_load_shed_total{kind=\"send_refused_heavy\"}") > 0);
  // Core messages kept flowing for the light sender.
  CHECK(typer_acked >= 5);
  // Nothing acknowledged was lost, nothing came twice, in order.
  uint64_t busy = 0, acked = 0;
  for (int i = 0; i < kFlooders; ++i) {
    const auto& f = flooders[i];
    busy += f.busy;
    acked += f.acked.size();
    CHECK(f.other_errors == 0);
    // Every refused send went through on a retry: a burst of refusals read one by one once
    // made the client library wait a second per refusal (fixed in ChatClient::Refused).
    CHECK(f.unacked == 0);
    std::set<uint64_t> got(receivers[i].seqs.begin(), receivers[i].seqs.end());
    CHECK(got.size() == receivers[i].seqs.size());
    CHECK(std::is_sorted(receivers[i].seqs.begin(), receivers[i].seqs.end()));
    size_t missing = 0;
    for (const auto& [c, seq] : f.acked) missing += got.count(seq) ? 0 : 1;
    CHECK(missing == 0);
  }
  CHECK(busy > 0);
  INFO("flooders: " << acked << " acknowledged, " << busy << " refused as busy");
  CHECK(acked > 1000);
}

TEST_CASE("a client that never reads is cut off at its output cap and then loses nothing",
          "[integration][overload]") {
  // Unacknowledged pushes (1 MiB at a time) are sent again every 100 ms, doubling: each
  // resend adds to what waits at the gateway for this client, until its 4 MiB cap cuts it off.
  TestMesh mesh(1, 1, "--opt push_rto_ms=100");
  // Authenticates on a 4 KiB receive buffer, then never reads.
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  const auto ep = mesh.Gateway(0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(ep.port);
  inet_pton(AF_INET, ep.host.c_str(), &a.sin_addr);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  const std::string hello =
      codec::EncodeFrame(static_cast<uint8_t>(codec::FrameType::kHello),
                         codec::Encode(codec::Hello{1, mesh.Token("sleepy")}));
  REQUIRE(send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(hello.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // registered

  // 12 MB for it: far more than its output cap and what the kernel buffers.
  const std::string big(60'000, 'b');
  constexpr int kEach = 100;
  for (const char* who : {"feeder1", "feeder2"}) {
    auto c = mesh.Connect(who, 0);
    for (int i = 0; i < kEach; ++i) REQUIRE(c.Send("sleepy", big).ok());
    for (int i = 0; i < kEach; ++i) Expect<codec::Sent>(c, 15000);
  }
  double cut = 0;
  for (int i = 0; i < 80 && cut < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    cut = Metric(mesh.Scrape("gw1"), "meshchat_gateway_slow_consumers_total");
  }
  CHECK(cut >= 1);
  // The gateway's memory stayed near its cap: well under what was sent to the sleeper.
  std::ifstream pid_file(mesh.var() + "/run/gw1.pid");
  long pid = 0;
  REQUIRE(pid_file >> pid);
  const std::string status = ReadFile("/proc/" + std::to_string(pid) + "/status");
  const size_t at = status.find("VmHWM:");
  REQUIRE(at != std::string::npos);
  const long peak_kb = std::stol(status.substr(at + 6));
  INFO("gateway peak RSS " << peak_kb << " KiB");
  CHECK(peak_kb < 64 * 1024);
  close(fd);

  // Back, reading: every message is still in its inbox.
  auto back = mesh.Connect("sleepy", 0);
  std::set<std::pair<std::string, uint64_t>> got;
  const auto until = Clock::now() + std::chrono::seconds(30);
  while (got.size() < 2 * kEach && Clock::now() < until) {
    auto ev = back.Next(1000);
    if (!ev.ok()) continue;
    if (auto* p = std::get_if<codec::Push>(&*ev)) got.insert({p->from, p->seq});
  }
  CHECK(got.size() == 2 * kEach);
}
