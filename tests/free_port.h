// A TCP port on 127.0.0.1 that was free a moment ago, below the ephemeral range (so no
// concurrent test's outgoing connection takes it before the mesh binds it), for mesh tests.
#pragma once

#include "base/free_ports.h"

namespace meshchat::test {

inline int FreePort() {
  return FreeListenPorts(1).at(0);
}

}  // namespace meshchat::test
