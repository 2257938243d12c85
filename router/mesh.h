// Mesh peer links. Every node binds one ROUTER for all inbound mesh traffic and keeps one
// outbound DEALER per peer (routing id = own node id), so:
// - a send to a peer that has no live connection, or whose queue is full, fails at once
//   (ZMQ_IMMEDIATE + non-blocking send): an error to handle, never a silent drop;
// - ZeroMQ keeps per-connection order, so a peer sees our envelopes in the order we sent them;
// - the ROUTER has ROUTER_MANDATORY (replies to vanished requesters fail loudly) and
//   ROUTER_HANDOVER (a restarted peer reusing its id is accepted).
// Heartbeats every second detect dead peers; every envelope carries the sender's incarnation
// so a restart is noticed before anything the new process sent is handled, and a per-link
// sequence: ZeroMQ drops what is queued on a connection it closes (heartbeat or TCP timeout)
// and a send that fails loses its batch, so later envelopes can arrive after lost ones. The
// receiver sees the jump (at the latest with the next heartbeat) and is told (OnLinkGap):
// protocols whose receiver acts on order (pushes to clients, acked cumulatively) recover.
// Envelopes addressed to this node itself, or to a node co-hosted in this process on the same
// reactor (router/local_links.h), are queued and delivered at the end of the turn.
// Envelopes to a peer are queued during the turn and sent at its very end as one multipart
// ZeroMQ message per peer (one envelope per part): under load, one wake-up of each side's
// I/O thread carries many envelopes instead of one.
#pragma once

#include <zmq.hpp>

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "base/status.h"
#include "codec/envelope.h"
#include "router/cluster_map.h"
#include "router/curve.h"
#include "router/inbound_delay.h"
#include "router/local_links.h"
#include "router/reactor.h"

namespace meshchat::router {

struct MeshOptions {
  int64_t heartbeat_ms = 1000;
  int64_t dead_after_ms = 3500;
  int hwm = 100000;  // per-link message queue bound
  // This node's CURVE keys: links are encrypted and each envelope must come from the node
  // (or an operator) its key belongs to. Empty: plaintext links. A ZapHandler on the same
  // context must be started first (router/curve.h).
  CurveKeys curve;
  // Nodes co-hosted with this one (same process, same reactor): reached without ZeroMQ. The
  // mesh registers itself on construction, so every co-hosted mesh must be constructed
  // before the first one starts.
  LocalLinks* local = nullptr;
};

struct MeshStats {
  uint64_t sent = 0;
  uint64_t received = 0;
  uint64_t send_failed = 0;
  uint64_t decode_errors = 0;
  uint64_t impostors = 0;  // CURVE: envelopes whose sender id is not its key's (dropped)
  uint64_t link_gaps = 0;  // jumps in a peer's link sequence (envelopes lost on the way)
  uint64_t link_lost = 0;  // envelopes those jumps skipped
};

class Mesh {
 public:
  using EnvelopeHandler = std::function<void(const std::string& from, codec::Envelope&& env)>;
  using PeerUpHandler = std::function<void(const std::string& node, bool restarted)>;
  using PeerDownHandler = std::function<void(const std::string& node)>;
  using LinkGapHandler = std::function<void(const std::string& node, uint64_t lost)>;

  Mesh(zmq::context_t& ctx, Reactor& reactor, const ClusterMap& map, std::string self_id,
       uint64_t incarnation, MeshOptions opts = {});
  ~Mesh();
  Mesh(const Mesh&) = delete;
  Mesh& operator=(const Mesh&) = delete;

  // Binds the ROUTER, connects to every peer, starts heartbeats. Start-up: may throw on a
  // ZeroMQ error (e.g. the endpoint is taken).
  void Start();

  void OnEnvelope(EnvelopeHandler h) { on_envelope_ = std::move(h); }
  void OnPeerUp(PeerUpHandler h) { on_peer_up_ = std::move(h); }
  void OnPeerDown(PeerDownHandler h) { on_peer_down_ = std::move(h); }
  // Envelopes from `node` were lost between ones that arrived (`lost` of them, at least).
  void OnLinkGap(LinkGapHandler h) { on_link_gap_ = std::move(h); }

  // Queues for a node of the map (or self); stamps incarnation and epoch. The turn's queue is
  // sent at the end of the turn; a peer that is unreachable then (no connection, or its queue
  // full) loses that batch, which is counted: every protocol above resends what matters.
  // kNotFound for a node that is not in the map.
  Status Send(const std::string& node, codec::Envelope env);
  // A fault seam for tests: envelopes to peers for which `drop` says true are lost after they
  // were stamped (as ZeroMQ loses what it had queued on a connection it closes).
  using DropFn = std::function<bool(const std::string& node, const codec::Envelope& env)>;
  void SetOutboundFault(DropFn drop) { drop_ = std::move(drop); }
  // Sends back over the ROUTER to whoever has `routing_id` (operators' tools).
  Status Reply(const std::string& routing_id, codec::Envelope env);

  // The map (the object given at construction) was replaced by a newer one: connects to the
  // nodes it added, drops the ones it removed (they count as down).
  void ApplyMap();
  bool IsUp(const std::string& node) const;
  size_t PeersUp() const;
  size_t PeersTotal() const { return peers_.size(); }
  uint64_t epoch() const { return map_.epoch; }
  zmq::context_t& context() { return ctx_; }
  zmq::socket_t& router_socket() { return router_; }  // for a handshake monitor
  const std::string& self() const { return self_; }
  uint64_t incarnation() const { return incarnation_; }
  const MeshStats& stats() const { return stats_; }
  // The worst wait of inbound envelopes since the last call, ms (router/inbound_delay.h).
  int64_t TakeInboundDelayMs();
  // From a co-hosted mesh (LocalLinks): `env` from node `from`, handled at the end of the turn.
  void TakeLocal(const std::string& from, codec::Envelope&& env);
  // The co-hosted mesh of `node` is being destroyed (process shutdown): sends to it now fail.
  void DropLocal(const std::string& node, const Mesh* mesh);

 private:
  struct Peer {
    std::unique_ptr<zmq::socket_t> dealer;
    std::vector<std::string> queued;  // encoded envelopes waiting for the end of the turn
    uint64_t incarnation = 0;         // last seen; 0 = never heard
    int64_t last_heard_ms = 0;
    bool up = false;
    std::string curve;             // the peer's public key the link was made with
    int64_t connected_ms = 0;      // when the DEALER was made
    int64_t failing_since_ms = 0;  // every send failed since then (0: the last one went)
    int64_t deaf_since_ms = 0;     // its heartbeats say it does not hear us, since then
    bool worked = false;           // a send went through since the DEALER was made
    uint64_t link_out = 0;         // last link sequence stamped on an envelope to it
    uint64_t link_in = 0;          // last link sequence heard from it (its incarnation)
    Mesh* local = nullptr;         // co-hosted: reached through LocalLinks, no DEALER
  };
  void AddPeer(const NodeInfo& n);
  // Makes the peer's DEALER (again): options, CURVE keys, connect.
  void Connect(const NodeInfo& n, Peer& p);
  bool ReceiveOne();
  // CURVE: whether a message from routing id `from` came with the key of that node (or of an
  // operator, for ids that are not nodes).
  bool Authentic(const std::string& from, const zmq::message_t& m);
  void Flush();
  void Deliver(const std::string& from, std::string_view payload);
  // A decoded envelope from a peer: peer liveness, link sequence, heartbeats, then the handler.
  void Accept(const std::string& from, codec::Envelope&& env);
  void Heartbeat();
  void HeartbeatTo(const std::string& id, const Peer& p);
  // CURVE: makes a broken link to a peer again (see CheckPeers).
  void Reconnect(const std::string& id, Peer& p, const char* why);
  void CheckPeers();
  void DeliverLocal();
  int64_t NowMs() const;  // the reactor's clock
  int64_t WallMs() const;

  zmq::context_t& ctx_;
  Reactor& reactor_;
  const ClusterMap& map_;
  std::string self_;
  uint64_t incarnation_;
  MeshOptions opts_;
  zmq::socket_t router_;
  std::unordered_map<std::string, Peer> peers_;
  std::deque<std::pair<std::string, codec::Envelope>> local_;  // from self or co-hosted
  EnvelopeHandler on_envelope_;
  PeerUpHandler on_peer_up_;
  PeerDownHandler on_peer_down_;
  LinkGapHandler on_link_gap_;
  DropFn drop_;
  MeshStats stats_;
  int64_t last_decode_log_ms_ = 0;
  int64_t last_impostor_log_ms_ = 0;
  InboundDelay inbound_delay_{opts_.heartbeat_ms};
};

}  // namespace meshchat::router
