#include "bench/w1.h"

#include <cstdio>
#include <iostream>
#include <sstream>

#include "bench/event_loop.h"
#include "bench/proc_stats.h"

namespace meshchat::bench {
namespace {

struct StepResult {
  double rate = 0;
  W1Stats stats;
  double cpu_s = 0;
  long rss_kb = 0;
  double seconds = 0;
  bool sustained = false;
};

void PrintLine(const std::string& driver, int step, const StepResult& r) {
  const auto& s = r.stats;
  std::ostringstream o;
  o << "result workload=w1 system=" << driver << " step=" << step
    << " offered_per_s=" << static_cast<long>(r.rate) << " sent=" << s.sent << " acked=" << s.acked
    << " delivered=" << s.delivered << " receipts=" << s.receipts << " errors=" << s.errors
    << " delivered_per_s=" << static_cast<long>(s.delivered / r.seconds) << " "
    << s.deliver.Summary("") << " " << s.ack.Summary("ack_") << " " << s.receipt.Summary("receipt_")
    << " server_cpu_s=" << r.cpu_s
    << " chats_per_cpu_s=" << static_cast<long>(r.cpu_s > 0 ? s.receipts / r.cpu_s : 0)
    << " server_rss_kb=" << r.rss_kb << " sustained=" << (r.sustained ? 1 : 0)
    << " refused=" << s.refused << " typing=" << s.typing << " reads=" << s.reads << " "
    << s.deliver_first.Summary("first_") << " " << s.deliver_light.Summary("light_");
  std::cout << o.str() << std::endl;
}

}  // namespace

int RunW1(ChatDriver& d, const W1Options& o) {
  if (!d.Setup(o.pairs)) return 2;
  // Who sends message k: every pair once per round, heavy pairs `heavy_factor` times.
  std::vector<int> slots;
  for (int p = 0; p < o.pairs; ++p)
    for (int i = 0; i < (p < o.heavy_pairs ? o.heavy_factor : 1); ++i) slots.push_back(p);
  // Spread each heavy pair's turns over the round: position i goes to i * stride mod n, which
  // visits every position once when the prime stride does not divide n.
  constexpr size_t kStride = 7919;
  if (o.heavy_pairs > 0 && slots.size() % kStride != 0) {
    std::vector<int> spread(slots.size());
    size_t at = 0;
    for (int p : slots) {
      spread[at] = p;
      at = (at + kStride) % slots.size();
    }
    slots = std::move(spread);
  }
  std::vector<StepResult> results;
  uint64_t k = 0;
  for (size_t step = 0; step < o.rates.size(); ++step) {
    StepResult r;
    r.rate = o.rates[step];
    W1Stats& stats = r.stats;
    const ProcUsage before = Sum(d.ServerPids());
    const int64_t t0 = NowNs() + 10'000'000;
    const int64_t t_end = t0 + static_cast<int64_t>(o.step_s * 1e9);
    const double interval_ns = 1e9 / r.rate;
    uint64_t i = 0;  // index within the step
    while (true) {
      const int64_t now = NowNs();
      if (now >= t_end) break;
      // Send everything that is due: open loop, never waiting for the server.
      while (true) {
        const int64_t due = t0 + static_cast<int64_t>(static_cast<double>(i) * interval_ns);
        if (due > now || due >= t_end) break;
        d.Send(slots[k % slots.size()], k, due);
        ++stats.sent;
        ++i;
        ++k;
      }
      // Sleep at least 1 ms: sends go out in ~1 ms batches (still on schedule, since latency
      // counts from each message's due time), instead of spinning between messages.
      const int64_t next_due = t0 + static_cast<int64_t>(static_cast<double>(i) * interval_ns);
      d.Poll(static_cast<int>(std::max<int64_t>(1, (next_due - NowNs()) / 1'000'000)), stats);
    }
    const int64_t drain_end = NowNs() + static_cast<int64_t>(o.drain_s * 1e9);
    while (NowNs() < drain_end && (stats.delivered < stats.sent || stats.receipts < stats.sent))
      d.Poll(5, stats);
    const ProcUsage after = Sum(d.ServerPids());
    r.cpu_s = after.cpu_s - before.cpu_s;
    r.rss_kb = after.rss_kb;
    r.seconds = o.step_s;
    r.sustained = stats.delivered == stats.sent && stats.errors == 0 && stats.refused == 0 &&
                  stats.deliver.Percentile(99) <= static_cast<int64_t>(o.max_p99_ms * 1000);
    PrintLine(d.name(), static_cast<int>(step + 1), r);
    results.push_back(std::move(r));
    if (results.back().stats.delivered < results.back().stats.sent * 95 / 100) {
      std::cout << "# deliveries fell behind (" << results.back().stats.delivered << " of "
                << results.back().stats.sent << "): ramp stopped" << std::endl;
      break;
    }
  }
  std::printf("\n%-10s %9s %10s %9s %9s %9s %9s %9s %11s %9s\n", "system", "offered/s", "deliver/s",
              "p50 ms", "p99 ms", "p999 ms", "ack p99", "rcpt p99", "chats/cpu-s", "sustained");
  double best = 0;
  for (const auto& r : results) {
    const auto& s = r.stats;
    std::printf("%-10s %9.0f %10.0f %9.2f %9.2f %9.2f %9.2f %9.2f %11.0f %9s\n", d.name().c_str(),
                r.rate, s.delivered / r.seconds, s.deliver.Percentile(50) / 1000.0,
                s.deliver.Percentile(99) / 1000.0, s.deliver.Percentile(99.9) / 1000.0,
                s.ack.Percentile(99) / 1000.0, s.receipt.Percentile(99) / 1000.0,
                r.cpu_s > 0 ? s.receipts / r.cpu_s : 0, r.sustained ? "yes" : "no");
    if (r.sustained) best = std::max(best, r.rate);
  }
  std::cout << "result workload=w1 system=" << d.name()
            << " summary=1 best_sustained_per_s=" << static_cast<long>(best) << std::endl;
  return best > 0 ? 0 : 1;
}

}  // namespace meshchat::bench
