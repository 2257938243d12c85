// CurveZMQ between nodes: each node (and each operator running meshctl) has a keypair; the
// cluster map lists the public keys. Every socket that binds (the mesh ROUTER, presence's PUB)
// is a CURVE server, and a ZAP handler on the node's own loop admits only listed keys, naming
// the peer by its key (a node's ZAP user id is its node id, an operator's "operator:NAME"),
// so a mesh envelope can be checked to come from the node it claims.
//
// Without a ZAP handler libzmq would admit any client that knows the server's public key; a
// plaintext peer fails the handshake (mechanism mismatch), which the monitor logs.
#pragma once

#include <zmq.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "router/cluster_map.h"
#include "router/reactor.h"

namespace meshchat::router {

struct CurveKeys {
  std::string public_key;  // 32 bytes
  std::string secret_key;  // 32 bytes
  bool empty() const { return secret_key.empty(); }
};

// A fresh keypair (libsodium through libzmq).
CurveKeys GenerateCurveKeys();
// The secret key file: 64 lowercase hex digits. Refused if others can read it (mode & 077) or it is
// malformed.
Result<CurveKeys> LoadCurveKeys(const std::string& path);
// Writes the secret key file with mode 0600 (replacing it).
Status SaveCurveKeys(const std::string& path, const CurveKeys& keys);

// Socket roles. Call before bind/connect.
void MakeCurveServer(zmq::socket_t& s, const CurveKeys& own);
void MakeCurveClient(zmq::socket_t& s, const CurveKeys& own, const std::string& server_public);

// Who the map admits: public key -> ZAP user id.
std::map<std::string, std::string> AdmittedKeys(const ClusterMap& map);

// The ZAP decision for one request (RFC 27), without sockets: `frames` as received; the
// reply frames. Unknown keys, other mechanisms and malformed requests are denied (400).
struct ZapDecision {
  std::vector<std::string> reply;
  bool admitted = false;
  std::string user_id;  // admitted: who
  std::string why;      // denied: for the log
};
ZapDecision DecideZap(const std::vector<std::string>& frames,
                      const std::map<std::string, std::string>& admitted);

// The ZAP endpoint of a context (inproc://zeromq.zap.01), answered on the reactor's thread,
// plus a monitor of a server socket that logs failed handshakes (plaintext peers). Denials
// are logged at most once a second per reason, and counted.
class ZapHandler {
 public:
  ZapHandler(zmq::context_t& ctx, Reactor& reactor);
  // Binds the endpoint. Start-up: throws on failure. Must run before any CURVE server binds.
  void Start(std::map<std::string, std::string> admitted);
  // A newer map: its keys are admitted from now on (connections already made go on).
  void SetAdmitted(std::map<std::string, std::string> admitted) { admitted_ = std::move(admitted); }
  // Logs handshake failures seen on `server` (a CURVE server socket of this context).
  void Watch(zmq::socket_t& server, const std::string& name);
  uint64_t denied() const { return denied_; }
  uint64_t handshake_failures() const { return handshake_failures_; }

 private:
  bool AnswerOne();
  bool MonitorOne(size_t i);
  void LogLimited(const std::string& kind, const std::string& what);

  zmq::context_t& ctx_;
  Reactor& reactor_;
  zmq::socket_t rep_;
  std::vector<std::pair<std::unique_ptr<zmq::socket_t>, std::string>> monitors_;
  std::map<std::string, std::string> admitted_;
  uint64_t denied_ = 0;
  uint64_t handshake_failures_ = 0;
  struct Limit {
    int64_t last_ms = 0;
    uint64_t unlogged = 0;
  };
  std::map<std::string, Limit> limits_;  // per kind of refusal
};

}  // namespace meshchat::router
