// Development certificates for client TLS (`meshctl tls-certs`, `meshctl up --tls`): a CA of
// its own and a gateway certificate it signs, all ECDSA P-256. For test meshes and trying
// TLS out; production gateways use certificates from the operator's own CA.
//
// Files in `dir` (created 0700): ca.pem, ca.key (kept: made once, reused, so clients that
// trust it go on trusting it), gateway.pem, gateway.key (made anew each time). Keys are 0600.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"

namespace meshchat::nodes {

struct DevCertOptions {
  // Names the gateway certificate is valid for: IP addresses and DNS names.
  std::vector<std::string> names = {"127.0.0.1", "localhost"};
  int gateway_days = 90;
  int ca_days = 3650;
};

Status MakeDevCertificates(const std::string& dir, const DevCertOptions& opts);

}  // namespace meshchat::nodes
