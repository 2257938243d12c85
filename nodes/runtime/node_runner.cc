#include "nodes/runtime/node_runner.h"

#include "base/cluster_secret.h"

#include <algorithm>

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "codec/client_messages.h"
#include "nodes/runtime/last_error_sink.h"

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

bool IsOperatorRequest(codec::MeshType t) {
  using codec::MeshType;
  return t == MeshType::kDrain || t == MeshType::kMapUpdate || t == MeshType::kRevoke ||
         t == MeshType::kDescribeReq;
}

std::string ReadSecretFile(const std::string& path) {
  auto s = ReadSecret(path);  // start-up: an unusable secret is fatal
  if (!s.ok()) throw std::runtime_error(s.status().message() + " (at least 16 characters)");
  return *s;
}

int RunNodeMain(int argc, char** argv, router::Role role, const ServiceFactory& make) {
  CLI::App app{std::string("meshchat ") + router::RoleName(role) + " node"};
  std::string map_path, id, data_root = "var/data", secret_file, log_level = "info";
  app.add_option("--map", map_path, "cluster map file")->required();
  app.add_option("--id", id, "this node's id in the map")->required();
  app.add_option("--data", data_root, "directory for node data (a subdirectory per node)");
  app.add_option("--secret-file", secret_file, "file holding the cluster token secret");
  std::string key_file;
  app.add_option(
      "--key-file", key_file,
      "this node's CURVE secret key (64 lowercase hex digits, mode 0600): needed when the map "
      "lists curve keys");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error");
  std::vector<std::string> opts;
  app.add_option("--opt", opts, "role setting KEY=VALUE (repeatable)");
  CLI11_PARSE(app, argc, argv);

  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  console->set_pattern(std::string("%Y-%m-%dT%H:%M:%S.%e %^%l%$ ") + id + " %v");
  auto last_error = std::make_shared<LastErrorSink>(codec::kMaxErrorTextBytes);
  auto logger = std::make_shared<spdlog::logger>(
      "node", spdlog::sinks_init_list{console, spdlog::sink_ptr(last_error)});
  logger->set_level(spdlog::level::from_str(log_level));
  spdlog::set_default_logger(logger);

  try {
    auto map = router::ClusterMap::Load(map_path);
    if (!map.ok()) throw std::runtime_error(map.status().message());
    const router::NodeInfo* found = map->Find(id);
    if (!found) throw std::runtime_error("node '" + id + "' is not in " + map_path);
    // A copy: the map object is replaced when a newer map arrives (meshctl add/remove).
    const router::NodeInfo self_info = *found;
    const router::NodeInfo* self = &self_info;
    if (self->role != role)
      throw std::runtime_error("node '" + id + "' is a " + router::RoleName(self->role) +
                               " in the map, not a " + router::RoleName(role));
    const std::string data_dir = data_root + "/" + id;
    std::filesystem::create_directories(data_dir);
    std::string secret = secret_file.empty() ? "" : ReadSecretFile(secret_file);
    std::string previous_secret;
    if (!secret_file.empty()) {
      auto prev = ReadSecret(secret_file, 1);
      if (!prev.ok()) throw std::runtime_error(prev.status().message() + " (its second line)");
      previous_secret = *prev;
      if (!previous_secret.empty())
        spdlog::info("the previous cluster secret is still accepted (being rotated out)");
    }

    // Signals arrive as readable events on the loop, never as asynchronous handlers.
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    const int sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

    SystemClock clock;
    zmq::context_t zctx(1);
    router::Reactor reactor(clock);
    std::random_device rd;
    const uint64_t incarnation = ((uint64_t{rd()} << 32) | rd()) | 1;  // never 0
    // CurveZMQ: our keys must be the ones the map lists for us; the ZAP handler answers for
    // the context before any socket binds.
    router::MeshOptions mesh_opts;
    router::ZapHandler zap(zctx, reactor);
    if (map->curve()) {
      if (key_file.empty())
        throw std::runtime_error("the cluster map lists curve keys: give --key-file");
      auto keys = router::LoadCurveKeys(key_file);
      if (!keys.ok()) throw std::runtime_error(keys.status().message());
      if (keys->public_key != self->curve)
        throw std::runtime_error("the key in " + key_file + " is not the one the map lists for " +
                                 id);
      mesh_opts.curve = *keys;
      zap.Start(router::AdmittedKeys(*map));
    } else {
      spdlog::warn("mesh links are plaintext (the cluster map lists no curve keys)");
    }
    router::Mesh mesh(zctx, reactor, *map, id, incarnation, mesh_opts);
    NodeOptions options = NodeOptions::Parse(opts);
    NodeContext ctx{*map, *self, reactor, mesh, clock, data_dir, std::move(secret), options};
    ctx.curve = mesh_opts.curve;
    ctx.previous_secret = previous_secret;
    ctx.zap = map->curve() ? &zap : nullptr;
    std::unique_ptr<Service> service = make(ctx);
    const int64_t started = clock.MonoMs();
    // Status figures sampled each second: messages/s from the mesh counters, data dir size.
    uint64_t msgs_per_s = 0, store_bytes = StoreBytes(data_dir);
    uint64_t last_total = 0;
    reactor.Every(1000, [&] {
      const uint64_t total = mesh.stats().sent + mesh.stats().received;
      msgs_per_s = total - last_total;
      last_total = total;
      store_bytes = StoreBytes(data_dir);
    });
    // Load: how late the loop runs a 50 ms timer (worst of each 250 ms), the queue and the
    // commit age, sampled four times a second into levels (nodes/runtime/load_levels.h).
    LoadMonitor load(LoadConfig::FromOptions(options, service->DefaultLoadConfig()), clock);
    double worst_lag_ms = 0;
    int64_t lag_due = clock.MonoMs() + 50;
    reactor.Every(50, [&] {
      const int64_t now = clock.MonoMs();
      worst_lag_ms = std::max(worst_lag_ms, static_cast<double>(now - lag_due));
      lag_due = now + 50;
    });
    int64_t sample_wall_ns = router::Reactor::MonoNs(), sample_idle_ns = reactor.idle_ns();
    reactor.Every(250, [&] {
      const int64_t wall = router::Reactor::MonoNs(), idle = reactor.idle_ns();
      const double busy = wall > sample_wall_ns
                              ? 100.0 * (1.0 - static_cast<double>(idle - sample_idle_ns) /
                                                   static_cast<double>(wall - sample_wall_ns))
                              : 0;
      sample_wall_ns = wall;
      sample_idle_ns = idle;
      LoadSample s{worst_lag_ms, static_cast<double>(service->QueueDepth()),
                   static_cast<double>(service->CommitAgeMs()), std::max(0.0, busy),
                   static_cast<double>(mesh.TakeInboundDelayMs())};
      worst_lag_ms = 0;
      if (!load.Observe(s)) return;
      const LoadState& st = load.state();
      auto level =
          st.level == LoadLevel::kNormal && !st.full ? spdlog::level::info : spdlog::level::warn;
      spdlog::log(level,
                  "load level {} ({}){}: loop lag {:.0f} ms, busy {:.0f}%, inbound delay {:.0f} "
                  "ms, queue {:.0f}, commit {:.0f} ms",
                  static_cast<int>(st.level), LoadLevelName(st.level),
                  st.full ? ", queue full: new sends refused" : "", s.lag_ms, s.busy_pct,
                  s.delay_ms, s.queue, s.commit_ms);
      service->OnLoad(st);
    });
    auto status_now = [&] {
      codec::NodeStatus st{id,
                           router::RoleName(role),
                           static_cast<uint64_t>(getpid()),
                           mesh.epoch(),
                           static_cast<uint64_t>(clock.MonoMs() - started),
                           service->Connections(),
                           mesh.PeersUp(),
                           mesh.PeersTotal()};
      st.msgs_per_s = msgs_per_s;
      st.store_bytes = store_bytes;
      st.last_error = last_error->last();
      st.queue = service->QueueDepth();
      st.handover = service->HandoverPending();
      st.load = static_cast<uint64_t>(load.state().level);
      st.full = load.state().full;
      return codec::Encode(st);
    };

    auto reply_status = [&](const std::string& to, uint64_t req) {
      codec::Envelope resp;
      resp.type = codec::MeshType::kStatusResp;
      resp.req = req;
      resp.body = status_now();
      (void)mesh.Reply(to, std::move(resp));
    };
    int64_t last_refusal_log_ms = 0;
    mesh.OnEnvelope([&](const std::string& from, codec::Envelope&& env) {
      // Operator requests come from operator keys only. With CURVE an id that is not a
      // node's was admitted with an operator key (router::Mesh checks), so a request from a
      // node id means a node's key: it cannot drain, re-map, revoke or ask where users are.
      if (map->curve() && IsOperatorRequest(env.type) && map->Find(from)) {
        if (clock.MonoMs() - last_refusal_log_ms > 1000) {
          last_refusal_log_ms = clock.MonoMs();
          spdlog::warn("operator request (type {}) from node {} refused: nodes cannot send them",
                       static_cast<int>(env.type), from);
        }
        return;
      }
      if (env.type == codec::MeshType::kDrain) {  // answered with the status, as below
        spdlog::info("draining on request");
        service->Drain();
      }
      if (env.type == codec::MeshType::kStatusReq || env.type == codec::MeshType::kDrain)
        return reply_status(from, env.req);
      if (env.type == codec::MeshType::kDescribeReq) {
        codec::Envelope resp;
        resp.type = codec::MeshType::kDescribeResp;
        resp.req = env.req;
        resp.key = env.key;
        resp.body = service->Describe(env.key);
        (void)mesh.Reply(from, std::move(resp));
        return;
      }
      if (env.type == codec::MeshType::kMapUpdate) {  // answered with the status, as above
        router::ClusterMap previous;
        if (Status s = TakeMap(*map, self_info, env.body, service->HandoverPending(), previous);
            !s.ok()) {
          spdlog::warn("new cluster map refused: {}", s.message());
        } else {
          if (map->curve()) zap.SetAdmitted(router::AdmittedKeys(*map));
          mesh.ApplyMap();
          service->OnMapChanged(previous);
          spdlog::info("cluster map epoch {} applied: {} nodes", map->epoch, map->nodes.size());
        }
        return reply_status(from, env.req);
      }
      service->OnEnvelope(from, std::move(env));
    });
    mesh.OnPeerUp([&](const std::string& n, bool restarted) { service->OnPeerUp(n, restarted); });
    mesh.OnPeerDown([&](const std::string& n) { service->OnPeerDown(n); });
    mesh.OnLinkGap([&](const std::string& n, uint64_t) { service->OnLinkGap(n); });

    bool shutting_down = false;
    auto st = reactor.AddFd(sigfd, EPOLLIN, [&](uint32_t) {
      signalfd_siginfo si;
      while (read(sigfd, &si, sizeof si) == sizeof si) {
      }
      if (shutting_down) {
        reactor.Stop();  // second signal: stop now
        return;
      }
      shutting_down = true;
      spdlog::info("stopping");
      service->BeginShutdown();
      // Let the loop flush goodbyes, then stop.
      reactor.After(300, [&] { reactor.Stop(); });
    });
    if (!st.ok()) throw std::runtime_error(st.ToString());

    mesh.Start();
    if (map->curve()) zap.Watch(mesh.router_socket(), "mesh");
    service->Start();
    std::unique_ptr<MetricsServer> metrics;
    if (!self->metrics.empty()) {
      std::string host;
      uint16_t port = 0;
      router::SplitHostPort(self->metrics, host, port);
      metrics = std::make_unique<MetricsServer>(host, port);
      auto render = [&] {
        MetricsText m;
        const std::string role_label = std::string("role=\"") + router::RoleName(role) + "\"";
        m.Gauge("meshchat_up", "1 while the node runs", 1, role_label);
        m.Gauge("meshchat_uptime_seconds", "seconds since start",
                static_cast<double>(clock.MonoMs() - started) / 1000);
        m.Gauge("meshchat_map_epoch", "cluster map epoch", static_cast<double>(mesh.epoch()));
        m.Gauge("meshchat_peers_up", "mesh peers heard from recently",
                static_cast<double>(mesh.PeersUp()));
        m.Gauge("meshchat_peers", "mesh peers in the map", static_cast<double>(mesh.PeersTotal()));
        const auto& ms = mesh.stats();
        m.Counter("meshchat_mesh_envelopes_sent_total", "envelopes sent to peers", ms.sent);
        m.Counter("meshchat_mesh_envelopes_received_total", "envelopes received", ms.received);
        m.Counter("meshchat_mesh_send_failures_total",
                  "envelopes dropped because a peer was unreachable or its queue full",
                  ms.send_failed);
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
                  "mesh connections refused by the ZAP handler (unknown CURVE key)", zap.denied());
        m.Counter("meshchat_mesh_failed_handshakes_total",
                  "mesh connections that failed their handshake (e.g. plaintext peers)",
                  zap.handshake_failures());
        m.Gauge("meshchat_connections", "client connections (gateway) or registered devices",
                static_cast<double>(service->Connections()));
        m.Gauge("meshchat_queue_depth",
                "work waiting: unacked channel entries and unsynced effects (workers), bytes for "
                "clients (gateway)",
                static_cast<double>(service->QueueDepth()));
        m.Gauge("meshchat_load_level",
                "load level: 0 normal, 1 shed hints, 2 delay read receipts, 3 refuse heaviest "
                "senders",
                static_cast<double>(load.state().level));
        m.Gauge("meshchat_load_full", "1 while the queue is over its hard cap (sends refused)",
                load.state().full ? 1 : 0);
        m.Counter("meshchat_load_changes_total", "load level changes", load.changes());
        m.Gauge("meshchat_loop_lag_seconds", "how late the loop ran a timer (worst, last sample)",
                load.last().lag_ms / 1000);
        m.Gauge("meshchat_loop_busy_ratio", "share of the last sample the loop was busy",
                load.last().busy_pct / 100);
        m.Gauge("meshchat_inbound_delay_seconds",
                "worst wait of inbound mesh envelopes (heartbeats), last sample",
                load.last().delay_ms / 1000);
        m.Gauge("meshchat_commit_age_seconds", "age of the oldest commit waiting for its fsync",
                load.last().commit_ms / 1000);
        service->WriteMetrics(m);
        metrics->Publish(m.str());
      };
      render();  // never serve an empty page, even in the first second
      reactor.Every(1000, render);
    }
    spdlog::info("{} node started (pid {}, epoch {}, mesh {})", router::RoleName(role), getpid(),
                 map->epoch, self->mesh);
    reactor.Run();
    spdlog::info("stopped");
    return 0;
  } catch (const std::exception& e) {
    spdlog::error("fatal: {}", e.what());
    return 1;
  }
}

}  // namespace meshchat::nodes
