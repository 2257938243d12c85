// What the parts of a session shard (conversations, inboxes, the core) share: identity,
// configuration, clock, store, owners and channel.
#pragma once

#include <optional>
#include <string>

#include "base/clock.h"
#include "codec/client_messages.h"
#include "codec/envelope.h"
#include "nodes/runtime/metrics.h"
#include "nodes/shard/channel.h"
#include "nodes/shard/effects.h"
#include "nodes/shard/shard_context.h"
#include "store/kv_store.h"

namespace meshchat::nodes {

struct SessionConfig {
  std::string node_id;
  uint64_t epoch = 1;
  int64_t deliver_timeout_ms = 5000;               // sender's shard waits this long for the owner
  int64_t inbox_ttl_ms = 30LL * 24 * 3600 * 1000;  // undelivered messages expire after 30 days
  size_t max_devices = 5;                          // connected at once, and remembered, per user
  uint64_t push_window = 256;                      // unacked pushes in flight per connection...
  // ...and at most this many bytes of them (one push always goes): well under the gateway's
  // 4 MiB output cap, so a client reading a backlog of large messages is never cut off as slow.
  size_t push_window_bytes = 1u << 20;
  int64_t push_rto_initial_ms = 2000;  // resend unacked pushes after this, doubling...
  int64_t push_rto_max_ms = 60000;     // ...up to this
  double send_rate = 50;               // messages per second per user (sustained)...
  double send_burst = 100;             // ...with this many allowed at once
  std::string secret;                  // cluster secret: verifies the tickets of media references
  std::string previous_secret;         // being rotated out: still verifies them
};

struct SessionContext {
  SessionConfig cfg;
  const Clock& clock;
  store::KvStore& kv;
  OwnerFn owner;
  PeerUpFn peer_up;
  OwnerFn group_owner;     // the group node owning a group id ("" if none)
  OwnerFn presence_owner;  // the presence node owning a user id ("" if none)
  ReliableChannel& channel;
  OwnerFn media_owner;           // the media node owning a media id (hex) ("" if none)
  mutable CodeCounter errors{};  // errors answered to clients, by code (metrics)

  // A frame (type and body) to one client connection, through its gateway.
  void ToClient(const codec::Stamp& to, uint8_t type, std::string body, Effects& fx) const {
    fx.ToClient(to, type, std::move(body));
  }
  // An error frame, counted by code.
  void ErrorToClient(const codec::Stamp& to, codec::ErrorCode code, const std::string& msg,
                     std::optional<uint64_t> cid, bool fatal, Effects& fx) const {
    errors.Add(static_cast<uint8_t>(code));
    ToClient(to, static_cast<uint8_t>(codec::FrameType::kError),
             codec::Encode(codec::Error{code, msg, cid, fatal}), fx);
  }
};

// "a|b" with a <= b: one conversation, whichever side sends. '|' is not an id character.
inline std::string ConversationId(const std::string& a, const std::string& b) {
  return a <= b ? a + "|" + b : b + "|" + a;
}

}  // namespace meshchat::nodes
