// The socket loop, kept dumb: epoll over file descriptors (client TCP sockets, signalfd) and
// ZeroMQ sockets (via ZMQ_FD), plus timers. It only calls callbacks; routing decisions, store
// writes and protocol logic live in handler classes that are tested without sockets.
//
// Single-threaded: a Reactor and everything registered with it belong to the thread that
// calls Run(). Only Stop() may be called from another thread or a signal handler.
#pragma once

#include <zmq.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <queue>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/status.h"

namespace meshchat::router {

class Reactor {
 public:
  using FdCallback = std::function<void(uint32_t epoll_events)>;
  using Callback = std::function<void()>;
  using TimerId = uint64_t;

  // Timers, and everything built on this loop (mesh heartbeats, client deadlines), read time
  // from `clock`. Throws std::system_error if epoll/eventfd cannot be created (start-up only).
  explicit Reactor(const Clock& clock = DefaultClock());
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  Status AddFd(int fd, uint32_t events, FdCallback cb);
  Status ModFd(int fd, uint32_t events);
  void RemoveFd(int fd);

  // `on_readable` receives at most one message (non-blocking) and returns whether it got one;
  // it is called until it returns false, at most `batch` times per loop turn so one busy
  // socket cannot starve the others.
  void AddZmqReader(zmq::socket_t& socket, std::function<bool()> on_readable, int batch = 1024);
  // A send, connect or option change on a reader's socket outside its own callback may have
  // consumed its ZMQ_FD edge: the socket is drained in the next turn, which does not wait.
  void Touch(zmq::socket_t& socket);

  TimerId Every(int64_t interval_ms, Callback cb);
  TimerId After(int64_t delay_ms, Callback cb);
  void Cancel(TimerId id);

  // Runs after every loop turn, once the turn's events are handled: where handlers flush
  // batched work (group commit, coalesced writes to clients).
  void OnTurnEnd(Callback cb) { turn_end_.push_back(std::move(cb)); }
  // Runs after every OnTurnEnd callback: where the mesh flushes what the turn queued.
  void OnTurnEndLast(Callback cb) { turn_end_last_.push_back(std::move(cb)); }

  void Run();
  void Stop();  // async-signal-safe
  // From the loop's own thread: work was queued outside any fd, so the next turn does not
  // wait (no syscall; other threads signal through an fd of their own, as the fsync thread's
  // eventfd).
  void Soon() { soon_ = true; }
  bool stopping() const { return stopping_; }
  const Clock& clock() const { return clock_; }
  // Nanoseconds the loop has spent waiting for events (cumulative): busy = wall - idle.
  int64_t idle_ns() const { return idle_ns_; }
  static int64_t MonoNs();

 private:
  struct Timer {
    int64_t interval_ms;  // 0 = one-shot
    Callback cb;
  };
  struct ZmqReader {
    zmq::socket_t* socket;
    std::function<bool()> cb;
    int batch;
    bool ready;  // its edge fired (or it was touched) since it last returned EAGAIN
  };
  int64_t NowMs() const;
  int RunTimers();  // returns ms until the next timer (-1 = none)
  bool DrainZmq();  // returns true if a socket still has messages waiting

  const Clock& clock_;
  int epfd_ = -1;
  int wakefd_ = -1;
  std::atomic<bool> stopping_{false};  // lock-free: Stop() is called from signal handlers
  bool soon_ = false;
  int64_t last_full_drain_ns_ = 0;
  int64_t idle_ns_ = 0;
  std::unordered_map<int, FdCallback> fds_;
  std::vector<ZmqReader> zmq_readers_;
  TimerId next_timer_ = 1;
  std::unordered_map<TimerId, Timer> timers_;
  std::priority_queue<std::pair<int64_t, TimerId>, std::vector<std::pair<int64_t, TimerId>>,
                      std::greater<>>
      due_;
  std::vector<Callback> turn_end_;
  std::vector<Callback> turn_end_last_;
};

}  // namespace meshchat::router
