// One node of the cluster map on a reactor: its map, mesh links, ZAP handler, role service,
// load monitor, status answers and metrics. A role binary runs one; `meshchat-node` runs
// several of a machine's nodes in one process on one reactor thread, linked in memory
// (router/local_links.h) instead of over loopback TCP.
#pragma once

#include <zmq.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "nodes/runtime/last_error_sink.h"
#include "nodes/runtime/node_runner.h"

namespace meshchat::nodes {

struct NodeArgs {
  std::string map_path;
  std::string id;
  std::string data_root = "var/data";
  std::string secret_file;        // "" = no cluster secret
  std::string key_file;           // CURVE secret key ("" when the map lists no keys)
  std::vector<std::string> opts;  // KEY=VALUE role settings
};

class NodeInstance {
 public:
  // Start-up: throws on a bad map, id, key, secret or option. With `role`, the map must list
  // the node with that role. `local`: the co-hosted nodes' registry (nullptr: none).
  NodeInstance(const NodeArgs& args, std::optional<router::Role> role, const RoleFactory& make,
               router::Reactor& reactor, const Clock& clock, router::LocalLinks* local,
               std::shared_ptr<LastErrorSink> last_error);
  ~NodeInstance();
  NodeInstance(const NodeInstance&) = delete;
  NodeInstance& operator=(const NodeInstance&) = delete;

  // Binds, connects, starts the service, the load monitor and the metrics page.
  void Start();
  void BeginShutdown() { service_->BeginShutdown(); }
  const std::string& id() const { return self_.id; }
  router::Role role() const { return self_.role; }

 private:
  void OnEnvelope(const std::string& from, codec::Envelope&& env);
  std::string StatusBody();
  void ReplyStatus(const std::string& to, uint64_t req);
  void SampleLoad();
  void RenderMetrics();

  router::Reactor& reactor_;
  const Clock& clock_;
  std::shared_ptr<LastErrorSink> last_error_;
  router::ClusterMap map_;  // replaced in place by a newer map (everything holds a reference)
  router::NodeInfo self_;   // a copy: the map object is replaced when a newer map arrives
  std::string data_dir_;
  zmq::context_t zctx_{1};  // one per node: a ZAP handler answers for its whole context
  std::unique_ptr<router::ZapHandler> zap_;
  std::unique_ptr<router::Mesh> mesh_;
  std::unique_ptr<NodeContext> ctx_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<LoadMonitor> load_;
  std::unique_ptr<MetricsServer> metrics_;
  int64_t started_ms_ = 0;
  uint64_t msgs_per_s_ = 0, store_bytes_ = 0, last_total_ = 0;
  double worst_lag_ms_ = 0;
  int64_t lag_due_ms_ = 0, sample_wall_ns_ = 0, sample_idle_ns_ = 0;
  int64_t last_refusal_log_ms_ = 0;
};

}  // namespace meshchat::nodes
