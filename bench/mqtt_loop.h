// Many libmosquitto clients on one epoll loop (libmosquitto's external-loop API): the part the
// MQTT drivers share.
#pragma once

#include <mosquitto.h>

#include <cstdint>
#include <vector>

namespace meshchat::bench {

class MqttLoop {
 public:
  MqttLoop();
  ~MqttLoop();
  MqttLoop(const MqttLoop&) = delete;
  MqttLoop& operator=(const MqttLoop&) = delete;

  // Watches a connected client; returns its index.
  size_t Add(mosquitto* m);
  // Writes what clients have queued, waits up to timeout_ms, reads and writes what is ready;
  // keep-alives once a second. Returns the number of read errors.
  int Poll(int timeout_ms);

 private:
  struct Client {
    mosquitto* m;
    bool want_write = false;
  };
  void Flush();
  int ep_ = -1;
  std::vector<Client> clients_;
  int64_t last_misc_ns_ = 0;
};

}  // namespace meshchat::bench
