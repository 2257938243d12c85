// Session role: SessionCore on an LMDB store with pipelined group commit (DurableService).
#pragma once

#include "nodes/session/session_core.h"
#include "nodes/shard/durable_service.h"
#include "router/hash_ring.h"

namespace meshchat::nodes {

// The rings are built before the service (base-from-member): the core's routing refers to them.
struct SessionRings {
  explicit SessionRings(const router::ClusterMap& map)
      : sessions(map.IdsWithRole(router::Role::kSession)),
        groups(map.IdsWithRole(router::Role::kGroup)),
        presence(map.IdsWithRole(router::Role::kPresence)),
        media(map.IdsWithRole(router::Role::kMedia)) {}
  router::HashRing sessions;
  router::HashRing groups;
  router::HashRing presence;
  router::HashRing media;
};

class SessionService final : private SessionRings, public DurableService<SessionCore> {
 public:
  explicit SessionService(NodeContext& ctx);
  std::string Describe(const std::string& key) override { return core().DescribeUser(key); }
  void RebuildRings() override { static_cast<SessionRings&>(*this) = SessionRings(context().map); }
  void WriteMetrics(MetricsText& m) const override {
    DurableService<SessionCore>::WriteMetrics(m);
    const auto& s = core().inbox_stats();
    m.Counter("meshchat_session_pushes_total",
              "pushes and receipts written to devices, resends included", s.pushed);
    m.Counter("meshchat_session_push_retries_total",
              "entries pushed again because a device did not acknowledge in time", s.resent);
    m.Counter("meshchat_session_acks_total", "acks received from devices", s.acks);
    m.Counter("meshchat_session_conn_resyncs_total",
              "gateway digests that differed from the connections held (answered with a list)",
              core().conn_resyncs());
    core().errors().Write(m, "meshchat_errors_total", "errors answered to clients, by code",
                          ErrorCodeLabel);
  }
};

}  // namespace meshchat::nodes
