#include "nodes/group/group_service.h"

int main(int argc, char** argv) {
  using namespace meshchat;
  return nodes::RunNode<nodes::GroupService>(argc, argv, router::Role::kGroup);
}
