// LocalMesh's CURVE keys and secret rotation, and the operator side of the sockets meshctl
// opens to nodes.
#include <openssl/rand.h>

#include <cctype>
#include <csignal>
#include <filesystem>
#include <set>
#include <sstream>

#include "base/cluster_secret.h"
#include "base/durable_file.h"
#include "ops/local_mesh.h"
#include "ops/local_mesh_util.h"

namespace meshchat::nodes {
namespace fs = std::filesystem;
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

using namespace detail;

namespace {
// Saves a CURVE secret key under VAR/keys (made 0700 if missing).
Status SaveKey(const std::string& var, const std::string& path, const router::CurveKeys& keys) {
  std::error_code ec;
  fs::create_directories(var + "/keys", ec);
  fs::permissions(var + "/keys", fs::perms::owner_all, ec);
  if (ec) return Status(Code::kIo, "cannot create " + var + "/keys: " + ec.message());
  return router::SaveCurveKeys(path, keys);
}
}  // namespace

Status LocalMesh::GiveKeys(router::ClusterMap& map) const {
  for (auto& n : map.nodes) {
    if (!n.curve.empty()) continue;
    const router::CurveKeys keys = router::GenerateCurveKeys();
    if (Status s = SaveKey(var_, key_path(n.id), keys); !s.ok()) return s;
    n.curve = keys.public_key;
  }
  auto op = router::LoadCurveKeys(key_path("operator"));
  if (!op.ok()) {
    op = router::GenerateCurveKeys();
    if (Status s = SaveKey(var_, key_path("operator"), *op); !s.ok()) return s;
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
  return key_file.empty() ? Status::Ok() : SaveKey(var_, key_path(id), *keys);
}

Result<std::string> LocalMesh::Secret(bool create) const {
  const std::string path = secret_path();
  if (fs::exists(path)) return ReadSecret(path);
  if (!create) return Status(Code::kNotFound, "no cluster secret at " + path + " (run meshctl up)");
  auto s = NewSecret();
  if (!s.ok()) return s.status();
  fs::create_directories(var_);
  if (Status st = WriteSecret(path, *s); !st.ok()) return st;
  return s;
}

Status LocalMesh::RotateSecret(bool drop_old, std::string& log) {
  auto current = ReadSecret(secret_path());
  auto previous = ReadSecret(secret_path(), 1);
  if (!current.ok()) return current.status();
  if (!previous.ok()) return previous.status();
  if (drop_old) {
    if (previous->empty()) return Status(Code::kInvalid, "no previous secret to drop");
    if (Status s = WriteSecret(secret_path(), *current); !s.ok()) return s;
    log += "previous secret dropped: what it signed is refused from now on\n";
  } else {
    if (!previous->empty())
      return Status(Code::kExists,
                    "a previous secret is still accepted: drop it first (--drop-old), once what "
                    "it signed has expired");
    auto fresh = NewSecret();
    if (!fresh.ok()) return fresh.status();
    if (Status s = WriteSecret(secret_path(), *fresh, *current); !s.ok()) return s;
    log += "new secret signs from now on; the previous one is still accepted\n";
  }
  std::set<long> restarted;  // co-hosted nodes share a process: restart it once
  for (const auto& [id, pid] : RunningNodes())
    if (restarted.insert(pid).second)
      if (Status s = RestartNode(id, log); !s.ok()) return s;
  return Status::Ok();
}

Status LocalMesh::RekeyNode(const std::string& id, std::string& log) {
  auto map = router::ClusterMap::Load(map_path());
  if (!map.ok()) return map.status();
  if (!map->curve()) return Status(Code::kInvalid, "this mesh has no curve keys to rotate");
  router::ClusterMap next = *map;
  ++next.epoch;
  const router::CurveKeys keys = router::GenerateCurveKeys();
  const bool op = id == "operator";
  router::NodeInfo* n = nullptr;
  for (auto& node : next.nodes)
    if (node.id == id) n = &node;
  if (!op && !n) return Status(Code::kNotFound, "no node '" + id + "' in " + map_path());
  if (op) {  // the new key is listed; the old one signs this push and is dropped by the next
    auto old = router::LoadCurveKeys(key_path("operator"));
    std::erase_if(next.operators, [&](const router::OperatorKey& o) {
      return old.ok() && o.curve == old->public_key;
    });
    next.operators.push_back({"meshctl", keys.public_key});
  } else {
    n->curve = keys.public_key;
  }
  if (auto ok = router::ClusterMap::Parse(next.Serialize()); !ok.ok()) return ok.status();
  const bool was_running = !op && KillNode(id, SIGTERM).ok();
  if (Status s = detail::WriteMapFile(map_path(), next); !s.ok()) return s;
  log += "map epoch " + std::to_string(next.epoch) + ": new key for " + id + "\n";
  if (Status s = PushMap(next, log, op ? "" : id); !s.ok()) return s;
  if (Status s = SaveKey(var_, key_path(id), keys); !s.ok()) return s;
  if (op) {
    detail::SetOperatorKeys(keys);
    return Status::Ok();
  }
  return was_running ? StartNode(id, log) : Status::Ok();
}

}  // namespace meshchat::nodes
