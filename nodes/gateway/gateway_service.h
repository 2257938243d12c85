// Gateway role: wires the ClientListener (sockets) and the mesh to GatewayCore (logic), and
// carries out the effects the core returns.
#pragma once

#include "net/client_listener.h"
#include "nodes/gateway/gateway_core.h"
#include "nodes/runtime/node_runner.h"

namespace meshchat::nodes {

class GatewayService final : public Service {
 public:
  explicit GatewayService(NodeContext& ctx);
  void Start() override;
  void BeginShutdown() override;
  void Drain() override;
  void OnEnvelope(const std::string& from, codec::Envelope&& env) override;
  void OnPeerUp(const std::string& node, bool restarted) override;
  void OnLinkGap(const std::string& node) override;
  void OnMapChanged(const router::ClusterMap& previous) override;
  uint64_t Connections() const override { return listener_.size(); }
  uint64_t QueueDepth() const override { return listener_.QueuedBytes(); }
  // The queue is bytes waiting for clients (each connection capped): levels at 64 MiB,
  // 256 MiB, 1 GiB; no hard cap (slow clients are cut off one by one instead).
  LoadConfig DefaultLoadConfig() const override {
    LoadConfig c;
    c.queue = {64.0 * (1 << 20), 256.0 * (1 << 20), 1024.0 * (1 << 20)};
    c.hard_queue = 0;
    return c;
  }
  void OnLoad(const LoadState& state) override {
    core_.SetLoad(state, fx_);
    Apply();
  }
  void WriteMetrics(MetricsText& m) const override;

 private:
  void Apply();
  bool ReceivePublished();
  void Revoke(const std::string& from, const codec::Envelope& env);
  // Client TLS from the options (or plain, if asked for) and its reload when the files change.
  // Start-up: throws on a missing or broken certificate.
  void StartTls();
  void Subscribe(const router::NodeInfo& presence);  // its PUB socket (CURVE when on)
  std::string RevocationsPath() const { return ctx_.data_dir + "/revoked"; }

  NodeContext& ctx_;
  router::HashRing sessions_;
  router::HashRing media_;
  GatewayCore core_;
  ClientListener listener_;
  zmq::socket_t sub_;  // presence changes of the users local clients watch
  Effects fx_;
  CodeCounter frames_out_;  // by frame type
  std::string tls_cert_, tls_key_;
  std::pair<int64_t, int64_t> tls_stamp_;  // modification times of both, to notice a renewal
};

}  // namespace meshchat::nodes
