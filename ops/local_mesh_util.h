// Helpers shared by LocalMesh (local_mesh.cc, local_mesh_membership.cc), the node runner and
// meshctl.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "codec/envelope.h"
#include "router/cluster_map.h"
#include "router/curve.h"

namespace meshchat::nodes::detail {

std::string ReadFile(const std::string& path);
bool ProcessAlive(long pid);
bool ChildExited(pid_t pid);
long ReadPid(const std::string& path);
// n distinct free TCP ports on 127.0.0.1 (held until all are chosen).
std::vector<uint16_t> FreePorts(size_t n);
std::string Tail(const std::string& path, size_t lines);
bool WaitExit(long pid, std::chrono::steady_clock::time_point deadline);
// Replaces the map file atomically (a node starting meanwhile reads the old or the new one).
Status WriteMapFile(const std::string& path, const router::ClusterMap& m);
// A node of a map (no curve key, no client, pub or metrics endpoints unless set after).
router::NodeInfo MakeNode(std::string id, router::Role role, std::string mesh,
                          std::string client = "");
// The operator's CURVE keys (VAR/keys/operator.key) for the sockets meshctl opens to nodes:
// set once per process by LocalMesh when it finds them.
void SetOperatorKeys(router::CurveKeys keys);
// Makes `s` a CURVE client of `n` with the operator's keys, if the node has a key.
void SecureAsOperator(zmq::socket_t& s, const router::NodeInfo& n);
// One request to a node's mesh ROUTER from a throwaway DEALER; the answer of type `want`.
Result<codec::Envelope> AskNode(const router::NodeInfo& n, const std::string& tag,
                                const codec::Envelope& req, codec::MeshType want, int timeout_ms);

}  // namespace meshchat::nodes::detail
