// LocalMesh's CURVE keys, and the operator side of the sockets meshctl opens to nodes.
#include <filesystem>

#include "nodes/local_mesh.h"
#include "nodes/local_mesh_util.h"

namespace meshchat::nodes {
namespace detail {
namespace {
router::CurveKeys& OperatorKeys() {
  static router::CurveKeys keys;  // meshctl is one thread; set once at start
  return keys;
}
}  // namespace

router::NodeInfo MakeNode(std::string id, router::Role role, std::string mesh, std::string client) {
  router::NodeInfo n;
  n.id = std::move(id);
  n.role = role;
  n.mesh = std::move(mesh);
  n.client = std::move(client);
  return n;
}

void SetOperatorKeys(router::CurveKeys keys) {
  OperatorKeys() = std::move(keys);
}

void SecureAsOperator(zmq::socket_t& s, const router::NodeInfo& n) {
  if (n.curve.empty()) return;
  // Without the operator key the node refuses us; a throwaway key says so in its log.
  if (OperatorKeys().empty()) OperatorKeys() = router::GenerateCurveKeys();
  router::MakeCurveClient(s, OperatorKeys(), n.curve);
}

}  // namespace detail

Status LocalMesh::GiveKeys(router::ClusterMap& map) const {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(var_ + "/keys", ec);
  fs::permissions(var_ + "/keys", fs::perms::owner_all, ec);
  if (ec) return Status(Code::kIo, "cannot create " + var_ + "/keys: " + ec.message());
  for (auto& n : map.nodes) {
    if (!n.curve.empty()) continue;
    const router::CurveKeys keys = router::GenerateCurveKeys();
    if (Status s = router::SaveCurveKeys(key_path(n.id), keys); !s.ok()) return s;
    n.curve = keys.public_key;
  }
  auto op = router::LoadCurveKeys(key_path("operator"));
  if (!op.ok()) {
    op = router::GenerateCurveKeys();
    if (Status s = router::SaveCurveKeys(key_path("operator"), *op); !s.ok()) return s;
  }
  detail::SetOperatorKeys(*op);
  bool listed = false;
  for (const auto& o : map.operators) listed |= o.curve == op->public_key;
  if (!listed) map.operators.push_back({"meshctl", op->public_key});
  return Status::Ok();
}

Status LocalMesh::AdoptKey(const std::string& id, const std::string& key_file) const {
  auto map = router::ClusterMap::Load(map_path());
  if (!map.ok()) return map.status();
  const router::NodeInfo* n = map->Find(id);
  if (!n) return Status(Code::kNotFound, "no node '" + id + "' in " + map_path());
  if (!map->curve()) {
    if (!key_file.empty())
      return Status(Code::kInvalid, "the map lists no curve keys: --key-file has no use");
    return Status::Ok();
  }
  auto keys = router::LoadCurveKeys(key_file.empty() ? key_path(id) : key_file);
  if (!keys.ok())
    return Status(keys.status().code(),
                  keys.status().message() +
                      " (the map uses CurveZMQ: pass --key-file; `meshctl keygen` makes one)");
  if (keys->public_key != n->curve)
    return Status(Code::kInvalid, "that key is not the one the map lists for " + id);
  if (key_file.empty()) return Status::Ok();
  std::error_code ec;
  std::filesystem::create_directories(var_ + "/keys", ec);
  std::filesystem::permissions(var_ + "/keys", std::filesystem::perms::owner_all, ec);
  return router::SaveCurveKeys(key_path(id), *keys);
}

}  // namespace meshchat::nodes
