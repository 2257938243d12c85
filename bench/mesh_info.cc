#include "bench/mesh_info.h"

#include <fstream>
#include <iostream>

namespace meshchat::bench {

bool LoadMesh(const std::string& var, MeshInfo& m) {
  std::ifstream sec(var + "/cluster.secret");
  if (!(sec >> m.secret)) {
    std::cerr << "loadgen: no cluster secret in " << var << " (is the mesh up?)\n";
    return false;
  }
  std::ifstream eps(var + "/client-endpoints");
  for (std::string line; std::getline(eps, line);) {
    if (line.rfind("tls://", 0) == 0) m.tls = true;
    if (const size_t scheme = line.find("://"); scheme != std::string::npos)
      line = line.substr(scheme + 3);
    const size_t colon = line.rfind(':');
    if (colon != std::string::npos)
      m.gateways.emplace_back(line.substr(0, colon), std::stoi(line.substr(colon + 1)));
  }
  if (m.tls) m.ca_file = var + "/tls/ca.pem";
  if (m.gateways.empty()) std::cerr << "loadgen: no gateways in " << var << "/client-endpoints\n";
  return !m.gateways.empty();
}

}  // namespace meshchat::bench
