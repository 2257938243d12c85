// A mesh of node processes on this machine, as meshctl manages it. Everything lives under
// one directory, $MESHCHAT_HOME/var (default ./var):
//   cluster.map       the cluster map the nodes were started with
//   cluster.secret    token secret (0600), kept across restarts so tokens stay valid
//   client-endpoints  tls://HOST:PORT (or tcp:// when plain) of each gateway, one per line
//                     (how `chat` finds the mesh)
//   tls/              with `up --tls`: development CA and gateway certificate (dev_certs.h)
//   keys/ID.key       CURVE secret key of each node and of meshctl (operator.key), 0600
//   run/ID.pid        pid of each node meshctl started (co-hosted nodes share one)
//   processes         the nodes that share one process, a line each (absent: each node
//                     runs alone); `up` writes it unless given --split
//   log/ID.log        each node's log
//   data/ID/          each node's data (LMDB)
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "codec/envelope.h"
#include "router/cluster_map.h"

namespace meshchat::nodes {

struct UpOptions {
  int gateways = 2;
  int sessions = 2;
  int groups = 2;
  int presence = 1;
  int media = 1;
  // Copies of each session, group and presence shard (and media shard on rados): 1 = none;
  // 2 = a replica beside each (docs/ARCHITECTURE.md, "Replicated shards").
  int replicas = 1;
  std::string media_store = "localdir";  // or rados (then ceph_conf is required)
  std::string ceph_conf;
  std::string ceph_pool = "meshchat";
  std::string ceph_user = "meshchat";  // scripts/ceph-dev's least-privileged client
  std::string host = "127.0.0.1";
  int ready_timeout_ms = 15000;
  std::vector<std::string> node_opts;  // KEY=VALUE passed to every node as --opt
  // Clients over TLS with a development CA (var/tls/ca.pem); else plain TCP, which a local
  // development mesh on loopback is allowed to ask for (gateways get client_tls=off).
  bool tls = false;
  // Mesh links over CurveZMQ: a keypair per node and one for meshctl (var/keys/, 0600), the
  // public keys in the map. Off: plaintext links (benchmark comparisons).
  bool curve = true;
  // Each node in a process of its own, as on a cluster of machines (chaos scenarios and tests
  // that fault one node). Default: every node in one `meshchat-node` process, linked in
  // memory (router/local_links.h): several times less CPU per chat on one machine.
  bool split = false;
};

struct NodeState {
  router::NodeInfo info;
  long pid = 0;  // 0 = no pid file
  bool alive = false;
  std::optional<codec::NodeStatus> status;  // answered a status request
};

class LocalMesh {
 public:
  explicit LocalMesh(std::string var_dir);
  // $MESHCHAT_HOME/var, or ./var.
  static std::string DefaultVarDir();

  const std::string& var_dir() const { return var_; }
  std::string map_path() const { return var_ + "/cluster.map"; }
  std::string secret_path() const { return var_ + "/cluster.secret"; }
  std::string tls_dir() const { return var_ + "/tls"; }
  // CURVE secret key file of a node (or "operator": meshctl's own).
  std::string key_path(const std::string& id) const { return var_ + "/keys/" + id + ".key"; }
  // Gives every node of `map` without one a new keypair (files under var/keys) and lists the
  // operator key (made once) in it (local_mesh_keys.cc).
  Status GiveKeys(router::ClusterMap& map) const;
  // Multi-host: `key_file` (a CURVE secret key, `meshctl keygen`) becomes node `id`'s key
  // here; it must be the one this directory's map lists for it. Without a file, the key
  // already here is checked. Nothing to do for a map without keys.
  Status AdoptKey(const std::string& id, const std::string& key_file) const;
  // Key rotation: gives node `id` (or meshctl itself: "operator") a new CURVE keypair. A node
  // is stopped, the map with its new public key (epoch + 1) is pushed to the others (they
  // admit it and make their links to it again), and it starts with the new key.
  Status RekeyNode(const std::string& id, std::string& log);
  // Cluster secret rotation in two steps: a new secret signs from now on while the current
  // one is still accepted (kept as the file's second line); later, `drop_old` forgets it.
  // Either way every running node is restarted, one at a time, to read the file.
  Status RotateSecret(bool drop_old, std::string& log);
  // "tls://" or "tcp://": how this mesh's gateways take clients (from node.opts).
  std::string ClientScheme() const;

  // Writes the map and secret and starts every node; waits until all answer status with all
  // peers up. `log` receives progress lines.
  Status Up(const UpOptions& opts, std::string& log);
  // Stops the nodes this directory's pid files name. Returns how many were stopped.
  Result<int> Down(std::string& log);
  // Starts one node of the current map (not running yet) and waits until it answers (and,
  // with `wait_peers`, up to 3 s more until it sees its peers).
  Status StartNode(const std::string& id, std::string& log, bool wait_peers = true);
  // Multi-host: makes `map_file` (validated) this directory's map, and `secret_file` (if not
  // empty) its secret, so `StartNode` can run one node of a cluster whose other nodes run on
  // other machines. `opts` (KEY=VALUE) are kept for this node only. Refuses to replace a
  // different map while nodes of this directory run.
  Status AdoptMap(const std::string& map_file, const std::string& secret_file,
                  const std::string& node, const std::vector<std::string>& opts);
  // Sends `sig` to a node this directory started; waits for it to exit on KILL/TERM.
  Result<long> KillNode(const std::string& id, int sig);
  // Drains a gateway: it stops accepting and sends its clients elsewhere; waits (up to
  // `timeout_ms`) until it holds no connection, and drops it from client-endpoints.
  Status DrainGateway(const std::string& id, std::string& log, int timeout_ms = 30000);
  // Revokes a device at every gateway of the map (each stores it before answering): its
  // tokens signed until now are refused and its connections closed. Refused, naming them,
  // unless every gateway answers (a gateway that misses it would still accept the device).
  Status Revoke(const std::string& user, const std::string& device, std::string& log);
  // Membership (local_mesh_membership.cc): a new map (epoch + 1) with the node added or
  // removed, written and pushed to every running node. Gateways, session and group nodes;
  // for the last two it waits until the keys that moved are handed over.
  Status AddNode(const std::string& id, router::Role role, std::string& log);
  Status RemoveNode(const std::string& id, std::string& log);
  // The options file of a media node added to `map` (store settings of the others).
  Status WriteMediaOpts(const router::ClusterMap& map, const std::string& id,
                        const std::string& http) const;
  // Every node of `map` answers, runs that epoch and hands nothing over (else an error).
  Status CheckSettled(const router::ClusterMap& map) const;
  // Waits until every node of `map` took it and finished handing keys over (and `leaving`,
  // if not empty, has no unconfirmed channel entries left).
  Status WaitHandover(const router::ClusterMap& map, const std::string& leaving, std::string& log,
                      int timeout_ms) const;
  // Multi-host: makes `file` (validated, newer) this directory's map, pushes it to every node
  // and waits until keys that moved are handed over.
  Status PushMapFile(const std::string& file, std::string& log);
  // Pushes `next` to every node of it that runs (workers first); fails if one refuses it.
  Status PushMap(const router::ClusterMap& next, std::string& log, const std::string& skip = "");
  // Stops (SIGTERM, then SIGKILL after 5 s) and starts one node.
  Status RestartNode(const std::string& id, std::string& log);
  // A shard whose primary `head` lost its store: `from` (a replica of it, stopped here) gives
  // its store to `head`, then both start (ops/local_mesh_replicas.cc).
  Status RestoreNode(const std::string& head, const std::string& from, std::string& log);
  // Asks the user's session shard what it knows of the user (a msgpack map, see
  // SessionCore::DescribeUser). kUnavailable if the shard does not answer in time.
  Result<std::string> DescribeUser(const std::string& user, int timeout_ms = 1500) const;
  // Nodes of the map with their process state and status answers.
  Result<std::vector<NodeState>> Query(int timeout_ms = 1500) const;
  // Pids of running nodes from pid files.
  std::vector<std::pair<std::string, long>> RunningNodes() const;
  // Reads (or creates, with `create`) the cluster secret.
  Result<std::string> Secret(bool create) const;

 private:
  // Starts the process of `n`: its role binary, or meshchat-node with every node of its line
  // in `processes` (all of which must be in `map`).
  Result<pid_t> Spawn(const router::NodeInfo& n, const router::ClusterMap& map) const;
  // The nodes that share a process with `id` (itself included, in the file's order).
  std::vector<std::string> ProcessOf(const std::string& id) const;
  std::string var_;
};

// Asks nodes at the given mesh endpoints for their status, all at once; a node that does not
// answer within `timeout_ms` has no entry (nullopt).
std::vector<std::optional<codec::NodeStatus>> QueryStatus(
    const std::vector<router::NodeInfo>& nodes, int timeout_ms);

// Directory holding this executable (where the node binaries are installed).
std::string SelfDir();

}  // namespace meshchat::nodes
