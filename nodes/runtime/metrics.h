// Metrics in the Prometheus text format. The loop thread renders a snapshot once a second
// (MetricsText) and hands it to MetricsServer, whose own thread (cpp-httplib) serves the latest
// one at GET /metrics: no node state is shared with the HTTP thread. Labels are bounded sets
// (frame types, roles), never user or group ids.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Server;
}

namespace meshchat::nodes {

class MetricsText {
 public:
  // `labels` is either empty or a rendered set like `type="send"`.
  void Counter(const std::string& name, const std::string& help, uint64_t value,
               const std::string& labels = "");
  void Gauge(const std::string& name, const std::string& help, double value,
             const std::string& labels = "");
  // Cumulative buckets: counts[i] observations <= bounds[i] (the +Inf bucket is `count`).
  void Histogram(const std::string& name, const std::string& help,
                 const std::vector<double>& bounds, const std::vector<uint64_t>& counts, double sum,
                 uint64_t count);
  const std::string& str() const { return out_; }

 private:
  void Header(const std::string& name, const std::string& help, const char* type);
  std::string out_;
  std::vector<std::string> declared_;
};

// Counts per small code (a frame type, an error code), rendered as one labelled counter per
// non-zero code: labels stay bounded by the codes that exist.
class CodeCounter {
 public:
  void Add(uint8_t code) { ++counts_[code]; }
  // `label(code)` names each code, e.g. `type="send"`.
  template <typename LabelFn>
  void Write(MetricsText& m, const std::string& name, const std::string& help,
             LabelFn label) const {
    for (size_t c = 0; c < counts_.size(); ++c)
      if (counts_[c]) m.Counter(name, help, counts_[c], label(static_cast<uint8_t>(c)));
  }

 private:
  std::array<uint64_t, 256> counts_{};
};

// `code="rate_limited"`: the label of an error code (bounded: the codes that exist).
std::string ErrorCodeLabel(uint8_t code);

// Latency observations into fixed buckets (seconds), for Histogram().
class LatencyBuckets {
 public:
  LatencyBuckets();
  void Observe(double seconds);
  void Write(MetricsText& m, const std::string& name, const std::string& help) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // cumulative at write time, per-bucket here
  double sum_ = 0;
  uint64_t count_ = 0;
};

class MetricsServer {
 public:
  // Listens on host:port; start-up only: throws if it cannot bind.
  MetricsServer(const std::string& host, uint16_t port);
  ~MetricsServer();
  void Publish(std::string text);

 private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::mutex mu_;
  std::string text_;  // guarded by mu_
};

}  // namespace meshchat::nodes
