#include "router/mesh.h"

#include <spdlog/spdlog.h>

#include <chrono>

namespace meshchat::router {
namespace {
// Heartbeat `req`: whether the sender hears the recipient (0 from nodes that predate it).
constexpr uint64_t kHearYou = 1, kDeafToYou = 2;
}  // namespace

Mesh::Mesh(zmq::context_t& ctx, Reactor& reactor, const ClusterMap& map, std::string self_id,
           uint64_t incarnation, MeshOptions opts)
    : ctx_(ctx),
      reactor_(reactor),
      map_(map),
      self_(std::move(self_id)),
      incarnation_(incarnation),
      opts_(opts),
      router_(ctx, zmq::socket_type::router) {
  if (opts_.local) opts_.local->Add(self_, this);
}

Mesh::~Mesh() {
  if (!opts_.local || opts_.local->Find(self_) != this) return;
  opts_.local->Remove(self_);
  for (const auto& [id, m] : opts_.local->all()) m->DropLocal(self_, this);
}

void Mesh::DropLocal(const std::string& node, const Mesh* mesh) {
  if (auto it = peers_.find(node); it != peers_.end() && it->second.local == mesh)
    it->second.local = nullptr;  // no DEALER either: Send refuses (see there)
}

int64_t Mesh::NowMs() const {
  return reactor_.clock().MonoMs();
}

int64_t Mesh::WallMs() const {
  return reactor_.clock().WallMs();
}

int64_t Mesh::TakeInboundDelayMs() {
  // Whether a peer still talks comes from when it was last heard (kept per envelope anyway),
  // passed here four times a second rather than on the receive path.
  const int64_t wall = WallMs(), mono = NowMs();
  for (const auto& [id, p] : peers_)
    if (p.last_heard_ms != 0) inbound_delay_.OnEnvelope(id, wall - (mono - p.last_heard_ms));
  return inbound_delay_.TakeWorstMs(wall);
}

void Mesh::Start() {
  const NodeInfo* me = map_.Find(self_);
  if (!me) throw std::runtime_error("node " + self_ + " is not in the cluster map");
  router_.set(zmq::sockopt::routing_id, self_);
  router_.set(zmq::sockopt::router_mandatory, 1);
  router_.set(zmq::sockopt::router_handover, 1);
  router_.set(zmq::sockopt::rcvhwm, opts_.hwm);
  router_.set(zmq::sockopt::sndhwm, opts_.hwm);
  router_.set(zmq::sockopt::backlog, 4096);
  router_.set(zmq::sockopt::linger, 0);
  if (!opts_.curve.empty()) MakeCurveServer(router_, opts_.curve);
  router_.bind(me->mesh);
  for (const auto& n : map_.nodes)
    if (n.id != self_) AddPeer(n);
  reactor_.AddZmqReader(router_, [this] { return ReceiveOne(); });
  reactor_.OnTurnEnd([this] { DeliverLocal(); });
  reactor_.OnTurnEndLast([this] { Flush(); });
  reactor_.Every(opts_.heartbeat_ms, [this] { Heartbeat(); });
  reactor_.Every(opts_.heartbeat_ms / 2, [this] { CheckPeers(); });
  // The first heartbeats fail while connections are still being set up (ZMQ_IMMEDIATE): try
  // again soon so peers see each other in well under a heartbeat interval.
  for (int64_t ms : {20, 60, 150, 300}) reactor_.After(ms, [this] { Heartbeat(); });
}

void Mesh::AddPeer(const NodeInfo& n) {
  Peer p;
  p.local = opts_.local ? opts_.local->Find(n.id) : nullptr;
  if (!p.local) Connect(n, p);
  peers_.emplace(n.id, std::move(p));
}

void Mesh::Connect(const NodeInfo& n, Peer& p) {
  p.dealer = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::dealer);
  p.connected_ms = NowMs();
  p.worked = false;
  p.dealer->set(zmq::sockopt::routing_id, self_);
  p.dealer->set(zmq::sockopt::immediate, 1);
  p.dealer->set(zmq::sockopt::sndhwm, opts_.hwm);
  p.dealer->set(zmq::sockopt::linger, 0);
  p.dealer->set(zmq::sockopt::reconnect_ivl, 100);
  p.dealer->set(zmq::sockopt::reconnect_ivl_max, 1000);
  // A link that stalls (a partition, a frozen peer) is closed and made again once it heals,
  // instead of waiting out TCP's retransmission backoff on the old connection, which had
  // grown to seconds (scripts/chaos partition: messages after the heal waited up to 6.6 s).
  p.dealer->set(zmq::sockopt::heartbeat_ivl, 1000);
  p.dealer->set(zmq::sockopt::heartbeat_timeout, 3000);
  p.dealer->set(zmq::sockopt::connect_timeout, 1000);
  p.dealer->set(zmq::sockopt::tcp_maxrt, 3000);
  if (!opts_.curve.empty()) {
    if (n.curve.empty()) throw std::runtime_error("node " + n.id + " has no curve key");
    MakeCurveClient(*p.dealer, opts_.curve, n.curve);
    p.curve = n.curve;
  }
  p.dealer->connect(n.mesh);
}

void Mesh::ApplyMap() {
  for (auto it = peers_.begin(); it != peers_.end();) {
    const NodeInfo* n = map_.Find(it->first);
    if (n && n->curve == it->second.curve) {
      ++it;
      continue;
    }  // gone, or a new key (rotated): the link is made again below
    const std::string gone = it->first;
    const bool was_up = it->second.up;
    it = peers_.erase(it);
    if (was_up && on_peer_down_) on_peer_down_(gone);
  }
  for (const auto& n : map_.nodes)
    if (n.id != self_ && !peers_.count(n.id)) AddPeer(n);
  Heartbeat();  // new peers hear from us at once
}

Status Mesh::Send(const std::string& node, codec::Envelope env) {
  env.incarnation = incarnation_;
  if (env.epoch == 0) env.epoch = map_.epoch;
  if (node == self_) {
    TakeLocal(self_, std::move(env));
    return Status::Ok();
  }
  auto it = peers_.find(node);
  if (it == peers_.end()) return {Code::kNotFound, "unknown node " + node};
  env.link = ++it->second.link_out;
  if (drop_ && drop_(node, env)) return Status::Ok();
  if (it->second.local) {
    ++stats_.sent;
    it->second.local->TakeLocal(self_, std::move(env));
    return Status::Ok();
  }
  if (!it->second.dealer)  // was co-hosted, and its mesh is gone (DropLocal)
    return {Code::kUnavailable, "co-hosted node " + node + " has stopped"};
  std::string encoded;
  codec::EncodeTo(env, encoded);
  it->second.queued.push_back(std::move(encoded));
  return Status::Ok();
}

void Mesh::Flush() {
  constexpr size_t kMaxParts = 1024;
  for (auto& [id, p] : peers_) {
    if (p.queued.empty()) continue;
    size_t i = 0;
    while (i < p.queued.size()) {
      const size_t end = std::min(p.queued.size(), i + kMaxParts);
      bool ok = true;
      for (size_t k = i; k < end && ok; ++k) {
        const auto flags = (k + 1 < end ? zmq::send_flags::sndmore : zmq::send_flags::none) |
                           zmq::send_flags::dontwait;
        // Only the first part can fail with EAGAIN: ZeroMQ takes the rest of a multipart
        // message once it has taken its first part.
        ok = p.dealer->send(zmq::buffer(p.queued[k]), flags).has_value();
      }
      if (ok) {
        stats_.sent += end - i;
        p.failing_since_ms = 0;
        p.worked = true;
      } else {
        stats_.send_failed += end - i;
        if (p.failing_since_ms == 0) p.failing_since_ms = NowMs();
      }
      i = end;
    }
    p.queued.clear();
  }
}

Status Mesh::Reply(const std::string& routing_id, codec::Envelope env) {
  env.incarnation = incarnation_;
  env.link = 0;  // operators' tools are not peers: no link sequence
  env.epoch = map_.epoch;
  try {
    auto r1 =
        router_.send(zmq::buffer(routing_id), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    if (!r1) return {Code::kUnavailable, "reply queue full"};
    router_.send(zmq::buffer(codec::Encode(env)), zmq::send_flags::dontwait);
    reactor_.Touch(router_);  // a send outside the drain may consume the socket's edge
  } catch (const zmq::error_t& e) {
    // EHOSTUNREACH under ROUTER_MANDATORY: the requester is gone.
    return {Code::kUnavailable, std::string("reply failed: ") + e.what()};
  }
  return Status::Ok();
}

bool Mesh::ReceiveOne() {
  zmq::message_t id, payload;
  if (!router_.recv(id, zmq::recv_flags::dontwait)) return false;
  const std::string from = id.to_string();
  bool more = id.more();
  // CURVE: the key's owner is read from the first payload part (libzmq 4.3.4 leaves the
  // routing id part it prefetched without the connection's metadata).
  bool checked = opts_.curve.empty(), authentic = true;
  while (more) {  // one envelope per part
    if (!router_.recv(payload, zmq::recv_flags::dontwait)) return true;
    more = payload.more();
    if (!checked) {
      authentic = Authentic(from, payload);
      checked = true;
    }
    if (authentic) Deliver(from, payload.to_string_view());
  }
  return true;
}

bool Mesh::Authentic(const std::string& from, const zmq::message_t& m) {
  // ZAP named the connection by its key: a node id, or "operator:NAME" (router/curve.h).
  const char* user = zmq_msg_gets(m.handle(), "User-Id");
  const std::string who = user ? user : "";
  const bool ok = map_.Find(from) ? who == from : who.starts_with("operator:");
  if (!ok) {
    ++stats_.impostors;
    const int64_t now = NowMs();
    if (now - last_impostor_log_ms_ > 1000) {
      last_impostor_log_ms_ = now;
      spdlog::warn("dropped envelopes claiming to be from '{}' over the key of '{}' ({} so far)",
                   from, who, stats_.impostors);
    }
  }
  return ok;
}

void Mesh::Deliver(const std::string& from, std::string_view payload) {
  codec::Envelope env;
  if (codec::Decode(payload, env) != codec::DecodeStatus::kOk) {
    ++stats_.decode_errors;
    const int64_t now = NowMs();
    if (now - last_decode_log_ms_ > 1000) {  // a broken peer must not flood the log
      last_decode_log_ms_ = now;
      spdlog::warn("undecodable mesh envelope from '{}' ({} so far)", from, stats_.decode_errors);
    }
    return;
  }
  Accept(from, std::move(env));
}

void Mesh::Accept(const std::string& from, codec::Envelope&& env) {
  ++stats_.received;
  if (auto it = peers_.find(from); it != peers_.end()) {
    Peer& p = it->second;
    p.last_heard_ms = NowMs();
    if (!p.up || p.incarnation != env.incarnation) {
      const bool restarted = p.incarnation != 0 && p.incarnation != env.incarnation;
      p.up = true;
      p.incarnation = env.incarnation;
      spdlog::info("peer {} up{}", from, restarted ? " (restarted)" : "");
      if (restarted || p.link_in == 0) p.link_in = env.link ? env.link - 1 : 0;
      if (on_peer_up_) on_peer_up_(from, restarted);
    }
    if (env.link != 0) {
      if (p.link_in != 0 && env.link != p.link_in + 1) {
        const uint64_t lost = env.link > p.link_in ? env.link - p.link_in - 1 : 0;
        ++stats_.link_gaps;
        stats_.link_lost += lost;
        spdlog::warn("link from {}: {} envelopes lost on the way", from, lost);
        if (on_link_gap_) on_link_gap_(from, lost);
      }
      p.link_in = env.link;
    }
  }
  if (env.type == codec::MeshType::kHeartbeat) {
    // Whether the peer hears us: a peer that keeps saying no while we hear it means our link
    // to it is broken (CURVE: it refused our key before it knew it); CheckPeers makes it
    // again. A single "no" is normal (start-up, a peer that was frozen).
    if (auto it = peers_.find(from); it != peers_.end()) {
      if (env.req != kDeafToYou)
        it->second.deaf_since_ms = 0;
      else if (it->second.deaf_since_ms == 0)
        it->second.deaf_since_ms = NowMs();
    }
    // `arg`: the sender's wall clock when it sent this (0 from nodes that predate it).
    if (env.arg != 0) inbound_delay_.OnHeartbeat(from, static_cast<int64_t>(env.arg), WallMs());
    return;
  }
  if (on_envelope_) on_envelope_(from, std::move(env));
}

void Mesh::TakeLocal(const std::string& from, codec::Envelope&& env) {
  if (local_.empty()) reactor_.Soon();  // same thread: the next turn must not sleep
  local_.emplace_back(from, std::move(env));
}

void Mesh::DeliverLocal() {
  // Bounded per turn so a handler that keeps messaging itself cannot stall the loop.
  for (int i = 0; i < 4096 && !local_.empty(); ++i) {
    auto [from, env] = std::move(local_.front());
    local_.pop_front();
    if (from != self_)
      Accept(from, std::move(env));
    else if (on_envelope_)
      on_envelope_(self_, std::move(env));
  }
  if (!local_.empty()) reactor_.Soon();  // more next turn, without sleeping
}

void Mesh::Heartbeat() {
  for (auto& [id, p] : peers_) HeartbeatTo(id, p);
}

void Mesh::HeartbeatTo(const std::string& id, const Peer& p) {
  codec::Envelope hb;
  hb.type = codec::MeshType::kHeartbeat;
  hb.arg = static_cast<uint64_t>(WallMs());  // how long it waits on its way: a load signal
  hb.req = p.up ? kHearYou : kDeafToYou;     // so a peer learns its link to us is broken
  (void)Send(id, std::move(hb));             // a failed heartbeat is what CheckPeers notices
}

void Mesh::Reconnect(const std::string& id, Peer& p, const char* why) {
  const NodeInfo* n = map_.Find(id);
  if (!n || p.local || !p.dealer) return;  // co-hosted (or was): no link to make
  // Quiet while a peer is merely down (a link that never worked is made again every second).
  spdlog::log(p.worked ? spdlog::level::info : spdlog::level::debug, "link to {} made again: {}",
              id, why);
  Connect(*n, p);
  p.failing_since_ms = p.deaf_since_ms = 0;
  // Heard soon after the new handshake, not at our next heartbeat (which could fall, every
  // second, just before the peer's next "no" makes us start over).
  for (int64_t ms : {20, 60, 150, 300})
    reactor_.After(ms, [this, id] {
      if (auto it = peers_.find(id); it != peers_.end()) HeartbeatTo(id, it->second);
    });
}

void Mesh::CheckPeers() {
  const int64_t now = NowMs();
  for (auto& [id, p] : peers_) {
    // CURVE: libzmq never retries a connection its peer refused at the handshake (a key the
    // peer did not know yet: a node added or re-keyed before the others took the new map).
    // The link is made again every second while it never took a send (ZMQ_IMMEDIATE: it is
    // not connected, so nothing is lost), and once it did, when the peer has said for 2 s
    // that it does not hear us while we hear it, or when it took nothing for 3.5 s.
    if (!opts_.curve.empty() && !p.worked && p.failing_since_ms != 0 &&
        now - p.connected_ms > 1000) {
      Reconnect(id, p, "it never took anything");  // not connected: nothing to lose
    } else if (!opts_.curve.empty() && now - p.connected_ms > 2000) {
      if (p.deaf_since_ms != 0 && now - p.deaf_since_ms > 2000)
        Reconnect(id, p, "it does not hear us");
      else if (p.failing_since_ms != 0 && now - p.failing_since_ms > opts_.dead_after_ms)
        Reconnect(id, p, "it takes nothing");
    }
    if (p.up && now - p.last_heard_ms > opts_.dead_after_ms) {
      p.up = false;
      spdlog::warn("peer {} down (silent for {} ms)", id, now - p.last_heard_ms);
      if (on_peer_down_) on_peer_down_(id);
    }
  }
}

bool Mesh::IsUp(const std::string& node) const {
  if (node == self_) return true;
  auto it = peers_.find(node);
  return it != peers_.end() && it->second.up;
}

size_t Mesh::PeersUp() const {
  size_t n = 0;
  for (const auto& [id, p] : peers_) n += p.up ? 1 : 0;
  return n;
}

}  // namespace meshchat::router
