// How the load generator finds a running mesh: its meshctl state directory.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace meshchat::bench {

struct MeshInfo {
  std::string secret;                                 // token secret, to mint tokens
  std::vector<std::pair<std::string, int>> gateways;  // client endpoints
};

// Reads VAR/cluster.secret and VAR/client-endpoints; false (with a message) if missing.
bool LoadMesh(const std::string& var, MeshInfo& m);

}  // namespace meshchat::bench
