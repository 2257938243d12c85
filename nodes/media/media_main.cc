#include "nodes/media/media_service.h"

int main(int argc, char** argv) {
  using namespace meshchat;
  return nodes::RunNode<nodes::MediaService>(argc, argv, router::Role::kMedia);
}
