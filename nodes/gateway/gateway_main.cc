#include "nodes/gateway/gateway_service.h"

int main(int argc, char** argv) {
  using namespace meshchat;
  return nodes::RunNode<nodes::GatewayService>(argc, argv, router::Role::kGateway);
}
