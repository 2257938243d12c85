#include "store/background_syncer.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <system_error>

namespace meshchat::store {

BackgroundSyncer::BackgroundSyncer(std::function<Status()> sync, int64_t min_interval_us)
    : sync_(std::move(sync)), min_interval_us_(min_interval_us) {
  efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  thread_ = std::thread([this] { Run(); });
}

BackgroundSyncer::~BackgroundSyncer() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
  close(efd_);
}

void BackgroundSyncer::Request(uint64_t id) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (id <= requested_) return;
    requested_ = id;
  }
  cv_.notify_one();
}

uint64_t BackgroundSyncer::Durable(Status& err) {
  uint64_t v;
  ssize_t r = read(efd_, &v, sizeof v);
  (void)r;
  std::lock_guard<std::mutex> l(mu_);
  err = error_;
  error_ = Status::Ok();
  return durable_;
}

void BackgroundSyncer::Run() {
  std::unique_lock<std::mutex> l(mu_);
  auto last_start = std::chrono::steady_clock::now() - std::chrono::hours(1);
  while (true) {
    cv_.wait(l, [&] { return stop_ || requested_ > durable_; });
    if (requested_ <= durable_ && stop_) return;
    const auto earliest = last_start + std::chrono::microseconds(min_interval_us_);
    if (!stop_ && std::chrono::steady_clock::now() < earliest) {
      cv_.wait_until(l, earliest, [&] { return stop_; });  // let the batch grow a little
    }
    last_start = std::chrono::steady_clock::now();
    // Everything requested so far was committed before this point: one sync covers it all,
    // and requests arriving meanwhile are batched into the next one.
    const uint64_t target = requested_;
    l.unlock();
    Status s = sync_();
    l.lock();
    if (s.ok()) {
      durable_ = target;
    } else if (error_.ok()) {
      error_ = s;
    }
    const uint64_t one = 1;
    ssize_t w = write(efd_, &one, sizeof one);
    (void)w;
    if (!s.ok()) {
      // Do not spin on a failing disk: wait for the next request.
      requested_ = durable_;
    }
  }
}

}  // namespace meshchat::store
