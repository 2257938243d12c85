#include "bench/mqtt_loop.h"

#include <sys/epoll.h>
#include <unistd.h>

#include "bench/event_loop.h"

namespace meshchat::bench {

MqttLoop::MqttLoop() : ep_(epoll_create1(EPOLL_CLOEXEC)) {}

MqttLoop::~MqttLoop() {
  close(ep_);
}

size_t MqttLoop::Add(mosquitto* m) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = clients_.size();
  epoll_ctl(ep_, EPOLL_CTL_ADD, mosquitto_socket(m), &ev);
  clients_.push_back({m, false});
  return clients_.size() - 1;
}

void MqttLoop::Flush() {
  for (size_t i = 0; i < clients_.size(); ++i) {
    Client& c = clients_[i];
    if (mosquitto_want_write(c.m)) mosquitto_loop_write(c.m, 64);
    const bool still = mosquitto_want_write(c.m);
    if (still != c.want_write) {
      c.want_write = still;
      epoll_event ev{};
      ev.events = EPOLLIN | (still ? EPOLLOUT : 0u);
      ev.data.u64 = i;
      epoll_ctl(ep_, EPOLL_CTL_MOD, mosquitto_socket(c.m), &ev);
    }
  }
}

int MqttLoop::Poll(int timeout_ms) {
  Flush();
  int errors = 0;
  epoll_event evs[512];
  const int n = epoll_wait(ep_, evs, 512, timeout_ms);
  for (int i = 0; i < n; ++i) {
    mosquitto* m = clients_[evs[i].data.u64].m;
    if (evs[i].events & EPOLLOUT) mosquitto_loop_write(m, 64);
    if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
      if (mosquitto_loop_read(m, 64) != MOSQ_ERR_SUCCESS) ++errors;
  }
  Flush();
  const int64_t now = NowNs();
  if (now - last_misc_ns_ > 1'000'000'000) {  // keep-alives and retries
    last_misc_ns_ = now;
    for (auto& c : clients_) mosquitto_loop_misc(c.m);
  }
  return errors;
}

}  // namespace meshchat::bench
