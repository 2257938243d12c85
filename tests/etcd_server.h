// A real single-member etcd (Debian's etcd-server) on free loopback ports in a private
// directory, for tests; stopped (SIGKILL) when the object goes.
#pragma once

#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "base/free_ports.h"

namespace meshchat::test {

class EtcdServer {
 public:
  explicit EtcdServer(const std::string& dir) {
    const auto ports = FreeListenPorts(2);
    client_ = "http://127.0.0.1:" + std::to_string(ports[0]);
    const std::string peer = "http://127.0.0.1:" + std::to_string(ports[1]);
    const std::string log = dir + "/etcd.log";
    pid_ = fork();
    if (pid_ == 0) {
      FILE* f = freopen(log.c_str(), "w", stderr);
      (void)f;
      execlp("etcd", "etcd", "--data-dir", (dir + "/etcd").c_str(), "--listen-client-urls",
             client_.c_str(), "--advertise-client-urls", client_.c_str(), "--listen-peer-urls",
             peer.c_str(), "--initial-advertise-peer-urls", peer.c_str(), "--initial-cluster",
             ("default=" + peer).c_str(), "--log-level", "error", nullptr);
      _exit(127);
    }
    // Up once it answers a range request.
    for (int i = 0; i < 100 && !ready_; ++i) {
      httplib::Client c(client_);
      c.set_connection_timeout(std::chrono::milliseconds(200));
      auto res = c.Post("/v3/kv/range", "{\"key\":\"AA==\"}", "application/json");
      ready_ = res && res->status == 200;
      if (!ready_) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ~EtcdServer() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  EtcdServer(const EtcdServer&) = delete;
  EtcdServer& operator=(const EtcdServer&) = delete;
  bool ready() const { return ready_; }
  const std::string& endpoint() const { return client_; }

 private:
  pid_t pid_ = -1;
  std::string client_;
  bool ready_ = false;
};

}  // namespace meshchat::test
