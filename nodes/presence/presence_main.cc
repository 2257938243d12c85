#include "nodes/presence/presence_service.h"

int main(int argc, char** argv) {
  using namespace meshchat;
  return nodes::RunNode<nodes::PresenceService>(argc, argv, router::Role::kPresence);
}
