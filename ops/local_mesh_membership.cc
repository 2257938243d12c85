// LocalMesh: adding and removing nodes of a running cluster. Gateways own no keys: a new map
// that adds or drops one is pushed and that is all. Session and group nodes own keys: adding
// one, or removing one, moves keys, which the nodes hand over between them
// (nodes/shard/handover.h); meshctl pushes the map and waits until every node reports the hand-over
// finished. Presence and media nodes cannot be added or removed while running yet (TakeMap in
// node_runner.cc).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "codec/client_messages.h"
#include "ops/local_mesh.h"
#include "ops/local_mesh_util.h"

namespace fs = std::filesystem;

namespace meshchat::nodes {

using namespace detail;

Status detail::WriteMapFile(const std::string& path, const router::ClusterMap& m) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << m.Serialize();
    if (!out) return {Code::kIo, "cannot write " + tmp};
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);  // atomic: a node starting now reads the old or the new map
  return ec ? Status(Code::kIo, "cannot replace " + path + ": " + ec.message()) : Status::Ok();
}

std::string LocalMesh::ClientScheme() const {
  std::ifstream in(var_ + "/node.opts");
  for (std::string line; std::getline(in, line);)
    if (line == "client_tls=off") return "tcp://";
  return "tls://";
}

Status LocalMesh::PushMap(const router::ClusterMap& next, std::string& log,
                          const std::string& skip) {
  // Workers first: a gateway that takes the new map stamps the new epoch, which a worker
  // still on the old one would refuse.
  std::vector<const router::NodeInfo*> order;
  for (const auto& n : next.nodes)
    if (n.role != router::Role::kGateway) order.push_back(&n);
  for (const auto& n : next.nodes)
    if (n.role == router::Role::kGateway) order.push_back(&n);
  const std::string text = next.Serialize();
  for (const auto* n : order) {
    if (n->id == skip) continue;
    codec::Envelope req;
    req.type = codec::MeshType::kMapUpdate;
    req.body = text;
    auto resp = AskNode(*n, "map", req, codec::MeshType::kStatusResp, 2000);
    if (!resp.ok()) {  // down: it reads the new map from the file when it starts
      log += "  " + n->id + ": not running (it takes the new map when started)\n";
      continue;
    }
    codec::NodeStatus st;
    if (codec::Decode(resp->body, st) != codec::DecodeStatus::kOk)
      return {Code::kInvalid, "bad status from " + n->id};
    if (st.epoch != next.epoch)
      return {Code::kInvalid, "node " + n->id + " refused the new map: " + st.last_error};
    log += "  " + n->id + ": epoch " + std::to_string(st.epoch) + "\n";
  }
  return Status::Ok();
}

namespace {
bool OwnsKeys(router::Role r) {  // and hands them over when the ring changes
  return r != router::Role::kGateway;
}
}  // namespace

// A new media node stores blobs like the others (same store settings) and serves its own
// HTTP links on `http`.
Status LocalMesh::WriteMediaOpts(const router::ClusterMap& map, const std::string& id,
                                 const std::string& http) const {
  std::string settings = "media=localdir\n";
  for (const auto& n : map.nodes) {
    if (n.role != router::Role::kMedia) continue;
    std::ifstream in(var_ + "/opts/" + n.id + ".opts");
    settings.clear();
    for (std::string line; std::getline(in, line);)
      if (line.rfind("http_", 0) != 0) settings += line + "\n";
    break;
  }
  fs::create_directories(var_ + "/opts");
  std::ofstream f(var_ + "/opts/" + id + ".opts");
  f << "http_listen=" << http << "\nhttp_base=http://" << http << "\n" << settings;
  return f ? Status::Ok() : Status(Code::kIo, "cannot write the options of " + id);
}

Status LocalMesh::CheckSettled(const router::ClusterMap& map) const {
  auto st = QueryStatus(map.nodes, 1500);
  for (size_t i = 0; i < map.nodes.size(); ++i) {
    const auto& n = map.nodes[i];
    if (!st[i])
      return {Code::kUnavailable, "node " + n.id +
                                      " does not answer: keys can only move while every node "
                                      "runs (start it, or remove it first)"};
    if (st[i]->epoch != map.epoch)
      return {Code::kInvalid, "node " + n.id + " runs map epoch " + std::to_string(st[i]->epoch) +
                                  ", not " + std::to_string(map.epoch)};
    if (st[i]->handover != 0)
      return {Code::kInvalid, "node " + n.id + " is still handing keys over; retry shortly"};
  }
  return Status::Ok();
}

Status LocalMesh::WaitHandover(const router::ClusterMap& map, const std::string& leaving,
                               std::string& log, int timeout_ms) const {
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::milliseconds(timeout_ms);
  std::string waiting;
  while (std::chrono::steady_clock::now() < deadline) {
    auto st = QueryStatus(map.nodes, 1000);
    waiting.clear();
    for (size_t i = 0; i < map.nodes.size(); ++i) {
      const auto& n = map.nodes[i];
      // A leaving node is done once the new owners confirmed every row it sent (queue 0).
      // Every node must hear all its peers too: with CURVE, links a new node made before the
      // others admitted its key are made again only then (router/mesh.h).
      const bool done = st[i] && st[i]->epoch >= map.epoch && st[i]->handover == 0 &&
                        st[i]->peers_up == st[i]->peers_total &&
                        (n.id != leaving || st[i]->queue == 0);
      if (!done) waiting += (waiting.empty() ? "" : ", ") + n.id;
    }
    if (waiting.empty()) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count();
      log += "keys handed over in " + std::to_string(ms) + " ms\n";
      return Status::Ok();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return {Code::kTimeout, "hand-over not finished after " + std::to_string(timeout_ms / 1000) +
                              " s; still moving: " + waiting +
                              " (meshctl status shows it; the nodes go on by themselves)"};
}

Status LocalMesh::AddNode(const std::string& id, router::Role role, std::string& log) {
  if (!codec::IsValidId(id)) return {Code::kInvalid, "invalid node id '" + id + "'"};
  auto map = router::ClusterMap::Load(map_path());
  if (!map.ok()) return map.status();
  if (map->Find(id)) return {Code::kExists, "node " + id + " is already in the map"};
  if (OwnsKeys(role))
    if (Status s = CheckSettled(*map); !s.ok()) return s;
  router::ClusterMap next = *map;
  ++next.epoch;
  auto ports = FreePorts(3);
  router::NodeInfo n = detail::MakeNode(
      id, role, "tcp://127.0.0.1:" + std::to_string(ports[0]),
      role == router::Role::kGateway ? "127.0.0.1:" + std::to_string(ports[1]) : "");
  if (role == router::Role::kPresence) n.pub = "tcp://127.0.0.1:" + std::to_string(ports[1]);
  n.metrics = "127.0.0.1:" + std::to_string(ports[2]);
  if (OwnsKeys(role)) n.joined = next.epoch;  // on first start it takes its keys over
  if (role == router::Role::kMedia)
    if (Status s = WriteMediaOpts(*map, id, "127.0.0.1:" + std::to_string(ports[1])); !s.ok())
      return s;
  next.nodes.push_back(n);
  if (next.curve())  // its keypair, and its public key in the map the others get
    if (Status s = GiveKeys(next); !s.ok()) return s;
  if (auto ok = router::ClusterMap::Parse(next.Serialize()); !ok.ok()) return ok.status();
  if (Status s = WriteMapFile(map_path(), next); !s.ok()) return s;
  log += "map epoch " + std::to_string(next.epoch) + ": added " + id + "\n";
  if (!OwnsKeys(role)) {
    if (Status s = PushMap(next, log, id); !s.ok()) return s;  // it starts with the new map
    if (Status s = StartNode(id, log); !s.ok()) return s;
    std::ofstream(var_ + "/client-endpoints", std::ios::app) << ClientScheme() << n.client << "\n";
    log += "gateway " + id + " takes clients on " + n.client + "\n";
    return Status::Ok();
  }
  // The new node first (it waits for its keys), then the others switch and hand over.
  if (Status s = StartNode(id, log, /*wait_peers=*/false); !s.ok()) return s;
  if (Status s = PushMap(next, log, id); !s.ok()) return s;
  return WaitHandover(next, "", log, 120000);
}

Status LocalMesh::RemoveNode(const std::string& id, std::string& log) {
  auto map = router::ClusterMap::Load(map_path());
  if (!map.ok()) return map.status();
  const router::NodeInfo* n = map->Find(id);
  if (!n) return {Code::kNotFound, "no node '" + id + "' in " + map_path()};
  if (map->IdsWithRole(n->role).size() == 1 && !n->leaving)
    return {Code::kInvalid,
            std::string("cannot remove the last ") + router::RoleName(n->role) + " node"};
  if (const auto together = ProcessOf(id); together.size() > 1) {
    std::string others;
    for (const auto& x : together)
      if (x != id) others += (others.empty() ? "" : ", ") + x;
    return {Code::kInvalid, id + " runs in one process with " + others +
                                ": stopping it would stop them too. Membership changes need "
                                "nodes in processes of their own (meshctl up --split, or one "
                                "machine per node)"};
  }
  router::ClusterMap next = *map;
  if (OwnsKeys(n->role) && !n->leaving) {
    // First it leaves the ring but stays in the mesh: it ships its rows to the new owners.
    if (Status s = CheckSettled(next); !s.ok()) return s;
    ++next.epoch;
    for (auto& x : next.nodes)
      if (x.id == id) x.leaving = true;
    if (Status s = WriteMapFile(map_path(), next); !s.ok()) return s;
    log += "map epoch " + std::to_string(next.epoch) + ": " + id + " leaving\n";
    if (Status s = PushMap(next, log); !s.ok()) return s;
    if (Status s = WaitHandover(next, id, log, 120000); !s.ok()) return s;
  }
  if (ProcessAlive(ReadPid(var_ + "/run/" + id + ".pid"))) {
    // A gateway's clients go elsewhere first: nothing is dropped, they reconnect at once.
    if (!OwnsKeys(n->role))
      if (Status s = DrainGateway(id, log, 15000); !s.ok()) return s;
    if (auto k = KillNode(id, SIGTERM); !k.ok()) return k.status();
    log += "stopped " + id + "\n";
  }
  // It owns nothing now (a session or group node) or holds no connection (a gateway).
  ++next.epoch;
  std::erase_if(next.nodes, [&](const router::NodeInfo& x) { return x.id == id; });
  if (Status s = WriteMapFile(map_path(), next); !s.ok()) return s;
  fs::remove(var_ + "/run/" + id + ".pid");
  log += "map epoch " + std::to_string(next.epoch) + ": removed " + id + "\n";
  return PushMap(next, log);
}

Status LocalMesh::PushMapFile(const std::string& file, std::string& log) {
  auto next = router::ClusterMap::Load(file);
  if (!next.ok()) return next.status();  // names the file and line
  if (auto cur = router::ClusterMap::Load(map_path()); cur.ok() && next->epoch <= cur->epoch)
    return {Code::kInvalid, "epoch " + std::to_string(next->epoch) + " of " + file +
                                " is not newer than " + std::to_string(cur->epoch)};
  if (Status s = WriteMapFile(map_path(), *next); !s.ok()) return s;
  log += "map epoch " + std::to_string(next->epoch) + " from " + file + "\n";
  if (Status s = PushMap(*next, log); !s.ok()) return s;
  std::string leaving;
  for (const auto& n : next->nodes)
    if (n.leaving) leaving = n.id;
  return WaitHandover(*next, leaving, log, 120000);
}

}  // namespace meshchat::nodes
