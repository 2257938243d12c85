// Built when libmosquitto is not installed: the mosquitto comparison is unavailable.
#include "bench/w1.h"
#include "bench/w2.h"
#include "bench/w3_w4.h"

namespace meshchat::bench {
std::unique_ptr<ChatDriver> MakeMqttDriver(const std::string&, int, size_t, std::vector<long>) {
  return nullptr;
}
int RunW3Mqtt(const std::string&, int, size_t, long) {
  return 2;
}
std::unique_ptr<GroupDriver> MakeMqttGroupDriver(const std::string&, int, size_t,
                                                 std::vector<long>) {
  return nullptr;
}
}  // namespace meshchat::bench
