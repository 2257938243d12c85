// The session shard's logic, independent of sockets. It owns, for the users that hash to it:
// - the session directory: user -> devices and the gateway connection each is on;
// - the parsing and validation of what those users' clients send (the gateway forwards bodies
//   undecoded), and routing of one-to-one messages to the recipient's shard.
// Flow of a send (docs/ARCHITECTURE.md): sender's shard validates and assigns the server id,
// hands a `deliver` to the recipient's shard, which pushes to every connected device of the
// recipient and answers; the sender's shard then acks `sent` (or reports the error).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "codec/client_messages.h"
#include "codec/envelope.h"
#include "nodes/effects.h"

namespace meshchat::nodes {

struct SessionConfig {
  std::string node_id;
  uint64_t epoch = 1;
  int64_t deliver_timeout_ms = 5000;
};

struct DeviceConn {
  std::string device;
  std::string gateway;
  uint64_t conn = 0;
  bool operator==(const DeviceConn&) const = default;
};

class SessionCore {
 public:
  using OwnerFn = std::function<const std::string&(std::string_view user)>;
  using PeerUpFn = std::function<bool(const std::string& node)>;

  SessionCore(SessionConfig cfg, const Clock& clock, OwnerFn owner, PeerUpFn peer_up);

  void OnEnvelope(const std::string& from, codec::Envelope&& env, Effects& fx);
  // A gateway stopped heart-beating or restarted: its connections are gone.
  void ForgetGateway(const std::string& gateway);
  // Fails deliveries whose recipient shard did not answer in time.
  void OnTick(Effects& fx);

  size_t directory_size() const { return directory_size_; }
  std::vector<DeviceConn> DevicesOf(const std::string& user) const;

 private:
  struct Pending {
    codec::Stamp sender;
    uint64_t cid = 0;
    uint64_t id = 0;
    uint64_t ts = 0;
    int64_t deadline_ms = 0;
  };
  bool CheckOwner(const std::string& from, const codec::Envelope& env, Effects& fx);
  void HandleClientFrame(codec::Envelope&& env, Effects& fx);
  void HandleSend(const codec::Envelope& env, Effects& fx);
  void HandleDeliver(const std::string& from, codec::Envelope&& env, Effects& fx);
  void HandleDeliverResult(const codec::Envelope& env, Effects& fx);
  void ToClient(const codec::Stamp& to, codec::FrameType type, std::string body, Effects& fx);
  void ErrorToClient(const codec::Stamp& to, codec::ErrorCode code, const std::string& msg,
                     std::optional<uint64_t> cid, Effects& fx);
  uint64_t NextMessageId();

  SessionConfig cfg_;
  const Clock& clock_;
  OwnerFn owner_;
  PeerUpFn peer_up_;
  std::unordered_map<std::string, std::vector<DeviceConn>> directory_;
  size_t directory_size_ = 0;
  std::map<uint64_t, Pending> pending_;  // by request id
  uint64_t next_req_ = 1;
  uint64_t last_id_ = 0;
};

}  // namespace meshchat::nodes
