// What a handler wants done. Handlers (GatewayCore, SessionCore) never touch sockets: they
// append effects, and the service that owns the sockets carries them out. Tests inspect them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "codec/envelope.h"

namespace meshchat::nodes {

struct Effects {
  struct MeshSend {
    std::string node;
    codec::Envelope env;
    uint64_t fail_conn = 0;  // if the send fails, tell this client connection (0 = nobody)
    // Depends on nothing this node has yet to make durable: a durable service sends it at
    // the end of the turn, ahead of the batches waiting for their fsync. Only for envelopes
    // of a kind that is always sent so (their order among themselves is kept) and whose order
    // against the batched ones does not matter.
    bool now = false;
  };
  struct Write {
    uint64_t conn;
    std::string bytes;  // whole encoded frames
  };
  std::vector<MeshSend> mesh;
  std::vector<Write> writes;
  std::vector<uint64_t> closes;                     // close after the queued writes are flushed
  std::vector<std::string> subscribe, unsubscribe;  // gateway: presence topics (user ids)
  std::vector<uint64_t> authenticated;  // gateway: connections that passed hello (larger frames)

  // A frame (type and body) to one client connection, through the gateway that stamped it.
  void ToClient(const codec::Stamp& to, uint8_t type, std::string body) {
    codec::Envelope env;
    env.type = codec::MeshType::kToClient;
    env.key = to.user;
    env.stamp = to;
    env.ftype = type;
    env.body = std::move(body);
    mesh.push_back({to.gateway, std::move(env), 0});
  }

  void Clear() {
    mesh.clear();
    writes.clear();
    closes.clear();
    subscribe.clear();
    unsubscribe.clear();
    authenticated.clear();
  }
};

}  // namespace meshchat::nodes
