#include "nodes/runtime/metrics.h"

#include "codec/client_messages.h"

#include <httplib.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace meshchat::nodes {

void MetricsText::Header(const std::string& name, const std::string& help, const char* type) {
  if (std::find(declared_.begin(), declared_.end(), name) != declared_.end()) return;
  declared_.push_back(name);
  out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void MetricsText::Counter(const std::string& name, const std::string& help, uint64_t value,
                          const std::string& labels) {
  Header(name, help, "counter");
  out_ += name + (labels.empty() ? "" : "{" + labels + "}") + " " + std::to_string(value) + "\n";
}

void MetricsText::Gauge(const std::string& name, const std::string& help, double value,
                        const std::string& labels) {
  Header(name, help, "gauge");
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", value);
  out_ += name + (labels.empty() ? "" : "{" + labels + "}") + " " + buf + "\n";
}

void MetricsText::Histogram(const std::string& name, const std::string& help,
                            const std::vector<double>& bounds, const std::vector<uint64_t>& counts,
                            double sum, uint64_t count) {
  Header(name, help, "histogram");
  char buf[64];
  for (size_t i = 0; i < bounds.size() && i < counts.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%g", bounds[i]);
    out_ += name + "_bucket{le=\"" + buf + "\"} " + std::to_string(counts[i]) + "\n";
  }
  out_ += name + "_bucket{le=\"+Inf\"} " + std::to_string(count) + "\n";
  std::snprintf(buf, sizeof buf, "%.6g", sum);
  out_ += name + "_sum " + buf + "\n" + name + "_count " + std::to_string(count) + "\n";
}

LatencyBuckets::LatencyBuckets()
    : bounds_{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1},
      counts_(bounds_.size(), 0) {}

void LatencyBuckets::Observe(double seconds) {
  for (size_t i = 0; i < bounds_.size(); ++i)
    if (seconds <= bounds_[i]) {
      ++counts_[i];
      break;
    }
  sum_ += seconds;
  ++count_;
}

void LatencyBuckets::Write(MetricsText& m, const std::string& name, const std::string& help) const {
  std::vector<uint64_t> cumulative(counts_.size());
  uint64_t running = 0;
  for (size_t i = 0; i < counts_.size(); ++i) cumulative[i] = running += counts_[i];
  m.Histogram(name, help, bounds_, cumulative, sum_, count_);
}

MetricsServer::MetricsServer(const std::string& host, uint16_t port)
    : server_(std::make_unique<httplib::Server>()) {
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> l(mu_);
    res.set_content(text_, "text/plain; version=0.0.4");
  });
  if (!server_->bind_to_port(host, port))
    throw std::runtime_error("metrics: cannot listen on " + host + ":" + std::to_string(port));
  thread_ = std::thread([this] { server_->listen_after_bind(); });
}

MetricsServer::~MetricsServer() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

void MetricsServer::Publish(std::string text) {
  std::lock_guard<std::mutex> l(mu_);
  text_ = std::move(text);
}

std::string ErrorCodeLabel(uint8_t code) {
  return std::string("code=\"") + codec::ErrorCodeName(static_cast<codec::ErrorCode>(code)) + "\"";
}

}  // namespace meshchat::nodes
