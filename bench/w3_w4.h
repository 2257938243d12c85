#pragma once

#include <cstddef>
#include <string>

namespace meshchat::bench {

// Opens `conns` idle authenticated connections over `procs` processes; prints gateway RSS per
// connection. The mesh is found through its meshctl state directory `var`.
int RunW3(const std::string& var, size_t conns, int procs);
// W3 against an MQTT broker: `conns` idle subscribed clients; prints broker RSS per
// connection. Returns 2 when built without libmosquitto.
int RunW3Mqtt(const std::string& host, int port, size_t conns, long broker_pid);
// Reconnect storm: `clients` users with `pending` messages each reconnect at once.
int RunW4(const std::string& var, size_t clients, size_t pending);

}  // namespace meshchat::bench
