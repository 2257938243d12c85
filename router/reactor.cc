#include "router/reactor.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <system_error>

namespace meshchat::router {

Reactor::Reactor(const Clock& clock) : clock_(clock) {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  wakefd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakefd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wakefd_;
  epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev);
}

Reactor::~Reactor() {
  close(wakefd_);
  close(epfd_);
}

int64_t Reactor::NowMs() const {
  return clock_.MonoMs();
}

Status Reactor::AddFd(int fd, uint32_t events, FdCallback cb) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0)
    return {Code::kIo, std::string("epoll add: ") + strerror(errno)};
  fds_[fd] = std::move(cb);
  return Status::Ok();
}

Status Reactor::ModFd(int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) != 0)
    return {Code::kIo, std::string("epoll mod: ") + strerror(errno)};
  return Status::Ok();
}

void Reactor::RemoveFd(int fd) {
  epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  fds_.erase(fd);
}

void Reactor::AddZmqReader(zmq::socket_t& socket, std::function<bool()> on_readable, int batch) {
  // ZMQ_FD is edge-triggered and only says "look at this socket": a reader is drained (until
  // EAGAIN, which re-arms the edge) in the turn its edge fires, not every turn, since each
  // receive that finds nothing costs ZeroMQ a poll() and a getpid() (with many co-hosted
  // nodes, dozens per turn). Operations outside the drain can consume an edge: Touch.
  int zfd = socket.get(zmq::sockopt::fd);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.fd = zfd;
  epoll_ctl(epfd_, EPOLL_CTL_ADD, zfd, &ev);
  const size_t index = zmq_readers_.size();  // readers are never removed: indexes stay
  fds_[zfd] = [this, index](uint32_t) { zmq_readers_[index].ready = true; };
  zmq_readers_.push_back({&socket, std::move(on_readable), batch, true});
}

void Reactor::Touch(zmq::socket_t& socket) {
  for (auto& r : zmq_readers_)
    if (r.socket == &socket) r.ready = true;
  soon_ = true;
}

Reactor::TimerId Reactor::Every(int64_t interval_ms, Callback cb) {
  TimerId id = next_timer_++;
  timers_[id] = {interval_ms > 0 ? interval_ms : 1, std::move(cb)};
  due_.emplace(NowMs() + interval_ms, id);
  return id;
}

Reactor::TimerId Reactor::After(int64_t delay_ms, Callback cb) {
  TimerId id = next_timer_++;
  timers_[id] = {0, std::move(cb)};
  due_.emplace(NowMs() + delay_ms, id);
  return id;
}

void Reactor::Cancel(TimerId id) {
  timers_.erase(id);
}

int Reactor::RunTimers() {
  const int64_t now = NowMs();
  while (!due_.empty() && due_.top().first <= now) {
    auto [when, id] = due_.top();
    due_.pop();
    auto it = timers_.find(id);
    if (it == timers_.end()) continue;  // cancelled
    Callback cb = it->second.cb;        // copy: the callback may cancel itself
    if (it->second.interval_ms > 0) {
      due_.emplace(when + it->second.interval_ms < now ? now + it->second.interval_ms
                                                       : when + it->second.interval_ms,
                   id);
    } else {
      timers_.erase(it);
    }
    cb();
  }
  while (!due_.empty() && !timers_.count(due_.top().second)) due_.pop();
  if (due_.empty()) return -1;
  return static_cast<int>(std::max<int64_t>(0, due_.top().first - NowMs()));
}

bool Reactor::DrainZmq() {
  // A safety net under Touch: every socket is looked at ten times a second whatever its edge
  // said, so an edge consumed where nobody called Touch costs at most 100 ms, never a hang.
  const int64_t now = MonoNs();
  if (now - last_full_drain_ns_ > 100'000'000) {
    last_full_drain_ns_ = now;
    for (auto& r : zmq_readers_) r.ready = true;
  }
  bool more = false;
  for (auto& r : zmq_readers_) {
    if (!r.ready) continue;
    int n = 0;
    while (n < r.batch && r.cb()) ++n;
    if (n == r.batch)
      more = true;  // stays ready: the rest next turn
    else
      r.ready = false;  // EAGAIN: the edge is armed again
  }
  return more;
}

void Reactor::Run() {
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  bool zmq_pending = true;
  while (!stopping_) {
    int timeout = RunTimers();
    if (zmq_pending || soon_) timeout = 0;
    soon_ = false;
    // Time spent waiting for work is idle; the rest of the wall clock the loop was busy (a
    // load signal: a loop busy all the time cannot take more).
    const int64_t wait_start = timeout != 0 ? MonoNs() : 0;
    int n = epoll_wait(epfd_, events, kMaxEvents, timeout);
    if (timeout != 0) idle_ns_ += MonoNs() - wait_start;
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n && !stopping_; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wakefd_) {
        uint64_t v;
        ssize_t r = read(wakefd_, &v, sizeof v);  // drain, or epoll reports it forever
        (void)r;
        continue;
      }
      auto it = fds_.find(fd);
      if (it == fds_.end()) continue;  // removed earlier in this turn
      FdCallback cb = it->second;      // copy: the callback may remove its own fd
      cb(events[i].events);
    }
    zmq_pending = DrainZmq();
    for (auto& cb : turn_end_) cb();
    for (auto& cb : turn_end_last_) cb();
  }
}

int64_t Reactor::MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void Reactor::Stop() {
  stopping_ = true;
  uint64_t one = 1;
  ssize_t r = write(wakefd_, &one, sizeof one);
  (void)r;
}

}  // namespace meshchat::router
