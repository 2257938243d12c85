// One runner for every node role: flags, cluster map, logging, signals, the reactor and the
// mesh. A node's main is one line: `return RunNode<GatewayService>(argc, argv, Role::kGateway);`
#pragma once

#include <zmq.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "base/clock.h"
#include "codec/envelope.h"
#include "nodes/runtime/load_levels.h"
#include "nodes/runtime/metrics.h"
#include "nodes/runtime/node_options.h"
#include "router/cluster_map.h"
#include "router/curve.h"
#include "router/mesh.h"
#include "router/reactor.h"

namespace meshchat::nodes {

struct NodeContext {
  const router::ClusterMap& map;
  const router::NodeInfo& self;
  router::Reactor& reactor;
  router::Mesh& mesh;
  const Clock& clock;
  std::string data_dir;  // this node's private directory (LMDB files), created by the runner
  std::string secret;    // cluster token secret ("" if none was configured)
  // Role-specific settings from repeated --opt KEY=VALUE flags (e.g. inbox_ttl_s=86400).
  NodeOptions options;
  // CurveZMQ (empty when the map lists no keys): this node's keys, for sockets of its own
  // that bind (presence PUB) or connect (gateway SUB), and the handler that admits peers.
  router::CurveKeys curve = {};
  // The cluster secret being rotated out (second line of the secret file; "" if none): what
  // it signed is still accepted, nothing new is signed with it.
  std::string previous_secret = {};
  router::ZapHandler* zap = nullptr;
};

// A role's service. The runner owns sockets and the loop; the service wires its handler
// classes to them.
class Service {
 public:
  virtual ~Service() = default;
  virtual void Start() = 0;        // start-up: may throw
  virtual void BeginShutdown() {}  // SIGTERM: finish gracefully (e.g. say bye to clients)
  virtual void OnEnvelope(const std::string& from, codec::Envelope&& env) = 0;
  virtual void OnPeerUp(const std::string& /*node*/, bool /*restarted*/) {}
  virtual void OnPeerDown(const std::string& /*node*/) {}
  // Envelopes from `node` were lost between ones that arrived (router/mesh.h).
  virtual void OnLinkGap(const std::string& /*node*/) {}
  virtual uint64_t Connections() const = 0;
  // Work waiting inside the node (see codec::NodeStatus::queue), for status and metrics.
  virtual uint64_t QueueDepth() const { return 0; }
  // Age of the oldest commit waiting for its fsync, ms (0: none): a load signal.
  virtual int64_t CommitAgeMs() const { return 0; }
  // The node's load state changed (nodes/runtime/load_levels.h): handlers shed work by it.
  virtual void OnLoad(const LoadState& /*state*/) {}
  // Load thresholds where this role's differ from LoadConfig's (the gateway's queue is bytes).
  virtual LoadConfig DefaultLoadConfig() const { return {}; }
  // `meshctl drain`: stop taking new work and send clients elsewhere (gateways).
  virtual void Drain() {}
  // A newer cluster map replaced ctx.map; `previous` is the one it replaced.
  virtual void OnMapChanged(const router::ClusterMap& /*previous*/) {}
  // Keys still moving to or from this node after a map change (0: none). A node refuses a
  // newer map until this is 0.
  virtual uint64_t HandoverPending() const { return 0; }
  // Replicated shards: this node's standing in its shard (status fields repl_*, replicas).
  virtual void FillReplication(codec::NodeStatus& /*st*/) const {}
  // Role-specific metrics, rendered once a second on the loop thread.
  virtual void WriteMetrics(MetricsText& /*m*/) const {}
  // For operators (`meshctl who`): what this node knows about `key`, as a msgpack map body.
  virtual std::string Describe(const std::string& /*key*/) { return {}; }
};

// The service for a node of `role`.
using RoleFactory = std::function<std::unique_ptr<Service>(router::Role role, NodeContext&)>;

// A node process: flags, logging, signals, the reactor, and its nodes (nodes/runtime/
// node_instance.h). With `role`, one node of that role (a role binary); without, the
// `--id`s given, of any role the factory makes, co-hosted on one reactor thread and linked in
// memory (router/local_links.h).
int RunNodesMain(int argc, char** argv, std::optional<router::Role> role, const RoleFactory& make);

template <typename S>
int RunNode(int argc, char** argv, router::Role role) {
  return RunNodesMain(argc, argv, role,
                      [](router::Role, NodeContext& ctx) { return std::make_unique<S>(ctx); });
}

// Requests only operators (meshctl) send: drain, map update, revoke, describe a user.
bool IsOperatorRequest(codec::MeshType t);

// Reads the cluster secret file (trailing whitespace trimmed). Throws on failure.
std::string ReadSecretFile(const std::string& path);

}  // namespace meshchat::nodes
