#include "store/background_syncer.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <system_error>

namespace meshchat::store {

BackgroundSyncer::BackgroundSyncer(std::function<Status()> sync) : sync_(std::move(sync)) {
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
  while (true) {
    cv_.wait(l, [&] { return stop_ || requested_ > durable_; });
    if (requested_ <= durable_ && stop_) return;
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
