#include "nodes/session/session_service.h"

int main(int argc, char** argv) {
  using namespace meshchat;
  return nodes::RunNode<nodes::SessionService>(argc, argv, router::Role::kSession);
}
