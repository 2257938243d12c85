// meshctl: the operator's CLI for a local mesh (see docs/OPERATIONS.md).
// Exit codes: 0 ok, 1 error, 2 usage, 3 some nodes down (status).
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <thread>

#include "base/cluster_secret.h"
#include "codec/client_messages.h"
#include "codec/media_messages.h"
#include "codec/msgpack_view.h"
#include "codec/token.h"
#include "ops/dev_certs.h"
#include "ops/local_mesh.h"
#include "ops/local_mesh_util.h"
#include "router/curve.h"
#include "router/hash_ring.h"

using namespace meshchat;

namespace {

int CmdUp(nodes::LocalMesh& mesh, const nodes::UpOptions& o) {
  std::string log;
  Status s = mesh.Up(o, log);
  if (!s.ok()) {
    std::cerr << "meshctl up: " << s.message() << "\n";
    return 1;
  }
  std::cout << log;
  auto nodes = mesh.Query();
  if (nodes.ok())
    for (const auto& n : *nodes)
      if (n.info.role == router::Role::kGateway)
        std::cout << "gateway " << n.info.id << " listening for clients on " << n.info.client
                  << "\n";
  std::cout << "connect: chat --token \"$(meshctl token alice)\"   (another terminal: bob)\n";
  return 0;
}

int CmdDown(nodes::LocalMesh& mesh) {
  std::string log;
  auto n = mesh.Down(log);
  std::cout << log;
  if (*n == 0) {
    std::cout << "no mesh is running under " << mesh.var_dir() << "; nothing to stop\n";
    return 0;
  }
  std::cout << "stopped " << *n << " nodes\n";
  return 0;
}

std::string JsonEscape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o.push_back('\\');
    o.push_back(c);
  }
  return o;
}

// 1536 -> "1.5K": a column wide enough for a glance, not for accounting (JSON has bytes).
std::string HumanBytes(uint64_t n) {
  const char* units[] = {"B", "K", "M", "G", "T"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f%s" : "%.1f%s", v, units[u]);
  return buf;
}

// The table keeps one row per node: control characters become spaces, long text is cut.
std::string OneLine(const std::string& s, size_t max) {
  if (s.empty()) return "-";
  std::string out = s.substr(0, max);
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  return s.size() > max ? out + "..." : out;
}

// Replicated shards, from their primaries' answers: who is primary, its term and last batch,
// each replica's standing and lag. Nothing when no shard has replicas.
void PrintShards(const std::vector<nodes::NodeState>& nodes) {
  bool first = true;
  for (const auto& n : nodes) {
    const bool replicated =
        !n.info.replica_of.empty() || std::any_of(nodes.begin(), nodes.end(), [&](const auto& o) {
          return o.info.replica_of == n.info.id;
        });
    if (!replicated || !n.info.replica_of.empty()) continue;  // one line per shard, by head
    if (first) {
      std::printf("\n%-8s %-9s %-10s %6s %9s  %s\n", "SHARD", "ROLE", "PRIMARY", "TERM", "BATCH",
                  "REPLICAS (state, batches behind)");
      first = false;
    }
    std::string primary = "-", replicas;
    uint64_t term = 0, seq = 0;
    for (const auto& m : nodes) {
      if (!m.status || m.status->repl_role != "primary" || m.status->shard != n.info.id) continue;
      primary = m.info.id;
      term = m.status->repl_term;
      seq = m.status->repl_seq;
      for (const auto& r : m.status->replicas)
        replicas +=
            (replicas.empty() ? "" : ", ") + r.node + " " + r.state + " " + std::to_string(r.lag);
    }
    if (primary == "-") replicas = "(no primary answers)";
    std::printf("%-8s %-9s %-10s %6llu %9llu  %s\n", n.info.id.c_str(),
                router::RoleName(n.info.role), primary.c_str(),
                static_cast<unsigned long long>(term), static_cast<unsigned long long>(seq),
                replicas.c_str());
  }
}

int CmdStatus(nodes::LocalMesh& mesh, bool json) {
  auto nodes = mesh.Query();
  if (!nodes.ok()) {
    std::cerr << "meshctl status: " << nodes.status().message() << "\n";
    return 1;
  }
  int down = 0;
  if (json) std::cout << "[";
  bool first = true;
  for (const auto& n : *nodes) {
    const bool up = n.status.has_value();
    down += up ? 0 : 1;
    // "moving": up, with keys still being handed over after a map change.
    const std::string state =
        up ? (n.status->handover ? "moving" : "up") : (n.alive ? "unresponsive" : "down");
    // Load level by name; "+full" when its queue is over the hard cap (sends refused).
    std::string load = "-";
    if (up) {
      load = codec::LoadLevelName(
          static_cast<codec::LoadLevel>(std::min<uint64_t>(n.status->load, 3)));
      if (n.status->full) load += "+full";
    }
    if (json) {
      std::cout << (first ? "" : ",") << "\n  {\"id\":\"" << JsonEscape(n.info.id)
                << "\",\"role\":\"" << router::RoleName(n.info.role) << "\",\"state\":\"" << state
                << "\",\"pid\":" << (n.alive ? n.pid : 0) << ",\"mesh\":\""
                << JsonEscape(n.info.mesh) << "\",\"client\":\"" << JsonEscape(n.info.client)
                << "\",\"connections\":" << (up ? n.status->connections : 0)
                << ",\"peers_up\":" << (up ? n.status->peers_up : 0)
                << ",\"peers_total\":" << (up ? n.status->peers_total : 0)
                << ",\"uptime_ms\":" << (up ? n.status->uptime_ms : 0)
                << ",\"epoch\":" << (up ? n.status->epoch : 0)
                << ",\"msgs_per_s\":" << (up ? n.status->msgs_per_s : 0)
                << ",\"store_bytes\":" << (up ? n.status->store_bytes : 0)
                << ",\"queue\":" << (up ? n.status->queue : 0)
                << ",\"handover\":" << (up ? n.status->handover : 0)
                << ",\"load\":" << (up ? n.status->load : 0) << ",\"load_name\":\"" << load
                << "\",\"full\":" << (up && n.status->full ? "true" : "false")
                << ",\"last_error\":\"" << JsonEscape(up ? n.status->last_error : "") << "\""
                << ",\"repl_role\":\"" << (up ? n.status->repl_role : "") << "\",\"shard\":\""
                << JsonEscape(up ? n.status->shard : "")
                << "\",\"repl_term\":" << (up ? n.status->repl_term : 0)
                << ",\"repl_seq\":" << (up ? n.status->repl_seq : 0) << ",\"replicas\":[";
      for (size_t i = 0; up && i < n.status->replicas.size(); ++i) {
        const auto& r = n.status->replicas[i];
        std::cout << (i ? "," : "") << "{\"node\":\"" << JsonEscape(r.node) << "\",\"state\":\""
                  << r.state << "\",\"lag\":" << r.lag << "}";
      }
      std::cout << "]}";
      first = false;
      continue;
    }
    if (first) {
      std::printf("%-8s %-9s %-13s %-8s %-28s %-22s %6s %7s %8s %5s %7s %7s %6s %-14s  %s\n", "ID",
                  "ROLE", "STATE", "PID", "MESH", "CLIENT", "CONNS", "PEERS", "UPTIME", "EPOCH",
                  "MSG/S", "STORE", "QUEUE", "LOAD", "LAST ERROR");
      first = false;
    }
    std::printf(
        "%-8s %-9s %-13s %-8ld %-28s %-22s %6llu %7s %7llus %5llu %7llu %7s %6llu %-14s  %s\n",
        n.info.id.c_str(), router::RoleName(n.info.role), state.c_str(), n.alive ? n.pid : 0L,
        n.info.mesh.c_str(), n.info.client.empty() ? "-" : n.info.client.c_str(),
        static_cast<unsigned long long>(up ? n.status->connections : 0),
        up ? (std::to_string(n.status->peers_up) + "/" + std::to_string(n.status->peers_total))
                 .c_str()
           : "-",
        static_cast<unsigned long long>(up ? n.status->uptime_ms / 1000 : 0),
        static_cast<unsigned long long>(up ? n.status->epoch : 0),
        static_cast<unsigned long long>(up ? n.status->msgs_per_s : 0),
        up ? HumanBytes(n.status->store_bytes).c_str() : "-",
        static_cast<unsigned long long>(up ? n.status->queue : 0), load.c_str(),
        up ? OneLine(n.status->last_error, 48).c_str() : "-");
  }
  if (json) std::cout << "\n]\n";
  if (!json) PrintShards(*nodes);
  return down == 0 ? 0 : 3;
}

// status, refreshed: a terminal is cleared first; a pipe gets one table after another.
int CmdTop(nodes::LocalMesh& mesh, double interval_s, int count) {
  const bool tty = isatty(STDOUT_FILENO);
  int rc = 0;
  for (int i = 0; count == 0 || i < count; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::duration<double>(interval_s));
    std::cout << (tty ? "\033[H\033[2J" : (i > 0 ? "\n" : "")) << std::flush;
    rc = CmdStatus(mesh, false);
    std::cout << std::flush;
    if (rc == 1) return rc;  // no mesh here
  }
  return rc;
}

int CmdToken(nodes::LocalMesh& mesh, const std::string& user, const std::string& device,
             int64_t ttl, const std::string& secret_file) {
  std::string secret;
  if (!secret_file.empty()) {
    auto s = ReadSecret(secret_file);
    if (!s.ok()) {
      std::cerr << "meshctl token: " << s.status().message() << "\n";
      return 1;
    }
    secret = *s;
  } else {
    auto s = mesh.Secret(false);
    if (!s.ok()) {
      std::cerr << "meshctl token: " << s.status().message() << "\n";
      return 1;
    }
    secret = *s;
  }
  if (!codec::IsValidId(user) || !codec::IsValidId(device)) {
    std::cerr << "meshctl token: user and device ids are 1-64 characters of [A-Za-z0-9._@-]\n";
    return 2;
  }
  if (ttl <= 0) {
    std::cerr << "meshctl token: --ttl must be positive\n";
    return 2;
  }
  if (ttl > 86'400)
    std::cerr << "meshctl token: warning: gateways refuse tokens living over 86400 s unless "
                 "their max_token_ttl_s is raised\n";
  std::random_device rd;
  const auto now = static_cast<int64_t>(std::time(nullptr));
  codec::TokenClaims c{user, device, now + ttl, (uint64_t{rd()} << 32) | rd(), now};
  std::cout << codec::SignToken(c, secret) << "\n";
  return 0;
}

int CmdRing(nodes::LocalMesh& mesh, const std::string& role_name) {
  auto role = router::ParseRole(role_name);
  if (!role) {
    std::cerr << "meshctl ring: unknown role '" << role_name << "'\n";
    return 2;
  }
  auto map = router::ClusterMap::Load(mesh.map_path());
  if (!map.ok()) {
    std::cerr << "meshctl ring: " << map.status().message() << "\n";
    return 1;
  }
  const auto ids = map->IdsWithRole(*role);
  if (ids.empty()) {
    std::cerr << "meshctl ring: no " << role_name << " nodes in the map\n";
    return 1;
  }
  std::printf("%-8s %8s   (epoch %llu, %d virtual nodes each)\n", "NODE", "SHARE",
              static_cast<unsigned long long>(map->epoch), router::HashRing::kDefaultVnodes);
  for (const auto& [id, share] : router::HashRing(ids).Shares())
    std::printf("%-8s %7.2f%%\n", id.c_str(), share * 100);
  return 0;
}

// Runs a LocalMesh command that reports progress in `log`: the log to stdout, a failure to
// stderr as "meshctl NAME: why"; the exit code.
int Report(const char* name, const std::function<Status(std::string& log)>& run) {
  std::string log;
  const Status s = run(log);
  std::cout << log;
  if (!s.ok()) std::cerr << "meshctl " << name << ": " << s.message() << "\n";
  return s.ok() ? 0 : 1;
}

int CmdWho(nodes::LocalMesh& mesh, const std::string& user) {
  if (!codec::IsValidId(user)) {
    std::cerr << "meshctl who: invalid user id\n";
    return 2;
  }
  auto body = mesh.DescribeUser(user);
  if (!body.ok()) {
    std::cerr << "meshctl who: " << body.status().message() << "\n";
    return 1;
  }
  std::vector<std::array<std::string, 3>> conns;
  uint64_t devices = 0, waiting = 0;
  auto st = codec::DecodeMap(*body, [&](const codec::MapView& m) {
    const msgpack::object* c = m.Find("connected");
    if (!c || c->type != msgpack::type::ARRAY) return codec::DecodeStatus::kMalformed;
    for (uint32_t i = 0; i < c->via.array.size; ++i) {
      const msgpack::object& e = c->via.array.ptr[i];
      if (e.type != msgpack::type::ARRAY || e.via.array.size != 3)
        return codec::DecodeStatus::kMalformed;
      std::string dev, gw;
      uint64_t conn = 0;
      MC_DECODE_TRY(codec::ReadStr(&e.via.array.ptr[0], dev, codec::kMaxIdBytes));
      MC_DECODE_TRY(codec::ReadStr(&e.via.array.ptr[1], gw, codec::kMaxIdBytes));
      MC_DECODE_TRY(codec::ReadUint(&e.via.array.ptr[2], conn));
      conns.push_back({dev, gw, std::to_string(conn)});
    }
    MC_DECODE_TRY(codec::ReadUint(m.Find("devices"), devices));
    return codec::ReadUint(m.Find("waiting"), waiting);
  });
  if (st != codec::DecodeStatus::kOk) {
    std::cerr << "meshctl who: undecodable answer\n";
    return 1;
  }
  std::cout << user << ": " << conns.size() << " connected";
  for (const auto& c : conns)
    std::cout << " [" << c[0] << " via " << c[1] << " conn " << c[2] << "]";
  std::cout << "; " << devices << " known devices; " << waiting << " inbox entries waiting\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"meshctl: run and inspect a meshchat mesh"};
  app.require_subcommand(1);
  std::string var = nodes::LocalMesh::DefaultVarDir();
  app.add_option("--var", var, "state directory (default $MESHCHAT_HOME/var or ./var)");

  nodes::UpOptions up;
  auto* cup = app.add_subcommand("up", "start a local mesh on loopback");
  cup->add_option("--gateways", up.gateways, "number of gateways")->check(CLI::Range(1, 64));
  cup->add_option("--sessions", up.sessions, "number of session nodes")->check(CLI::Range(1, 64));
  cup->add_option("--groups", up.groups, "number of group nodes")->check(CLI::Range(0, 64));
  cup->add_option("--presence", up.presence, "number of presence nodes")->check(CLI::Range(0, 64));
  cup->add_option("--media-nodes", up.media, "number of media nodes")->check(CLI::Range(0, 64));
  cup->add_option("--replicas", up.replicas,
                  "copies of each session, group and presence shard (media too on rados); "
                  "1 = no replicas")
      ->check(CLI::Range(1, 5));
  cup->add_option("--media", up.media_store, "media blob store: localdir (default) or rados")
      ->check(CLI::IsMember({"localdir", "rados"}));
  cup->add_option("--ceph-conf", up.ceph_conf, "ceph.conf for --media rados");
  cup->add_option("--pool", up.ceph_pool, "RADOS pool for media (default meshchat)");
  cup->add_option("--ceph-user", up.ceph_user, "cephx user, without client. (default meshchat)");

  cup->add_option("--opt", up.node_opts, "KEY=VALUE setting passed to every node (repeatable)");
  bool no_curve = false;
  cup->add_flag("--no-curve", no_curve,
                "plaintext mesh links (no CURVE keys); for comparisons on a closed host");
  cup->add_flag("--split", up.split,
                "each node in a process of its own (as on one machine per node); default: all "
                "in one meshchat-node process, linked in memory");
  cup->add_flag("--tls", up.tls,
                "clients over TLS with a development CA (VAR/tls/ca.pem); default plain TCP");

  app.add_subcommand("down", "stop the nodes this mesh started");

  std::string node_id;
  auto* cstart = app.add_subcommand("start", "start one node of the map (e.g. after kill)");
  cstart->add_option("node", node_id, "node id")->required();
  std::string start_map, start_secret;
  std::vector<std::string> start_opts;
  cstart->add_option("--map", start_map,
                     "cluster file to run this node from (multi-host: the same file everywhere)");
  cstart->add_option("--secret-file", start_secret, "cluster secret (with --map)");
  cstart->add_option("--opt", start_opts, "KEY=VALUE setting for this node (with --map)");
  std::string start_key;
  cstart->add_option("--key-file", start_key,
                     "this node's CURVE secret key (`meshctl keygen`), when the map lists keys");
  auto* crestart = app.add_subcommand("restart", "stop (TERM) and start one node");
  crestart->add_option("node", node_id, "node id")->required();
  std::string restore_from;
  auto* crestore = app.add_subcommand(
      "restore", "a shard's primary lost its disk: give it its replica's store, start both");
  crestore->add_option("node", node_id, "the shard's head (its primary), stopped")->required();
  crestore->add_option("--from", restore_from, "a replica of it (replica-of=)")->required();
  std::string add_role = "gateway";
  auto* cadd = app.add_subcommand(
      "add",
      "add a gateway, session or group node to the running cluster (keys move to a new "
      "session or group node; waits until they are handed over)");
  cadd->add_option("node", node_id, "new node id")->required();
  cadd->add_option("--role", add_role, "its role")
      ->check(CLI::IsMember({"gateway", "session", "group", "presence", "media"}));
  auto* cremove =
      app.add_subcommand("remove",
                         "remove a gateway (drained first), session or group node (its keys handed "
                         "over first) from the running cluster");
  cremove->add_option("node", node_id, "node id")->required();
  std::string push_file;
  auto* cpush = app.add_subcommand(
      "push-map",
      "several hosts: push a newer cluster file to every node and wait for keys to move");
  cpush->add_option("file", push_file, "cluster file")->required();
  std::string revoke_user, revoke_device;
  auto* crevoke = app.add_subcommand(
      "revoke", "refuse a device's tokens signed until now and close its connections");
  crevoke->add_option("user", revoke_user, "user id")->required();
  crevoke->add_option("device", revoke_device, "device id")->required();
  auto* cdrain =
      app.add_subcommand("drain", "send a gateway's clients elsewhere, wait until empty");
  cdrain->add_option("gateway", node_id, "gateway id")->required();
  std::string role_name;
  auto* cring = app.add_subcommand("ring", "which node owns which share of a role's keys");
  cring->add_option("role", role_name, "session, group, presence or media")->required();
  std::string who_user;
  auto* cwho = app.add_subcommand("who", "where a user is connected, how much waits for it");
  cwho->add_option("user", who_user, "user id")->required();
  std::string signame = "KILL";
  auto* ckill = app.add_subcommand("kill", "send a signal to one node (chaos testing)");
  ckill->add_option("node", node_id, "node id")->required();
  ckill->add_option("--signal", signame, "KILL, TERM, STOP or CONT")
      ->check(CLI::IsMember({"KILL", "TERM", "STOP", "CONT"}));

  bool json = false;
  auto* cstatus = app.add_subcommand("status", "show every node of the mesh");
  cstatus->add_flag("--json", json, "machine-readable output");
  double top_interval = 1.0;
  int top_count = 0;
  auto* ctop = app.add_subcommand("top", "show status again every interval (Ctrl-C to stop)");
  ctop->add_option("--interval", top_interval, "seconds between refreshes")
      ->check(CLI::Range(0.1, 3600.0));
  ctop->add_option("--count", top_count, "stop after this many refreshes (0: never)")
      ->check(CLI::NonNegativeNumber);

  std::string user, device = "cli", secret_file;
  int64_t ttl = 86400;
  auto* ctoken = app.add_subcommand("token", "mint an access token (printed as the last line)");
  ctoken->add_option("user", user, "user id")->required();
  ctoken->add_option("--device", device, "device id")->capture_default_str();
  ctoken->add_option("--ttl", ttl, "lifetime in seconds (gateways refuse over 86400 by default)")
      ->capture_default_str();
  ctoken->add_option("--secret-file", secret_file, "cluster secret (default VAR/cluster.secret)");

  std::string keygen_file;
  auto* ckeygen = app.add_subcommand(
      "keygen", "make a CURVE keypair: the secret key into FILE (0600), the public key printed");
  ckeygen->add_option("file", keygen_file, "secret key file to write")->required();

  auto* crekey = app.add_subcommand(
      "rekey", "rotate a node's CURVE key (it restarts) or meshctl's own (NODE = operator)");
  crekey->add_option("node", node_id, "node id, or operator")->required();

  bool drop_old = false;
  auto* crotate = app.add_subcommand(
      "rotate-secret",
      "a new cluster secret; the current one stays accepted until --drop-old (nodes restart)");
  crotate->add_flag("--drop-old", drop_old, "forget the previous secret");

  std::string certs_dir;
  nodes::DevCertOptions certs;
  auto* ccerts = app.add_subcommand(
      "tls-certs", "make a development CA (kept) and a gateway certificate it signs");
  ccerts->add_option("--dir", certs_dir, "where (default VAR/tls)");
  ccerts->add_option("--name", certs.names,
                     "IP address or DNS name the certificate is for (repeatable; default "
                     "127.0.0.1 and localhost)");
  ccerts->add_option("--days", certs.gateway_days, "gateway certificate lifetime")
      ->check(CLI::Range(1, 825));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  nodes::LocalMesh mesh(var);
  up.curve = !no_curve;
  if (cup->parsed()) return CmdUp(mesh, up);
  if (app.got_subcommand("down")) return CmdDown(mesh);
  if (cstatus->parsed()) return CmdStatus(mesh, json);
  if (ctop->parsed()) return CmdTop(mesh, top_interval, top_count);
  if (crestart->parsed()) {
    return Report("restart", [&](std::string& log) { return mesh.RestartNode(node_id, log); });
  }
  if (crestore->parsed()) {
    return Report("restore",
                  [&](std::string& log) { return mesh.RestoreNode(node_id, restore_from, log); });
  }
  if (cring->parsed()) return CmdRing(mesh, role_name);
  if (crevoke->parsed()) {
    return Report("revoke",
                  [&](std::string& log) { return mesh.Revoke(revoke_user, revoke_device, log); });
  }
  if (cdrain->parsed()) {
    return Report("drain", [&](std::string& log) { return mesh.DrainGateway(node_id, log); });
  }
  if (cwho->parsed()) return CmdWho(mesh, who_user);
  if (cpush->parsed()) {
    return Report("push-map", [&](std::string& log) { return mesh.PushMapFile(push_file, log); });
  }
  if (cadd->parsed() || cremove->parsed()) {
    return Report(cadd->parsed() ? "add" : "remove", [&](std::string& log) {
      return cadd->parsed() ? mesh.AddNode(node_id, *router::ParseRole(add_role), log)
                            : mesh.RemoveNode(node_id, log);
    });
  }
  if (cstart->parsed()) {
    return Report("start", [&](std::string& log) {
      Status s = start_map.empty() ? Status::Ok()
                                   : mesh.AdoptMap(start_map, start_secret, node_id, start_opts);
      if (s.ok() && (!start_map.empty() || !start_key.empty()))
        s = mesh.AdoptKey(node_id, start_key);
      return s.ok() ? mesh.StartNode(node_id, log) : s;
    });
  }
  if (ckill->parsed()) {
    const int sig = signame == "KILL"   ? SIGKILL
                    : signame == "TERM" ? SIGTERM
                    : signame == "STOP" ? SIGSTOP
                                        : SIGCONT;
    auto pid = mesh.KillNode(node_id, sig);
    if (!pid.ok()) {
      std::cerr << "meshctl kill: " << pid.status().message() << "\n";
      return 1;
    }
    std::cout << "sent SIG" << signame << " to " << node_id << " (pid " << *pid << ")\n";
    return 0;
  }
  if (ctoken->parsed()) return CmdToken(mesh, user, device, ttl, secret_file);
  if (crotate->parsed()) {
    return Report("rotate-secret",
                  [&](std::string& log) { return mesh.RotateSecret(drop_old, log); });
  }
  if (crekey->parsed()) {
    return Report("rekey", [&](std::string& log) { return mesh.RekeyNode(node_id, log); });
  }
  if (ckeygen->parsed()) {
    const router::CurveKeys keys = router::GenerateCurveKeys();
    if (std::filesystem::exists(keygen_file)) {
      std::cerr << "meshctl keygen: " << keygen_file << " exists; not replacing a key\n";
      return 1;
    }
    if (Status s = router::SaveCurveKeys(keygen_file, keys); !s.ok()) {
      std::cerr << "meshctl keygen: " << s.message() << "\n";
      return 1;
    }
    // The last line: what goes after curve= in the cluster map.
    std::cout << "public key (for the cluster map, curve=...):\n"
              << codec::HexOf(keys.public_key) << "\n";
    return 0;
  }
  if (ccerts->parsed()) {
    if (certs_dir.empty()) certs_dir = mesh.tls_dir();
    if (Status s = nodes::MakeDevCertificates(certs_dir, certs); !s.ok()) {
      std::cerr << "meshctl tls-certs: " << s.message() << "\n";
      return 1;
    }
    std::cout << "CA " << certs_dir << "/ca.pem (clients: chat --ca, MESHCHAT_CA); gateway: --opt "
              << "tls_cert=" << certs_dir << "/gateway.pem --opt tls_key=" << certs_dir
              << "/gateway.key\n";
    return 0;
  }
  return 2;
}
