#include "router/cluster_map.h"

#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

#include "codec/client_messages.h"
#include "codec/media_messages.h"

namespace meshchat::router {

const char* RoleName(Role r) {
  switch (r) {
    case Role::kGateway: return "gateway";
    case Role::kSession: return "session";
    case Role::kGroup: return "group";
    case Role::kPresence: return "presence";
    case Role::kMedia: return "media";
  }
  return "?";
}

std::optional<Role> ParseRole(std::string_view s) {
  for (Role r : {Role::kGateway, Role::kSession, Role::kGroup, Role::kPresence, Role::kMedia})
    if (s == RoleName(r)) return r;
  return std::nullopt;
}

bool SplitHostPort(std::string_view s, std::string& host, uint16_t& port) {
  const size_t colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == s.size()) return false;
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data() + colon + 1, s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v == 0 || v > 65535) return false;
  host = std::string(s.substr(0, colon));
  port = static_cast<uint16_t>(v);
  return true;
}

namespace {

bool ValidMeshEndpoint(std::string_view ep) {
  std::string host;
  uint16_t port = 0;
  if (ep.starts_with("tcp://")) return SplitHostPort(ep.substr(6), host, port);
  if (ep.starts_with("ipc://")) return ep.size() > 6;
  return false;
}

std::vector<std::string_view> Words(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

Status LineError(int line, const std::string& msg) {
  return {Code::kInvalid, "cluster map line " + std::to_string(line) + ": " + msg};
}

// A CurveZMQ public key: 64 lowercase hex digits (as meshctl writes them) -> 32 bytes.
bool ParseCurveKey(std::string_view hex, std::string& out) {
  return codec::UnHex(hex, out, 32);
}

}  // namespace

const NodeInfo* ClusterMap::Find(std::string_view id) const {
  for (const auto& n : nodes)
    if (n.id == id) return &n;
  return nullptr;
}

std::vector<std::string> ClusterMap::IdsWithRole(Role r) const {
  std::vector<std::string> out;
  for (const auto& n : nodes)
    if (n.role == r && !n.leaving && n.replica_of.empty()) out.push_back(n.id);
  return out;
}

std::vector<std::string> ClusterMap::ReplicasOf(std::string_view head) const {
  std::vector<std::string> out;
  for (const auto& n : nodes)
    if (n.replica_of == head) out.push_back(n.id);
  return out;
}

std::string ClusterMap::ShardOf(std::string_view id) const {
  const NodeInfo* n = Find(id);
  return n && !n->replica_of.empty() ? n->replica_of : std::string(id);
}

std::string ClusterMap::Serialize() const {
  std::ostringstream o;
  o << "# meshchat cluster map\nepoch " << epoch << "\n";
  for (const auto& n : nodes) {
    o << "node " << n.id << " " << RoleName(n.role) << " mesh=" << n.mesh;
    if (!n.client.empty()) o << " client=" << n.client;
    if (!n.pub.empty()) o << " pub=" << n.pub;
    if (!n.metrics.empty()) o << " metrics=" << n.metrics;
    if (n.joined != 0) o << " joined=" << n.joined;
    if (n.leaving) o << " leaving";
    if (!n.replica_of.empty()) o << " replica-of=" << n.replica_of;
    if (!n.curve.empty()) o << " curve=" << codec::HexOf(n.curve);
    o << "\n";
  }
  for (const auto& op : operators)
    o << "operator " << op.name << " curve=" << codec::HexOf(op.curve) << "\n";
  return o.str();
}

Result<ClusterMap> ClusterMap::Parse(std::string_view text) {
  ClusterMap map;
  std::set<std::string> ids, endpoints, keys;
  int lineno = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++lineno;
    if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    auto w = Words(line);
    if (w.empty()) continue;
    if (w[0] == "epoch") {
      uint64_t e = 0;
      if (w.size() != 2) return LineError(lineno, "expected 'epoch N'");
      auto [p, ec] = std::from_chars(w[1].data(), w[1].data() + w[1].size(), e);
      if (ec != std::errc() || p != w[1].data() + w[1].size() || e == 0)
        return LineError(lineno, "epoch must be a positive integer");
      if (map.epoch != 0) return LineError(lineno, "epoch given twice");
      map.epoch = e;
    } else if (w[0] == "node") {
      if (w.size() < 4) return LineError(lineno, "expected 'node ID ROLE mesh=ENDPOINT ...'");
      NodeInfo n;
      n.id = std::string(w[1]);
      if (!codec::IsValidId(n.id)) return LineError(lineno, "bad node id '" + n.id + "'");
      if (!ids.insert(n.id).second) return LineError(lineno, "duplicate node id '" + n.id + "'");
      auto role = ParseRole(w[2]);
      if (!role) return LineError(lineno, "unknown role '" + std::string(w[2]) + "'");
      n.role = *role;
      for (size_t i = 3; i < w.size(); ++i) {
        const size_t eq = w[i].find('=');
        std::string_view k = w[i].substr(0, eq), v = eq == w[i].npos ? "" : w[i].substr(eq + 1);
        if (k == "mesh") {
          if (!ValidMeshEndpoint(v))
            return LineError(lineno, "bad mesh endpoint '" + std::string(v) + "'");
          n.mesh = std::string(v);
        } else if (k == "pub") {
          if (!ValidMeshEndpoint(v))
            return LineError(lineno, "bad pub endpoint '" + std::string(v) + "'");
          n.pub = std::string(v);
        } else if (k == "metrics") {
          std::string host;
          uint16_t port;
          if (!SplitHostPort(v, host, port))
            return LineError(lineno, "bad metrics endpoint '" + std::string(v) + "'");
          n.metrics = std::string(v);
        } else if (k == "joined") {
          auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n.joined);
          if (ec != std::errc() || p != v.data() + v.size() || n.joined == 0)
            return LineError(lineno, "joined must be a positive epoch");
        } else if (w[i] == "leaving") {
          n.leaving = true;
        } else if (k == "replica-of") {
          n.replica_of = std::string(v);
          if (!codec::IsValidId(n.replica_of) || n.replica_of == n.id)
            return LineError(lineno, "replica-of must name another node");
        } else if (k == "curve") {
          if (!ParseCurveKey(v, n.curve))
            return LineError(lineno, "curve must be a public key of 64 hex digits (lowercase)");
        } else if (k == "client") {
          std::string host;
          uint16_t port;
          if (!SplitHostPort(v, host, port))
            return LineError(lineno, "bad client endpoint '" + std::string(v) + "'");
          n.client = std::string(v);
        } else {
          return LineError(lineno, "unknown node attribute '" + std::string(w[i]) + "'");
        }
      }
      if (n.mesh.empty()) return LineError(lineno, "node " + n.id + " has no mesh endpoint");
      if ((n.leaving || n.joined != 0) && n.role == Role::kGateway)
        return LineError(lineno, "gateways own no keys: they are never joined= or leaving");
      if (n.role == Role::kGateway && n.client.empty())
        return LineError(lineno, "gateway " + n.id + " has no client endpoint");
      if (n.role == Role::kPresence && n.pub.empty())
        return LineError(lineno, "presence node " + n.id + " has no pub endpoint");
      if (!endpoints.insert(n.mesh).second ||
          (!n.client.empty() && !endpoints.insert(n.client).second) ||
          (!n.pub.empty() && !endpoints.insert(n.pub).second) ||
          (!n.metrics.empty() && !endpoints.insert(n.metrics).second))
        return LineError(lineno, "endpoint of " + n.id + " is used twice");
      if (!map.nodes.empty() && map.nodes.front().curve.empty() != n.curve.empty())
        return LineError(lineno, "either every node has a curve key or none has");
      if (!n.curve.empty() && !keys.insert(n.curve).second)
        return LineError(lineno, "curve key of " + n.id + " is used twice");
      map.nodes.push_back(std::move(n));
    } else if (w[0] == "operator") {
      OperatorKey op;
      if (w.size() != 3 || !w[2].starts_with("curve=") || !ParseCurveKey(w[2].substr(6), op.curve))
        return LineError(lineno, "expected 'operator NAME curve=HEX64'");
      op.name = std::string(w[1]);
      if (!codec::IsValidId(op.name)) return LineError(lineno, "bad operator name");
      if (!keys.insert(op.curve).second)
        return LineError(lineno, "curve key of operator " + op.name + " is used twice");
      map.operators.push_back(std::move(op));
    } else {
      return LineError(lineno, "unknown directive '" + std::string(w[0]) + "'");
    }
  }
  for (const auto& n : map.nodes) {
    if (n.replica_of.empty()) continue;
    const NodeInfo* head = map.Find(n.replica_of);
    if (!head || head->role != n.role || !head->replica_of.empty())
      return Status(Code::kInvalid, "cluster map: " + n.id + " is replica-of=" + n.replica_of +
                                        ", which must be a node of role " + RoleName(n.role) +
                                        " that is not itself a replica");
    if (n.role == Role::kGateway)
      return Status(Code::kInvalid, "cluster map: gateways hold no shard to replicate");
    if (n.leaving || n.joined != 0 || head->leaving || head->joined != 0)
      return Status(Code::kInvalid, "cluster map: replicated shards (" + n.id +
                                        ") do not join or leave (not yet: docs/OPERATIONS.md)");
  }
  if (map.epoch == 0) return Status(Code::kInvalid, "cluster map: missing 'epoch N'");
  if (map.nodes.empty()) return Status(Code::kInvalid, "cluster map: no nodes");
  if (!map.operators.empty() && !map.curve())
    return Status(Code::kInvalid, "cluster map: operator keys need curve keys on the nodes");
  return map;
}

Result<ClusterMap> ClusterMap::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status(Code::kNotFound, "cannot read cluster map " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (ss.str().size() > (1u << 20)) return Status(Code::kTooLarge, "cluster map over 1 MiB");
  return Parse(ss.str());
}

}  // namespace meshchat::router
