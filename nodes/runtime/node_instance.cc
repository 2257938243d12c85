#include "nodes/runtime/node_instance.h"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "base/cluster_secret.h"
#include "codec/client_messages.h"

namespace meshchat::nodes {
namespace {
// Bytes of the regular files under a node's data directory (its LMDB files). Errors (a file
// removed while we look) count as 0: this is a status figure, not an invariant.
uint64_t StoreBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code fec;
    if (it->is_regular_file(fec)) {
      const auto n = it->file_size(fec);
      if (!fec) total += n;
    }
  }
  return total;
}
// A newer map replaces `map` in place (everything holds a reference to it; `previous` gets the
// old one) if it is valid and newer, no hand-over runs here, it keeps this node (which may
// become `leaving`), changes the owners of at most one role (one hand-over at a time), and
// drops only nodes that were leaving (their keys are gone already).
Status TakeMap(router::ClusterMap& map, const router::NodeInfo& self, std::string_view text,
               uint64_t handover_pending, router::ClusterMap& previous) {
  using router::Role;
  auto next = router::ClusterMap::Parse(text);
  if (!next.ok()) return next.status();
  if (next->epoch <= map.epoch)
    return {Code::kInvalid, "epoch " + std::to_string(next->epoch) + " is not newer than " +
                                std::to_string(map.epoch)};
  if (handover_pending != 0)
    return {Code::kInvalid, "keys of the previous map change are still moving; retry later"};
  const router::NodeInfo* me = next->Find(self.id);
  router::NodeInfo mine = me ? *me : router::NodeInfo{}, was = self;
  mine.leaving = was.leaving = false;
  if (!me || !(mine == was)) return {Code::kInvalid, "the new map changes or drops this node"};
  if (next->curve() != map.curve())
    return {Code::kInvalid, "the new map turns CurveZMQ on or off: restart every node for that"};
  auto owners = [](const router::ClusterMap& m, Role r) {
    auto v = m.IdsWithRole(r);
    std::sort(v.begin(), v.end());
    return v;
  };
  int changed = 0;
  for (Role r : {Role::kSession, Role::kGroup, Role::kPresence, Role::kMedia})
    changed += owners(*next, r) != owners(map, r);
  if (changed > 1)
    return {Code::kInvalid,
            "the new map changes the owners of several roles at once: one at a time"};
  for (const auto& n : map.nodes)
    if (n.role != Role::kGateway && !n.leaving && !next->Find(n.id))
      return {Code::kInvalid, "the new map drops " + n.id + ", which was not leaving first"};
  previous = std::move(map);
  map = std::move(next).value();
  return Status::Ok();
}

}  // namespace

NodeInstance::NodeInstance(const NodeArgs& args, std::optional<router::Role> role,
                           const RoleFactory& make, router::Reactor& reactor, const Clock& clock,
                           router::LocalLinks* local, std::shared_ptr<LastErrorSink> last_error)
    : reactor_(reactor), clock_(clock), last_error_(std::move(last_error)) {
  auto map = router::ClusterMap::Load(args.map_path);
  if (!map.ok()) throw std::runtime_error(map.status().message());
  map_ = std::move(map).value();
  const router::NodeInfo* found = map_.Find(args.id);
  if (!found) throw std::runtime_error("node '" + args.id + "' is not in " + args.map_path);
  self_ = *found;
  if (role && self_.role != *role)
    throw std::runtime_error("node '" + args.id + "' is a " + router::RoleName(self_.role) +
                             " in the map, not a " + router::RoleName(*role));
  data_dir_ = args.data_root + "/" + args.id;
  std::filesystem::create_directories(data_dir_);
  std::string secret = args.secret_file.empty() ? "" : ReadSecretFile(args.secret_file);
  std::string previous_secret;
  if (!args.secret_file.empty()) {
    auto prev = ReadSecret(args.secret_file, 1);
    if (!prev.ok()) throw std::runtime_error(prev.status().message() + " (its second line)");
    previous_secret = *prev;
    if (!previous_secret.empty())
      spdlog::info("{}: the previous cluster secret is still accepted (being rotated out)",
                   args.id);
  }
  std::random_device rd;
  const uint64_t incarnation = ((uint64_t{rd()} << 32) | rd()) | 1;  // never 0
  // CurveZMQ: our keys must be the ones the map lists for us; the ZAP handler answers for
  // the context before any socket binds.
  router::MeshOptions mesh_opts;
  mesh_opts.local = local;
  zap_ = std::make_unique<router::ZapHandler>(zctx_, reactor_);
  if (map_.curve()) {
    if (args.key_file.empty())
      throw std::runtime_error("the cluster map lists curve keys: give " + args.id + "'s key file");
    auto keys = router::LoadCurveKeys(args.key_file);
    if (!keys.ok()) throw std::runtime_error(keys.status().message());
    if (keys->public_key != self_.curve)
      throw std::runtime_error("the key in " + args.key_file +
                               " is not the one the map lists for " + args.id);
    mesh_opts.curve = *keys;
    zap_->Start(router::AdmittedKeys(map_));
  } else {
    spdlog::warn("{}: mesh links are plaintext (the cluster map lists no curve keys)", args.id);
  }
  mesh_ = std::make_unique<router::Mesh>(zctx_, reactor_, map_, args.id, incarnation, mesh_opts);
  ctx_ =
      std::make_unique<NodeContext>(NodeContext{map_, self_, reactor_, *mesh_, clock_, data_dir_,
                                                std::move(secret), NodeOptions::Parse(args.opts)});
  ctx_->curve = mesh_opts.curve;
  ctx_->previous_secret = previous_secret;
  ctx_->zap = map_.curve() ? zap_.get() : nullptr;
  service_ = make(self_.role, *ctx_);
  load_ = std::make_unique<LoadMonitor>(
      LoadConfig::FromOptions(ctx_->options, service_->DefaultLoadConfig()), clock_);
}

NodeInstance::~NodeInstance() = default;

void NodeInstance::Start() {
  started_ms_ = clock_.MonoMs();
  store_bytes_ = StoreBytes(data_dir_);
  // Status figures sampled each second: messages/s from the mesh counters, data dir size.
  reactor_.Every(1000, [this] {
    const uint64_t total = mesh_->stats().sent + mesh_->stats().received;
    msgs_per_s_ = total - last_total_;
    last_total_ = total;
    store_bytes_ = StoreBytes(data_dir_);
  });
  // Load: how late the loop runs a 50 ms timer (worst of each 250 ms), the queue and the
  // commit age, sampled four times a second into levels (nodes/runtime/load_levels.h).
  lag_due_ms_ = clock_.MonoMs() + 50;
  reactor_.Every(50, [this] {
    const int64_t now = clock_.MonoMs();
    worst_lag_ms_ = std::max(worst_lag_ms_, static_cast<double>(now - lag_due_ms_));
    lag_due_ms_ = now + 50;
  });
  sample_wall_ns_ = router::Reactor::MonoNs();
  sample_idle_ns_ = reactor_.idle_ns();
  reactor_.Every(250, [this] { SampleLoad(); });
  mesh_->OnEnvelope(
      [this](const std::string& from, codec::Envelope&& env) { OnEnvelope(from, std::move(env)); });
  mesh_->OnPeerUp(
      [this](const std::string& n, bool restarted) { service_->OnPeerUp(n, restarted); });
  mesh_->OnPeerDown([this](const std::string& n) { service_->OnPeerDown(n); });
  mesh_->OnLinkGap([this](const std::string& n, uint64_t) { service_->OnLinkGap(n); });
  mesh_->Start();
  if (map_.curve()) zap_->Watch(mesh_->router_socket(), "mesh");
  service_->Start();
  if (!self_.metrics.empty()) {
    std::string host;
    uint16_t port = 0;
    router::SplitHostPort(self_.metrics, host, port);
    metrics_ = std::make_unique<MetricsServer>(host, port);
    RenderMetrics();  // never serve an empty page, even in the first second
    reactor_.Every(1000, [this] { RenderMetrics(); });
  }
  spdlog::info("{} node {} started (pid {}, epoch {}, mesh {})", router::RoleName(self_.role),
               self_.id, getpid(), map_.epoch, self_.mesh);
}

void NodeInstance::SampleLoad() {
  const int64_t wall = router::Reactor::MonoNs(), idle = reactor_.idle_ns();
  const double busy = wall > sample_wall_ns_
                          ? 100.0 * (1.0 - static_cast<double>(idle - sample_idle_ns_) /
                                               static_cast<double>(wall - sample_wall_ns_))
                          : 0;
  sample_wall_ns_ = wall;
  sample_idle_ns_ = idle;
  LoadSample s{worst_lag_ms_, static_cast<double>(service_->QueueDepth()),
               static_cast<double>(service_->CommitAgeMs()), std::max(0.0, busy),
               static_cast<double>(mesh_->TakeInboundDelayMs())};
  worst_lag_ms_ = 0;
  if (!load_->Observe(s)) return;
  const LoadState& st = load_->state();
  auto level =
      st.level == LoadLevel::kNormal && !st.full ? spdlog::level::info : spdlog::level::warn;
  spdlog::log(level,
              "{}: load level {} ({}){}: loop lag {:.0f} ms, busy {:.0f}%, inbound delay {:.0f} "
              "ms, queue {:.0f}, commit {:.0f} ms",
              self_.id, static_cast<int>(st.level), LoadLevelName(st.level),
              st.full ? ", queue full: new sends refused" : "", s.lag_ms, s.busy_pct, s.delay_ms,
              s.queue, s.commit_ms);
  service_->OnLoad(st);
}

std::string NodeInstance::StatusBody() {
  codec::NodeStatus st{self_.id,
                       router::RoleName(self_.role),
                       static_cast<uint64_t>(getpid()),
                       mesh_->epoch(),
                       static_cast<uint64_t>(clock_.MonoMs() - started_ms_),
                       service_->Connections(),
                       mesh_->PeersUp(),
                       mesh_->PeersTotal()};
  st.msgs_per_s = msgs_per_s_;
  st.store_bytes = store_bytes_;
  st.last_error = last_error_->last();
  st.queue = service_->QueueDepth();
  st.handover = service_->HandoverPending();
  st.load = static_cast<uint64_t>(load_->state().level);
  st.full = load_->state().full;
  service_->FillReplication(st);
  return codec::Encode(st);
}

void NodeInstance::ReplyStatus(const std::string& to, uint64_t req) {
  codec::Envelope resp;
  resp.type = codec::MeshType::kStatusResp;
  resp.req = req;
  resp.body = StatusBody();
  (void)mesh_->Reply(to, std::move(resp));
}

void NodeInstance::OnEnvelope(const std::string& from, codec::Envelope&& env) {
  // Operator requests come from operator keys only. With CURVE an id that is not a node's
  // was admitted with an operator key (router::Mesh checks), so a request from a node id
  // means a node's key: it cannot drain, re-map, revoke or ask where users are.
  if (map_.curve() && IsOperatorRequest(env.type) && map_.Find(from)) {
    if (clock_.MonoMs() - last_refusal_log_ms_ > 1000) {
      last_refusal_log_ms_ = clock_.MonoMs();
      spdlog::warn("{}: operator request (type {}) from node {} refused: nodes cannot send them",
                   self_.id, static_cast<int>(env.type), from);
    }
    return;
  }
  if (env.type == codec::MeshType::kDrain) {  // answered with the status, as below
    spdlog::info("{}: draining on request", self_.id);
    service_->Drain();
  }
  if (env.type == codec::MeshType::kStatusReq || env.type == codec::MeshType::kDrain)
    return ReplyStatus(from, env.req);
  if (env.type == codec::MeshType::kDescribeReq) {
    codec::Envelope resp;
    resp.type = codec::MeshType::kDescribeResp;
    resp.req = env.req;
    resp.key = env.key;
    resp.body = service_->Describe(env.key);
    (void)mesh_->Reply(from, std::move(resp));
    return;
  }
  if (env.type == codec::MeshType::kMapUpdate) {  // answered with the status, as above
    router::ClusterMap previous;
    if (Status s = TakeMap(map_, self_, env.body, service_->HandoverPending(), previous); !s.ok()) {
      spdlog::warn("{}: new cluster map refused: {}", self_.id, s.message());
    } else {
      if (map_.curve()) zap_->SetAdmitted(router::AdmittedKeys(map_));
      mesh_->ApplyMap();
      service_->OnMapChanged(previous);
      spdlog::info("{}: cluster map epoch {} applied: {} nodes", self_.id, map_.epoch,
                   map_.nodes.size());
    }
    return ReplyStatus(from, env.req);
  }
  service_->OnEnvelope(from, std::move(env));
}

void NodeInstance::RenderMetrics() {
  MetricsText m;
  const std::string role_label = std::string("role=\"") + router::RoleName(self_.role) + "\"";
  m.Gauge("meshchat_up", "1 while the node runs", 1, role_label);
  m.Gauge("meshchat_uptime_seconds", "seconds since start",
          static_cast<double>(clock_.MonoMs() - started_ms_) / 1000);
  m.Gauge("meshchat_map_epoch", "cluster map epoch", static_cast<double>(mesh_->epoch()));
  m.Gauge("meshchat_peers_up", "mesh peers heard from recently",
          static_cast<double>(mesh_->PeersUp()));
  m.Gauge("meshchat_peers", "mesh peers in the map", static_cast<double>(mesh_->PeersTotal()));
  const auto& ms = mesh_->stats();
  m.Counter("meshchat_mesh_envelopes_sent_total", "envelopes sent to peers", ms.sent);
  m.Counter("meshchat_mesh_envelopes_received_total", "envelopes received", ms.received);
  m.Counter("meshchat_mesh_send_failures_total",
            "envelopes dropped because a peer was unreachable or its queue full", ms.send_failed);
  m.Counter("meshchat_mesh_link_gaps_total",
            "jumps in a peer's link sequence: envelopes lost between ones that arrived",
            ms.link_gaps);
  m.Counter("meshchat_mesh_link_lost_total", "envelopes those jumps skipped", ms.link_lost);
  m.Counter("meshchat_mesh_decode_errors_total", "undecodable envelopes received",
            ms.decode_errors);
  m.Counter("meshchat_mesh_impostor_envelopes_total",
            "envelopes dropped: the sender id is not the one its CURVE key belongs to",
            ms.impostors);
  m.Counter("meshchat_mesh_refused_keys_total",
            "mesh connections refused by the ZAP handler (unknown CURVE key)", zap_->denied());
  m.Counter("meshchat_mesh_failed_handshakes_total",
            "mesh connections that failed their handshake (e.g. plaintext peers)",
            zap_->handshake_failures());
  m.Gauge("meshchat_connections", "client connections (gateway) or registered devices",
          static_cast<double>(service_->Connections()));
  m.Gauge("meshchat_queue_depth",
          "work waiting: unacked channel entries and unsynced effects (workers), bytes for "
          "clients (gateway)",
          static_cast<double>(service_->QueueDepth()));
  m.Gauge("meshchat_load_level",
          "load level: 0 normal, 1 shed hints, 2 delay read receipts, 3 refuse heaviest "
          "senders",
          static_cast<double>(load_->state().level));
  m.Gauge("meshchat_load_full", "1 while the queue is over its hard cap (sends refused)",
          load_->state().full ? 1 : 0);
  m.Counter("meshchat_load_changes_total", "load level changes", load_->changes());
  m.Gauge("meshchat_loop_lag_seconds", "how late the loop ran a timer (worst, last sample)",
          load_->last().lag_ms / 1000);
  m.Gauge("meshchat_loop_busy_ratio", "share of the last sample the loop was busy",
          load_->last().busy_pct / 100);
  m.Gauge("meshchat_inbound_delay_seconds",
          "worst wait of inbound mesh envelopes (heartbeats), last sample",
          load_->last().delay_ms / 1000);
  m.Gauge("meshchat_commit_age_seconds", "age of the oldest commit waiting for its fsync",
          load_->last().commit_ms / 1000);
  service_->WriteMetrics(m);
  metrics_->Publish(m.str());
}

}  // namespace meshchat::nodes
