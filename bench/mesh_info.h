// How the load generator finds a running mesh: its meshctl state directory.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace meshchat::bench {

struct MeshInfo {
  std::string secret;                                 // token secret, to mint tokens
  std::vector<std::pair<std::string, int>> gateways;  // client endpoints
  bool tls = false;     // the gateways speak TLS (client-endpoints lines tls://HOST:PORT)
  std::string ca_file;  // then: the mesh's development CA (VAR/tls/ca.pem)
};

// Reads VAR/cluster.secret and VAR/client-endpoints; false (with a message) if missing.
bool LoadMesh(const std::string& var, MeshInfo& m);

}  // namespace meshchat::bench
