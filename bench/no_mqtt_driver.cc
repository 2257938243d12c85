// Built when libmosquitto is not installed: the mosquitto comparison is unavailable.
#include "bench/w1.h"

namespace meshchat::bench {
std::unique_ptr<ChatDriver> MakeMqttDriver(const std::string&, int, size_t, std::vector<long>) {
  return nullptr;
}
}  // namespace meshchat::bench
