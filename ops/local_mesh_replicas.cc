// LocalMesh: replicated shards. `meshctl restore HEAD --from REPLICA` brings a shard back
// whose primary lost its disk: the replica's store (every batch the primary acknowledged, by
// the in-sync rule: nodes/shard/replication.h) becomes the primary's, and the replica starts
// again from the same point. Until failover is automatic (docs/OPERATIONS.md), this is the
// operator's step after losing a primary's machine.
#include <signal.h>

#include <chrono>
#include <filesystem>

#include "ops/local_mesh.h"
#include "ops/local_mesh_util.h"

namespace fs = std::filesystem;

namespace meshchat::nodes {

using namespace detail;

Status LocalMesh::RestoreNode(const std::string& head, const std::string& from, std::string& log) {
  auto map = router::ClusterMap::Load(map_path());
  if (!map.ok()) return map.status();
  const router::NodeInfo* h = map->Find(head);
  const router::NodeInfo* r = map->Find(from);
  if (!h || !r) return {Code::kNotFound, "no node '" + (h ? from : head) + "' in " + map_path()};
  if (r->replica_of != head)
    return {Code::kInvalid, from + " is not a replica of " + head + " (replica-of= in the map)"};
  if (ProcessOf(head).size() > 1 || ProcessOf(from).size() > 1)
    return {Code::kInvalid, head + " and " + from +
                                " share a process with other nodes; restore needs `meshctl up "
                                "--split` (one process per node)"};
  if (ProcessAlive(ReadPid(var_ + "/run/" + head + ".pid")))
    return {Code::kExists, head + " is running: stop it first (meshctl kill " + head +
                               "); its store is the one replaced"};
  const std::string src = var_ + "/data/" + from, dst = var_ + "/data/" + head;
  if (!fs::exists(src + "/lmdb")) return {Code::kNotFound, "no store at " + src};
  // The replica stops first, so its store is not written while it is copied.
  const long pid = ReadPid(var_ + "/run/" + from + ".pid");
  if (ProcessAlive(pid)) {
    kill(static_cast<pid_t>(pid), SIGTERM);
    if (!WaitExit(pid, std::chrono::steady_clock::now() + std::chrono::seconds(5)))
      kill(static_cast<pid_t>(pid), SIGKILL);
    WaitExit(pid, std::chrono::steady_clock::now() + std::chrono::seconds(5));
    log += "stopped " + from + " (pid " + std::to_string(pid) + ")\n";
  }
  std::error_code ec;
  fs::remove_all(dst, ec);
  fs::create_directories(dst, ec);
  fs::copy(src, dst, fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
  if (ec) return {Code::kIo, "copying " + src + " to " + dst + ": " + ec.message()};
  log += "copied the store of " + from + " to " + head + "\n";
  if (Status s = StartNode(head, log, /*wait_peers=*/false); !s.ok()) return s;
  return StartNode(from, log, /*wait_peers=*/false);
}

}  // namespace meshchat::nodes
