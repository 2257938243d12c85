// A TCP port on 127.0.0.1 that was free a moment ago (ZeroMQ picks it), for mesh tests.
#pragma once

#include <zmq.hpp>

#include <string>

namespace meshchat::test {

inline int FreePort() {
  zmq::context_t ctx;
  zmq::socket_t s(ctx, zmq::socket_type::router);
  s.bind("tcp://127.0.0.1:*");
  std::string ep = s.get(zmq::sockopt::last_endpoint);
  return std::stoi(ep.substr(ep.rfind(':') + 1));
}

}  // namespace meshchat::test
