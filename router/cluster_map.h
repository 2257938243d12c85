// The cluster map: which nodes exist, their roles and endpoints, under an epoch.
// File format (docs/ARCHITECTURE.md, "Cluster map file"), one directive per line:
//
//   # comment
//   epoch 1
//   node gw1 gateway mesh=tcp://127.0.0.1:7101 client=127.0.0.1:7001
//   node s1  session mesh=tcp://127.0.0.1:7201
//   node p1  presence mesh=tcp://127.0.0.1:7301 pub=tcp://127.0.0.1:7302
//   node s1r session mesh=tcp://127.0.0.1:7203 replica-of=s1   a copy of shard s1 (below)
//   operator ops curve=HEX64        a CurveZMQ public key allowed to run meshctl against it
//
// Replicas (docs/ARCHITECTURE.md, "Replicated shards"): a keyed node (session, group,
// presence, media) with `replica-of=HEAD` keeps a copy of HEAD's shard and owns no keys of
// its own; rings are built from shard heads only, and the shard keeps the head's name.
// With `curve=HEX64` (a CurveZMQ public key, 64 lowercase hex digits) on every node, mesh links are
// encrypted and only listed keys are admitted (router/curve.h); without keys on any node they
// are plaintext. A map where some nodes have keys and others not is refused.
//
// Every node reads the same file and so builds the same rings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace meshchat::router {

enum class Role { kGateway, kSession, kGroup, kPresence, kMedia };
const char* RoleName(Role r);
std::optional<Role> ParseRole(std::string_view s);

struct NodeInfo {
  std::string id;
  Role role = Role::kSession;
  std::string mesh;     // ZeroMQ endpoint the node's ROUTER binds: tcp://HOST:PORT or ipc://PATH
  std::string client;   // gateways only: HOST:PORT clients connect to
  std::string pub;      // presence only: ZeroMQ endpoint its PUB socket binds (change fan-out)
  std::string metrics;  // optional: HOST:PORT serving Prometheus metrics at /metrics
  // Membership changes (`meshctl add/remove`, docs/OPERATIONS.md): a node added while the
  // cluster ran has `joined=EPOCH` (on its first start it takes its keys over from the others);
  // a node being removed is `leaving` (it owns no keys and hands its rows over, then goes).
  uint64_t joined = 0;
  bool leaving = false;
  std::string replica_of;  // the shard (its head node's id) this node is a replica of
  std::string curve;       // CurveZMQ public key, 32 bytes (binary); empty: plaintext mesh
  bool operator==(const NodeInfo&) const = default;
};

// An operator key: admitted to every node's mesh endpoint (meshctl), never a node.
struct OperatorKey {
  std::string name;
  std::string curve;  // 32 bytes
  bool operator==(const OperatorKey&) const = default;
};

struct ClusterMap {
  uint64_t epoch = 0;
  std::vector<NodeInfo> nodes;
  std::vector<OperatorKey> operators;

  // Mesh links use CurveZMQ (every node has a key).
  bool curve() const { return !nodes.empty() && !nodes.front().curve.empty(); }
  const NodeInfo* Find(std::string_view id) const;
  // The nodes of role `r` that own keys (leaving nodes and replicas do not): what rings are
  // built from. Each is also the name of its shard.
  std::vector<std::string> IdsWithRole(Role r) const;
  // The replicas of shard `head`, in map order.
  std::vector<std::string> ReplicasOf(std::string_view head) const;
  // The shard `id` belongs to: its head (itself unless it is a replica).
  std::string ShardOf(std::string_view id) const;
  std::string Serialize() const;

  // Validates everything: epoch present and > 0, ids valid and unique, known roles, endpoints
  // well formed and not shared, gateways have a client endpoint. Errors name the line.
  static Result<ClusterMap> Parse(std::string_view text);
  static Result<ClusterMap> Load(const std::string& path);
};

// Splits "HOST:PORT" (port 1..65535). False if malformed.
bool SplitHostPort(std::string_view s, std::string& host, uint16_t& port);

}  // namespace meshchat::router
