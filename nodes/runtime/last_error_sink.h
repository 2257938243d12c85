// Keeps the newest warning or error a node logged, for `meshctl status` (which an operator
// reads before opening the log file).
#pragma once

#include <spdlog/details/log_msg.h>
#include <spdlog/sinks/base_sink.h>

#include <algorithm>
#include <mutex>
#include <string>

namespace meshchat::nodes {

class LastErrorSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit LastErrorSink(size_t max_bytes) : max_bytes_(max_bytes) {}

  std::string last() {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (msg.level < spdlog::level::warn) return;
    last_.assign(msg.payload.data(), std::min(msg.payload.size(), max_bytes_));
  }
  void flush_() override {}

 private:
  size_t max_bytes_;
  std::string last_;
};

}  // namespace meshchat::nodes
