// meshchat-node: several nodes of one machine, of any role, in one process on one reactor
// thread, linked in memory (router/local_links.h): the embedded default's shape, where a
// chat and its receipt otherwise cross a dozen process boundaries. Nodes on other machines
// are still reached over ZeroMQ; each node keeps its own mesh endpoint, keys and data.
#include "nodes/gateway/gateway_service.h"
#include "nodes/group/group_service.h"
#include "nodes/media/media_service.h"
#include "nodes/presence/presence_service.h"
#include "nodes/session/session_service.h"

int main(int argc, char** argv) {
  using namespace meshchat;
  using router::Role;
  return nodes::RunNodesMain(
      argc, argv, std::nullopt,
      [](Role role, nodes::NodeContext& ctx) -> std::unique_ptr<nodes::Service> {
        switch (role) {
          case Role::kGateway: return std::make_unique<nodes::GatewayService>(ctx);
          case Role::kSession: return std::make_unique<nodes::SessionService>(ctx);
          case Role::kGroup: return std::make_unique<nodes::GroupService>(ctx);
          case Role::kPresence: return std::make_unique<nodes::PresenceService>(ctx);
          case Role::kMedia: return std::make_unique<nodes::MediaService>(ctx);
        }
        throw std::runtime_error("no service for this role");
      });
}
