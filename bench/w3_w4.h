#pragma once

#include <cstddef>
#include <string>

namespace meshchat::bench {

// Opens `conns` idle authenticated connections over `procs` processes; prints gateway RSS per
// connection. The mesh is found through its meshctl state directory `var`.
int RunW3(const std::string& var, size_t conns, int procs);
// Reconnect storm: `clients` users with `pending` messages each reconnect at once.
int RunW4(const std::string& var, size_t clients, size_t pending);

}  // namespace meshchat::bench
