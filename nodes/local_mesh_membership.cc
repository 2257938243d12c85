// LocalMesh: adding and removing nodes of a running cluster. For now only gateways: they own
// no keys, so a new map that adds or drops one needs no hand-over (nodes refuse any other
// change while running; see TakeMap in node_runner.cc).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "codec/client_messages.h"
#include "nodes/local_mesh.h"
#include "nodes/local_mesh_util.h"

namespace fs = std::filesystem;

namespace meshchat::nodes {

using namespace detail;

namespace {
Status WriteMapFile(const std::string& path, const router::ClusterMap& m) {
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
}  // namespace

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

Status LocalMesh::AddNode(const std::string& id, router::Role role, std::string& log) {
  if (role != router::Role::kGateway)
    return {Code::kInvalid, std::string("adding a ") + router::RoleName(role) +
                                " node moves keys to it, which needs a hand-over that is not "
                                "built yet: only gateways can be added to a running cluster"};
  if (!codec::IsValidId(id)) return {Code::kInvalid, "invalid node id '" + id + "'"};
  auto map = router::ClusterMap::Load(map_path());
  if (!map.ok()) return map.status();
  if (map->Find(id)) return {Code::kExists, "node " + id + " is already in the map"};
  router::ClusterMap next = *map;
  ++next.epoch;
  auto ports = FreePorts(3);
  router::NodeInfo n{id,
                     role,
                     "tcp://127.0.0.1:" + std::to_string(ports[0]),
                     "127.0.0.1:" + std::to_string(ports[1]),
                     "",
                     "127.0.0.1:" + std::to_string(ports[2])};
  next.nodes.push_back(n);
  if (auto ok = router::ClusterMap::Parse(next.Serialize()); !ok.ok()) return ok.status();
  if (Status s = WriteMapFile(map_path(), next); !s.ok()) return s;
  log += "map epoch " + std::to_string(next.epoch) + ": added " + id + "\n";
  if (Status s = PushMap(next, log, id); !s.ok()) return s;  // it starts with the new map
  if (Status s = StartNode(id, log); !s.ok()) return s;
  std::ofstream(var_ + "/client-endpoints", std::ios::app) << n.client << "\n";
  log += "gateway " + id + " takes clients on " + n.client + "\n";
  return Status::Ok();
}

Status LocalMesh::RemoveNode(const std::string& id, std::string& log) {
  auto map = router::ClusterMap::Load(map_path());
  if (!map.ok()) return map.status();
  const router::NodeInfo* n = map->Find(id);
  if (!n) return {Code::kNotFound, "no node '" + id + "' in " + map_path()};
  if (n->role != router::Role::kGateway)
    return {Code::kInvalid, std::string("removing a ") + router::RoleName(n->role) +
                                " node moves its keys elsewhere, which needs a hand-over that is "
                                "not built yet: only gateways can be removed from a running "
                                "cluster"};
  if (map->IdsWithRole(router::Role::kGateway).size() == 1)
    return {Code::kInvalid, "cannot remove the last gateway"};
  if (ProcessAlive(ReadPid(var_ + "/run/" + id + ".pid"))) {
    // Its clients go elsewhere first: nothing is dropped, they reconnect at once.
    if (Status s = DrainGateway(id, log, 15000); !s.ok()) return s;
    if (auto k = KillNode(id, SIGTERM); !k.ok()) return k.status();
    log += "stopped " + id + "\n";
  }
  router::ClusterMap next = *map;
  ++next.epoch;
  std::erase_if(next.nodes, [&](const router::NodeInfo& x) { return x.id == id; });
  if (Status s = WriteMapFile(map_path(), next); !s.ok()) return s;
  fs::remove(var_ + "/run/" + id + ".pid");
  log += "map epoch " + std::to_string(next.epoch) + ": removed " + id + "\n";
  return PushMap(next, log);
}

}  // namespace meshchat::nodes
