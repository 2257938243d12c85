#include "bench/w2.h"

#include <cstdio>
#include <iostream>

#include "bench/event_loop.h"
#include "bench/proc_stats.h"

namespace meshchat::bench {

int RunW2(GroupDriver& d, const W2Options& o) {
  if (!d.Setup(o.groups, o.size)) return 2;
  struct Row {
    double rate;
    W2Stats s;
    double cpu_s;
    bool sustained;
  };
  std::vector<Row> rows;
  uint64_t k = 0;
  const uint64_t per_msg = static_cast<uint64_t>(o.size - 1);
  for (size_t step = 0; step < o.rates.size(); ++step) {
    Row r{o.rates[step], {}, 0, false};
    const ProcUsage before = Sum(d.ServerPids());
    const int64_t t0 = NowNs() + 10'000'000;
    const int64_t t_end = t0 + static_cast<int64_t>(o.step_s * 1e9);
    const double interval = 1e9 / r.rate;
    uint64_t i = 0;
    while (NowNs() < t_end) {
      const int64_t now = NowNs();
      while (true) {
        const int64_t due = t0 + static_cast<int64_t>(static_cast<double>(i) * interval);
        if (due > now || due >= t_end) break;
        const int group = static_cast<int>(k % static_cast<uint64_t>(o.groups));
        const int member =
            static_cast<int>((k / static_cast<uint64_t>(o.groups)) % static_cast<uint64_t>(o.size));
        d.Send(group, member, k, due);
        ++r.s.sent;
        ++i;
        ++k;
      }
      const int64_t next = t0 + static_cast<int64_t>(static_cast<double>(i) * interval);
      d.Poll(static_cast<int>(std::max<int64_t>(1, (next - NowNs()) / 1'000'000)), r.s);
    }
    const int64_t drain_end = NowNs() + static_cast<int64_t>(o.drain_s * 1e9);
    while (NowNs() < drain_end && r.s.deliveries < r.s.sent * per_msg) d.Poll(5, r.s);
    r.cpu_s = Sum(d.ServerPids()).cpu_s - before.cpu_s;
    r.sustained = r.s.deliveries == r.s.sent * per_msg && r.s.errors == 0 &&
                  r.s.deliver.Percentile(99) <= static_cast<int64_t>(o.max_p99_ms * 1000);
    std::cout << "result workload=w2 system=" << d.name() << " step=" << step + 1
              << " group_size=" << o.size << " offered_msgs_per_s=" << static_cast<long>(r.rate)
              << " sent=" << r.s.sent << " acked=" << r.s.acked << " deliveries=" << r.s.deliveries
              << " expected=" << r.s.sent * per_msg
              << " deliveries_per_s=" << static_cast<long>(r.s.deliveries / o.step_s) << " "
              << r.s.deliver.Summary("") << " errors=" << r.s.errors << " server_cpu_s=" << r.cpu_s
              << " deliveries_per_cpu_s="
              << static_cast<long>(r.cpu_s > 0 ? r.s.deliveries / r.cpu_s : 0)
              << " sustained=" << (r.sustained ? 1 : 0) << std::endl;
    rows.push_back(r);
    if (r.s.deliveries < r.s.sent * per_msg * 95 / 100) {
      std::cout << "# deliveries fell behind: ramp stopped" << std::endl;
      break;
    }
  }
  std::printf("\n%-10s %10s %13s %9s %9s %14s %9s\n", "system", "msgs/s", "deliveries/s", "p50 ms",
              "p99 ms", "deliv/cpu-s", "sustained");
  double best = 0;
  for (const auto& r : rows) {
    std::printf("%-10s %10.0f %13.0f %9.2f %9.2f %14.0f %9s\n", d.name().c_str(), r.rate,
                r.s.deliveries / o.step_s, r.s.deliver.Percentile(50) / 1000.0,
                r.s.deliver.Percentile(99) / 1000.0, r.cpu_s > 0 ? r.s.deliveries / r.cpu_s : 0,
                r.sustained ? "yes" : "no");
    if (r.sustained) best = std::max(best, r.rate * static_cast<double>(per_msg));
  }
  std::cout << "result workload=w2 system=" << d.name()
            << " summary=1 best_sustained_deliveries_per_s=" << static_cast<long>(best)
            << std::endl;
  return best > 0 ? 0 : 1;
}

}  // namespace meshchat::bench
