// The gateway's protocol logic, independent of sockets: per-connection state (awaiting hello /
// authenticated), token checks, and routing of client frames to the user's session shard.
// The gateway reads only frame headers, with one exception: it decodes `hello` itself,
// because it must know who the client is before it can stamp and route anything.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/token_bucket.h"

#include <memory>
#include "codec/client_messages.h"
#include "codec/frame.h"
#include "nodes/gateway/address_limits.h"
#include "nodes/gateway/revocations.h"
#include "nodes/runtime/load_levels.h"
#include "nodes/runtime/metrics.h"
#include "nodes/shard/effects.h"
#include "router/hash_ring.h"

namespace meshchat::nodes {

struct GatewayConfig {
  std::string node_id;
  std::string secret;                // cluster token secret
  std::string previous_secret = {};  // being rotated out: its tokens are still accepted
  int64_t hello_timeout_ms = 10'000;
  // How long a client waits for its session shard to confirm registration before it is told
  // service_unavailable (and closed: it reconnects, possibly to another gateway).
  int64_t register_timeout_ms = 3'000;
  // Frames per second a connection may send (and burst): beyond it frames are refused with
  // rate_limited before they reach a worker.
  double frame_rate = 500;
  double frame_burst = 1000;
  int64_t token_leeway_s = 30;
  // Tokens valid for longer than this from now are refused: tokens are short-lived, which is
  // also what bounds the revocation list (nodes/gateway/revocations.h).
  int64_t max_token_ttl_s = 86'400;
  AddressLimitConfig addresses = {};  // per source address: connects and failed authentications
  // How often each session shard is told which of our connections it should hold
  // (codec/conn_sync.h); also how long a view that drifted apart can stay apart.
  int64_t conn_sync_ms = 1'000;
};

class GatewayCore {
 public:
  using PeerUpFn = std::function<bool(const std::string& node)>;

  // `sessions` is the session-role ring; `peer_up` tells whether a mesh peer is reachable.
  GatewayCore(GatewayConfig cfg, const Clock& clock, const router::HashRing& sessions,
              PeerUpFn peer_up);

  // Media frames go to the media ring; upload_begin gets a fresh id from `new_id` (16 random
  // bytes). Without a media ring they are refused as service_unavailable.
  void SetMedia(const router::HashRing* media, std::function<std::string()> new_id) {
    media_ = media;
    new_media_id_ = std::move(new_id);
  }

  // Whether a new connection from `addr` (the client's IP) is taken: refused when the address
  // connects too fast or used up its failed authentications (closed at once, unread).
  bool AllowConnect(const std::string& addr);
  void OnOpen(uint64_t conn, const std::string& addr = "");
  void OnFrame(uint64_t conn, const codec::FrameView& frame, Effects& fx);
  // The transport could not decode a frame (oversize length, zero length): fatal error.
  void OnBadFrame(uint64_t conn, codec::DecodeStatus why, Effects& fx);
  void OnClosed(uint64_t conn, Effects& fx);
  void OnMesh(const std::string& from, codec::Envelope&& env, Effects& fx);
  // The session ring changed (it was `old_ring`): connections of users with another owner now
  // are closed at the old one and announced to the new one (until it confirms).
  void OnSessionsChanged(const router::HashRing& old_ring, Effects& fx);
  // A session shard came (back) up: announce our connections it owns, so its directory is
  // rebuilt after it restarts. Announcements are repeated every tick until confirmed: the
  // first ones can be lost while the links to a restarted peer are being re-established.
  void OnPeerUp(const std::string& node, Effects& fx);
  // Envelopes from `node` were lost on the way (router/mesh.h). If it is a session shard,
  // pushes to our clients may be missing in the middle of what they got, and clients ack
  // cumulatively: nothing more from it is forwarded until it confirms (kPushResyncOk) that
  // it starts every connection of ours over from its device's cursor (asked again each tick).
  void OnLinkGap(const std::string& node, Effects& fx);
  // Closes connections that did not authenticate (or get registered) in time; every
  // conn_sync_ms, sends each session shard the digest of what it should hold of ours.
  void OnTick(Effects& fx);
  // A presence change published for `user`: to each local connection watching it.
  void OnPublished(const std::string& user, std::string_view body, Effects& fx);
  // Drain: every client gets `reconnect` (go to another gateway) and is closed.
  void Drain(Effects& fx);
  // Graceful stop: every client gets bye{shutting_down} and is closed.
  void Shutdown(Effects& fx);
  // The node's load (nodes/runtime/load_levels.h). From level 1 typing frames and typing notices
  // are dropped and presence pushes coalesced (the newest per user goes out when the level is back
  // to normal); at level 3 sends of the heaviest users are refused (rate_limited, no cid: the
  // gateway does not read bodies).
  void SetLoad(const LoadState& load, Effects& fx);
  // `meshctl revoke`: the device's tokens signed at or before `at_s` are refused from now on,
  // and its connections that authenticated with one are closed. False if the list is full.
  bool Revoke(const std::string& user, const std::string& device, int64_t at_s, Effects& fx);
  Revocations& revocations() { return revoked_; }
  const ShedCounters& shed() const { return shed_; }

  size_t connections() const { return conns_.size(); }
  const CodeCounter& frames_in() const { return frames_in_; }
  const CodeCounter& errors() const { return errors_; }
  size_t authenticated() const { return authenticated_; }
  uint64_t refused_fast() const { return refused_fast_; }
  uint64_t refused_auth() const { return refused_auth_; }
  uint64_t resynced() const { return resynced_; }
  uint64_t push_resyncs() const { return push_resyncs_; }

 private:
  struct Conn {
    int64_t opened_ms = 0;
    bool authed = false;
    bool welcomed = false;    // the session shard confirmed registration; welcome sent
    bool registered = false;  // the shard (in its current incarnation) confirmed this conn
    uint64_t watch_gen = 0;   // generation of the connection's presence watch list
    std::unique_ptr<TokenBucket> frames;  // allocated with the first frame (idle conns: none)
    std::vector<std::string> watching;
    std::string user;
    std::string device;
    std::string addr;      // the client's IP ("" in tests)
    int64_t issued_s = 0;  // its token's "iat"
  };
  void Fatal(uint64_t conn, codec::ErrorCode code, const std::string& msg, Effects& fx);
  void Error(uint64_t conn, codec::ErrorCode code, const std::string& msg, Effects& fx);
  void HandleHello(uint64_t conn, Conn& c, std::string_view body, Effects& fx);
  void Forward(uint64_t conn, const Conn& c, const codec::FrameView& f, Effects& fx);
  void ForwardMedia(uint64_t conn, const Conn& c, const codec::FrameView& f, Effects& fx);
  void Announce(uint64_t conn, const Conn& c, codec::MeshType type, Effects& fx);
  void SendConnDigests(Effects& fx);
  void OnConnList(const std::string& shard, std::string_view body, Effects& fx);
  codec::Stamp StampOf(uint64_t conn, const Conn& c) const;

  GatewayConfig cfg_;
  const Clock& clock_;
  const router::HashRing& sessions_;
  PeerUpFn peer_up_;
  const router::HashRing* media_ = nullptr;
  std::function<std::string()> new_media_id_;
  void Unwatch(uint64_t conn, Conn& c, Effects& fx);

  std::unordered_map<uint64_t, Conn> conns_;
  CodeCounter frames_in_;  // by frame type
  CodeCounter errors_;     // errors this gateway answered, by code
  std::unordered_map<std::string, std::vector<uint64_t>> watchers_;  // user -> connections
  AddressLimits addresses_{cfg_.addresses};
  uint64_t refused_fast_ = 0, refused_auth_ = 0;
  LoadState load_;
  ShedCounters shed_;
  Revocations revoked_;
  int64_t revocations_expired_ms_ = 0;
  int64_t conns_synced_ms_ = 0;
  struct PushResync {
    uint64_t token = 0;
    int64_t asked_ms = 0;
  };
  std::unordered_map<std::string, PushResync> resyncing_;  // session node -> what we asked
  uint64_t next_resync_token_ = 1;
  uint64_t push_resyncs_ = 0;
  void AskPushResync(const std::string& node, Effects& fx);
  // While a resync with `from` is pending: whether `env` is the answer (which ends it) or
  // something to drop (anything else that would reach a client).
  bool HeldByResync(const std::string& from, const codec::Envelope& env);
  uint64_t resynced_ = 0;  // connections re-announced or closed because a shard's view differed
  HeavySenders heavy_;
  std::unordered_map<std::string, std::string> held_presence_;  // user -> newest push held back
  size_t authenticated_ = 0;
};

}  // namespace meshchat::nodes
