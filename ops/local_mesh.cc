#include "ops/local_mesh.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <zmq.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "base/cluster_secret.h"
#include "base/free_ports.h"
#include "codec/client_messages.h"
#include "codec/msgpack_view.h"
#include "ops/dev_certs.h"
#include "ops/local_mesh_util.h"
#include "router/hash_ring.h"

namespace fs = std::filesystem;

namespace meshchat::nodes {
namespace detail {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool ProcessAlive(long pid) {
  if (pid <= 0 || kill(static_cast<pid_t>(pid), 0) != 0) return false;
  // A zombie child of ours is not alive; reap it if it is one.
  int st = 0;
  if (waitpid(static_cast<pid_t>(pid), &st, WNOHANG) == pid) return false;
  // Only count processes that are really our nodes (pids get reused).
  std::string cmd = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  return cmd.find("meshchat-") != std::string::npos;
}

// For processes we forked: true once the child has exited (it is reaped here). The cmdline
// check of ProcessAlive would misfire between fork and exec.
bool ChildExited(pid_t pid) {
  int st = 0;
  return waitpid(pid, &st, WNOHANG) == pid;
}

long ReadPid(const std::string& path) {
  std::ifstream in(path);
  long pid = 0;
  in >> pid;
  return pid;
}

// Free TCP ports, all distinct, outside the range outgoing connections take (base/free_ports.h).
std::vector<uint16_t> FreePorts(size_t n) {
  return FreeListenPorts(n);
}

std::string Tail(const std::string& path, size_t lines) {
  std::string s = ReadFile(path);
  size_t pos = s.size();
  for (size_t i = 0; i <= lines && pos > 0 && pos != std::string::npos; ++i)
    pos = s.rfind('\n', pos - 1);  // a shorter file: npos, the whole of it
  return pos == std::string::npos ? s : s.substr(pos + 1);
}

// Waits until `deadline` for the process to exit; true if it did.
bool WaitExit(long pid, std::chrono::steady_clock::time_point deadline) {
  while (ProcessAlive(pid) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return !ProcessAlive(pid);
}

// One request to one node's mesh endpoint and its answer, on a throwaway DEALER.
Result<codec::Envelope> AskNode(const router::NodeInfo& n, const std::string& tag,
                                const codec::Envelope& req, codec::MeshType want, int timeout_ms) {
  zmq::context_t ctx(1);
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::routing_id, "meshctl-" + tag + "-" + std::to_string(getpid()));
  SecureAsOperator(s, n);
  s.connect(n.mesh);
  (void)s.send(zmq::buffer(codec::Encode(req)), zmq::send_flags::dontwait);
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) <= 0)
    return Status(Code::kUnavailable,
                  std::string(router::RoleName(n.role)) + " node " + n.id + " did not answer" +
                      (n.curve.empty() ? "" : " (or refused this operator's CURVE key)"));
  zmq::message_t m;
  codec::Envelope resp;
  if (!s.recv(m, zmq::recv_flags::dontwait) ||
      codec::Decode(m.to_string_view(), resp) != codec::DecodeStatus::kOk || resp.type != want)
    return Status(Code::kInvalid, "bad answer from " + n.id);
  return resp;
}

}  // namespace detail
using namespace detail;

std::string SelfDir() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "." : p.parent_path().string();
}

LocalMesh::LocalMesh(std::string var_dir) : var_(std::move(var_dir)) {
  if (auto keys = router::LoadCurveKeys(key_path("operator")); keys.ok()) SetOperatorKeys(*keys);
}

std::string LocalMesh::DefaultVarDir() {
  const char* home = getenv("MESHCHAT_HOME");
  return (home && *home ? std::string(home) : std::string(".")) + "/var";
}

std::vector<std::pair<std::string, long>> LocalMesh::RunningNodes() const {
  std::vector<std::pair<std::string, long>> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(var_ + "/run", ec)) {
    if (e.path().extension() != ".pid") continue;
    long pid = ReadPid(e.path());
    if (ProcessAlive(pid)) out.emplace_back(e.path().stem().string(), pid);
  }
  return out;
}

Status LocalMesh::Up(const UpOptions& o, std::string& log) {
  if (o.gateways < 1 || o.sessions < 1 || o.gateways > 64 || o.sessions > 64 || o.groups < 0 ||
      o.groups > 64 || o.presence < 0 || o.presence > 64 || o.media < 0 || o.media > 64)
    return {Code::kInvalid,
            "need 1..64 gateways, 1..64 session nodes and 0..64 group, presence and media nodes"};
  if (o.replicas < 1 || o.replicas > 5) return {Code::kInvalid, "--replicas must be 1..5"};
  if (o.media_store != "localdir" && o.media_store != "rados")
    return {Code::kInvalid, "--media must be localdir or rados"};
  if (o.media_store == "rados" && (o.ceph_conf.empty() || !fs::exists(o.ceph_conf)))
    return {Code::kInvalid,
            "--media rados needs --ceph-conf FILE (an existing ceph.conf; "
            "scripts/ceph-dev up makes one)"};
  if (auto running = RunningNodes(); !running.empty())
    return {Code::kExists, "a mesh is already running under " + var_ + " (" +
                               std::to_string(running.size()) +
                               " nodes); run 'meshctl down' first"};
  for (const char* d : {"run", "log", "data"}) fs::create_directories(var_ + "/" + d);
  auto secret = Secret(true);
  if (!secret.ok()) return secret.status();

  router::ClusterMap map;
  map.epoch = 1;
  // Every port in one call: ports are held until all are chosen, so none repeats (a second
  // call could be handed a port the first one just released).
  // Media blobs in a local directory are on one machine only: media shards get replicas on
  // rados, where the blobs are shared.
  const int media_copies = o.media_store == "rados" ? o.replicas : 1;
  const size_t nodes = static_cast<size_t>(
      o.gateways + (o.sessions + o.groups + o.presence) * o.replicas + o.media * media_copies);
  auto ports = FreePorts(static_cast<size_t>(o.gateways * 2 + o.sessions * o.replicas +
                                             o.groups * o.replicas + o.presence * 2 * o.replicas +
                                             o.media * 2 * media_copies) +
                         nodes);
  size_t p = 0;
  std::string endpoints;
  for (int i = 1; i <= o.gateways; ++i) {
    auto n = MakeNode("gw" + std::to_string(i), router::Role::kGateway,
                      "tcp://" + o.host + ":" + std::to_string(ports[p]),
                      o.host + ":" + std::to_string(ports[p + 1]));
    p += 2;
    endpoints += (o.tls ? "tls://" : "tcp://") + n.client + "\n";
    map.nodes.push_back(n);
  }
  // Shard heads are s1, s2, ...; their replicas s1-r1, s1-r2, ... (replica-of=s1).
  auto copies = [&](const std::string& head, int n) {
    std::vector<std::pair<std::string, std::string>> ids{{head, ""}};
    for (int r = 1; r < n; ++r) ids.emplace_back(head + "-r" + std::to_string(r), head);
    return ids;
  };
  auto port = [&] { return "tcp://" + o.host + ":" + std::to_string(ports[p++]); };
  for (int i = 1; i <= o.sessions; ++i)
    for (const auto& [id, head] : copies("s" + std::to_string(i), o.replicas)) {
      map.nodes.push_back(MakeNode(id, router::Role::kSession, port()));
      map.nodes.back().replica_of = head;
    }
  for (int i = 1; i <= o.presence; ++i)
    for (const auto& [id, head] : copies("p" + std::to_string(i), o.replicas)) {
      auto n = MakeNode(id, router::Role::kPresence, port());
      n.pub = port();
      n.replica_of = head;
      map.nodes.push_back(n);
    }
  for (int i = 1; i <= o.groups; ++i)
    for (const auto& [id, head] : copies("g" + std::to_string(i), o.replicas)) {
      map.nodes.push_back(MakeNode(id, router::Role::kGroup, port()));
      map.nodes.back().replica_of = head;
    }
  fs::create_directories(var_ + "/opts");
  std::vector<std::pair<std::string, std::string>> media_ids;
  for (int i = 1; i <= o.media; ++i)
    for (const auto& c : copies("m" + std::to_string(i), media_copies)) media_ids.push_back(c);
  for (const auto& [id, head] : media_ids) {
    map.nodes.push_back(MakeNode(id, router::Role::kMedia, port()));
    map.nodes.back().replica_of = head;
    // Settings of this node only: its HTTP endpoint for signed links, and its blob store.
    const std::string http = o.host + ":" + std::to_string(ports[p++]);
    std::ofstream f(var_ + "/opts/" + id + ".opts");
    f << "http_listen=" << http << "\nhttp_base=http://" << http << "\nmedia=" << o.media_store
      << "\n";
    if (o.media_store == "rados")
      f << "ceph_conf=" << fs::absolute(o.ceph_conf).string() << "\nceph_pool=" << o.ceph_pool
        << "\nceph_user=" << o.ceph_user << "\n";
  }
  for (auto& n : map.nodes) n.metrics = o.host + ":" + std::to_string(ports[p++]);
  if (o.curve)
    if (Status s = GiveKeys(map); !s.ok()) return s;
  std::ofstream(map_path()) << map.Serialize();
  std::ofstream(var_ + "/client-endpoints") << endpoints;

  {
    std::ofstream opts(var_ + "/node.opts");
    if (o.tls) {
      DevCertOptions certs;
      if (o.host != "127.0.0.1") certs.names.push_back(o.host);
      if (Status s = MakeDevCertificates(tls_dir(), certs); !s.ok()) return s;
      const std::string dir = fs::absolute(tls_dir()).lexically_normal().string();
      opts << "tls_cert=" << dir << "/gateway.pem\ntls_key=" << dir << "/gateway.key\n";
    } else {
      opts << "client_tls=off\n";
    }
    for (const auto& kv : o.node_opts) opts << kv << "\n";
  }
  // One process for every node unless --split: co-hosted nodes reach each other in memory.
  fs::remove(var_ + "/processes");
  if (!o.split) {
    std::ofstream procs(var_ + "/processes");
    for (const auto& n : map.nodes) procs << n.id << (&n == &map.nodes.back() ? "\n" : " ");
  }
  std::vector<std::pair<std::string, pid_t>> started;
  std::set<std::string> spawned;
  for (const auto& n : map.nodes) {
    if (spawned.count(n.id)) continue;
    for (const auto& id : ProcessOf(n.id)) spawned.insert(id);
    auto pid = Spawn(n, map);
    if (!pid.ok()) return pid.status();
    started.emplace_back(n.id, *pid);
  }

  // Ready = every node answers status and sees all its peers.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(o.ready_timeout_ms);
  while (true) {
    for (const auto& [id, pid] : started) {
      if (ChildExited(pid)) {
        std::string dummy;
        (void)Down(dummy);
        return {Code::kUnavailable, "node " + id + " exited during start-up; its log (" + var_ +
                                        "/log/" + id + ".log) ends with:\n" +
                                        Tail(var_ + "/log/" + id + ".log", 8)};
      }
    }
    auto st = QueryStatus(map.nodes, 500);
    size_t ready = 0;
    for (const auto& s : st) ready += s && s->peers_up == s->peers_total ? 1 : 0;
    if (ready == map.nodes.size()) break;
    if (std::chrono::steady_clock::now() > deadline) {
      // Say which node lacks what, with its log's end: a test's var dir is gone after it fails.
      std::string why;
      for (size_t i = 0; i < st.size(); ++i) {
        if (st[i] && st[i]->peers_up == st[i]->peers_total) continue;
        why += "\n" + map.nodes[i].id + ": " +
               (st[i] ? "sees " + std::to_string(st[i]->peers_up) + " of " +
                            std::to_string(st[i]->peers_total) + " peers"
                      : std::string("no status answer")) +
               "; its log ends with:\n" + Tail(var_ + "/log/" + map.nodes[i].id + ".log", 4);
      }
      std::string dummy;
      (void)Down(dummy);
      return {Code::kTimeout, "only " + std::to_string(ready) + " of " +
                                  std::to_string(map.nodes.size()) + " nodes became ready; see " +
                                  var_ + "/log/" + why};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  log += "started " + std::to_string(map.nodes.size()) + " nodes (" + std::to_string(o.gateways) +
         " gateways, " + std::to_string(o.sessions) + " session nodes, " +
         std::to_string(o.groups) + " group nodes, " + std::to_string(o.presence) +
         " presence nodes, " + std::to_string(o.media) + " media nodes on " + o.media_store +
         ") under " + var_ + "\n";
  return Status::Ok();
}

Status LocalMesh::AdoptMap(const std::string& map_file, const std::string& secret_file,
                           const std::string& node, const std::vector<std::string>& opts) {
  auto map = router::ClusterMap::Load(map_file);
  if (!map.ok()) return map.status();  // the error names the file and line
  if (!map->Find(node)) return {Code::kNotFound, "no node '" + node + "' in " + map_file};
  for (const auto& o : opts)
    if (o.find('=') == std::string::npos) return {Code::kInvalid, "--opt wants KEY=VALUE: " + o};
  const std::string text = ReadFile(map_file);
  if (fs::exists(map_path()) && ReadFile(map_path()) != text && !RunningNodes().empty())
    return {Code::kExists, "nodes of another map run under " + var_ + "; stop them first"};
  for (const char* d : {"run", "log", "data", "opts"}) fs::create_directories(var_ + "/" + d);
  std::ofstream(map_path()) << text;
  if (!secret_file.empty()) {
    auto s = ReadSecret(secret_file);
    if (!s.ok()) return s.status();
    if (Status st = WriteSecret(secret_path(), *s); !st.ok()) return st;
  } else if (auto have = Secret(false); !have.ok()) {
    return {Code::kNotFound, "no cluster secret: pass --secret-file (the same on every host)"};
  }
  std::ofstream f(var_ + "/opts/" + node + ".opts");
  for (const auto& o : opts) f << o << "\n";
  return Status::Ok();
}

Status LocalMesh::StartNode(const std::string& id, std::string& log, bool wait_peers) {
  auto map = router::ClusterMap::Load(map_path());
  if (!map.ok()) return map.status();
  const router::NodeInfo* n = map->Find(id);
  if (!n) return {Code::kNotFound, "no node '" + id + "' in " + map_path()};
  if (ProcessAlive(ReadPid(var_ + "/run/" + id + ".pid")))
    return {Code::kExists, "node " + id + " is already running"};
  auto pid = Spawn(*n, *map);
  if (!pid.ok()) return pid.status();
  // Ready = it answers and sees its peers; a peer that is down is reported, not waited for.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::optional<codec::NodeStatus> last;
  while (std::chrono::steady_clock::now() < deadline) {
    // Once it answers, its links get 3 s to come up (they take a heartbeat or two).
    if (last)
      deadline = std::min(deadline, std::chrono::steady_clock::now() + std::chrono::seconds(3));
    if (ChildExited(*pid))
      return {Code::kUnavailable, "node " + id + " exited during start-up; its log ends with:\n" +
                                      Tail(var_ + "/log/" + id + ".log", 8)};
    auto st = QueryStatus({*n}, 300);
    if (st[0]) last = st[0];
    if (last && (!wait_peers || last->peers_up == last->peers_total)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!last) return {Code::kTimeout, "node " + id + " did not answer within 10 s"};
  log += "started " + id + " (pid " + std::to_string(*pid) + ")";
  if (wait_peers && last->peers_up != last->peers_total)
    log += "; it sees " + std::to_string(last->peers_up) + " of " +
           std::to_string(last->peers_total) + " peers (are the others running?)";
  log += "\n";
  return Status::Ok();
}

Status LocalMesh::Revoke(const std::string& user, const std::string& device, std::string& log) {
  if (!codec::IsValidId(user) || !codec::IsValidId(device))
    return {Code::kInvalid, "user and device ids are 1-64 characters of [A-Za-z0-9._@-]"};
  auto map = router::ClusterMap::Load(map_path());
  if (!map.ok()) return map.status();
  codec::Envelope req;
  req.type = codec::MeshType::kRevoke;
  req.req = 1;
  req.key = user;
  req.stamp.device = device;
  req.arg = static_cast<uint64_t>(std::time(nullptr));
  std::vector<std::string> failed;
  size_t done = 0;
  for (const auto& n : map->nodes) {
    if (n.role != router::Role::kGateway) continue;
    auto r = AskNode(n, "revoke", req, codec::MeshType::kStatusResp, 3000);
    if (!r.ok() || r->arg != 0)
      failed.push_back(n.id + (r.ok() ? " (could not store it: see its log)" : " (no answer)"));
    else
      ++done;
  }
  if (!failed.empty()) {
    std::string names;
    for (const auto& f : failed) names += (names.empty() ? "" : ", ") + f;
    return {Code::kUnavailable, "not revoked at " + names + "; revoked at " + std::to_string(done) +
                                    " gateways; run it again"};
  }
  log += "device " + device + " of " + user + " revoked at " + std::to_string(done) +
         " gateways: its tokens signed until now are refused, its connections closed\n";
  return Status::Ok();
}

Status LocalMesh::DrainGateway(const std::string& id, std::string& log, int timeout_ms) {
  auto map = router::ClusterMap::Load(map_path());
  if (!map.ok()) return map.status();
  const router::NodeInfo* n = map->Find(id);
  if (!n) return {Code::kNotFound, "no node '" + id + "' in " + map_path()};
  if (n->role != router::Role::kGateway) return {Code::kInvalid, id + " is not a gateway"};
  // Clients that look for the mesh must not be sent to it any more.
  std::ifstream in(var_ + "/client-endpoints");
  std::string kept, line;
  while (std::getline(in, line))
    if (line != ClientScheme() + n->client) kept += line + "\n";
  std::ofstream(var_ + "/client-endpoints") << kept;
  codec::Envelope req;
  req.type = codec::MeshType::kDrain;
  req.req = 1;
  if (auto r = AskNode(*n, "drain", req, codec::MeshType::kStatusResp, 3000); !r.ok())
    return r.status();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    auto st = QueryStatus({*n}, 500);
    if (st[0] && st[0]->connections == 0) {
      log += "gateway " + id +
             " drained: no connections left (it accepts none; restart it to "
             "take clients again)\n";
      return Status::Ok();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return {Code::kTimeout, "gateway " + id + " still has connections"};
}

Status LocalMesh::RestartNode(const std::string& id, std::string& log) {
  auto map = router::ClusterMap::Load(map_path());
  if (!map.ok()) return map.status();
  if (!map->Find(id)) return {Code::kNotFound, "no node '" + id + "' in " + map_path()};
  const long pid = ReadPid(var_ + "/run/" + id + ".pid");
  if (ProcessAlive(pid)) {
    kill(static_cast<pid_t>(pid), SIGTERM);
    if (!WaitExit(pid, std::chrono::steady_clock::now() + std::chrono::seconds(5)))
      kill(static_cast<pid_t>(pid), SIGKILL);
    log += "stopped " + id + " (pid " + std::to_string(pid) + ")\n";
  }
  return StartNode(id, log);
}

Result<std::string> LocalMesh::DescribeUser(const std::string& user, int timeout_ms) const {
  auto map = router::ClusterMap::Load(map_path());
  if (!map.ok()) return map.status();
  const auto sessions = map->IdsWithRole(router::Role::kSession);
  if (sessions.empty()) return Status(Code::kNotFound, "no session nodes in the map");
  const router::NodeInfo* shard = map->Find(router::HashRing(sessions).Owner(user));
  codec::Envelope req;
  req.type = codec::MeshType::kDescribeReq;
  req.req = 1;
  req.key = user;
  auto resp = AskNode(*shard, "who", req, codec::MeshType::kDescribeResp, timeout_ms);
  if (!resp.ok()) return resp.status();
  return std::move(resp->body);
}

Result<long> LocalMesh::KillNode(const std::string& id, int sig) {
  const long pid = ReadPid(var_ + "/run/" + id + ".pid");
  if (!ProcessAlive(pid)) return Status(Code::kNotFound, "node " + id + " is not running");
  if (kill(static_cast<pid_t>(pid), sig) != 0)
    return Status(Code::kIo, "kill " + std::to_string(pid) + ": " + strerror(errno));
  if (sig == SIGKILL || sig == SIGTERM)
    WaitExit(pid, std::chrono::steady_clock::now() + std::chrono::seconds(5));
  return pid;
}

Result<int> LocalMesh::Down(std::string& log) {
  auto running = RunningNodes();
  // One signal per process: a second one tells a node process to stop at once.
  std::set<long> signalled;
  for (const auto& [id, pid] : running)
    if (signalled.insert(pid).second) kill(static_cast<pid_t>(pid), SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (const auto& [id, pid] : running) {
    if (!WaitExit(pid, deadline)) {
      kill(static_cast<pid_t>(pid), SIGKILL);
      log += "node " + id + " did not stop in 5 s: killed\n";
    }
  }
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(var_ + "/run", ec))
    if (e.path().extension() == ".pid") fs::remove(e.path(), ec);
  return static_cast<int>(running.size());
}

Result<std::vector<NodeState>> LocalMesh::Query(int timeout_ms) const {
  auto map = router::ClusterMap::Load(map_path());
  if (!map.ok()) return map.status();
  auto answers = QueryStatus(map->nodes, timeout_ms);
  std::vector<NodeState> out;
  for (size_t i = 0; i < map->nodes.size(); ++i) {
    NodeState s;
    s.info = map->nodes[i];
    s.pid = ReadPid(var_ + "/run/" + s.info.id + ".pid");
    s.alive = ProcessAlive(s.pid);
    s.status = answers[i];
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<std::optional<codec::NodeStatus>> QueryStatus(
    const std::vector<router::NodeInfo>& nodes, int timeout_ms) {
  zmq::context_t ctx(1);
  std::vector<zmq::socket_t> socks;
  std::vector<std::optional<codec::NodeStatus>> out(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    socks.emplace_back(ctx, zmq::socket_type::dealer);
    socks.back().set(zmq::sockopt::linger, 0);
    socks.back().set(zmq::sockopt::routing_id,
                     "meshctl-" + std::to_string(getpid()) + "-" + std::to_string(i));
    SecureAsOperator(socks.back(), nodes[i]);
    socks.back().connect(nodes[i].mesh);
    codec::Envelope req;
    req.type = codec::MeshType::kStatusReq;
    req.req = i + 1;
    // Queued until connected; an unreachable node simply never answers.
    (void)socks.back().send(zmq::buffer(codec::Encode(req)), zmq::send_flags::dontwait);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  size_t pending = nodes.size();
  while (pending > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    std::vector<zmq::pollitem_t> items;
    for (auto& s : socks) items.push_back({s.handle(), 0, ZMQ_POLLIN, 0});
    zmq::poll(items, left);
    for (size_t i = 0; i < socks.size(); ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      zmq::message_t m;
      if (!socks[i].recv(m, zmq::recv_flags::dontwait)) continue;
      codec::Envelope env;
      codec::NodeStatus st;
      if (codec::Decode(m.to_string_view(), env) == codec::DecodeStatus::kOk &&
          env.type == codec::MeshType::kStatusResp &&
          codec::Decode(env.body, st) == codec::DecodeStatus::kOk && !out[i]) {
        out[i] = st;
        --pending;
      }
    }
  }
  return out;
}

}  // namespace meshchat::nodes
