// Nodes that run in one process, on one reactor (one thread), reach each other through this
// registry instead of ZeroMQ: an envelope to a co-hosted node is moved into that node's
// queue and handled at the end of the same loop turn. No encoding, no I/O thread, no
// loopback TCP, no wake-up of another process: on a machine where every syscall and context
// switch is expensive, these were most of a chat's cost (bench/README.md, "Where the time
// goes"). Everything else about a link is kept: per-link order, link sequence, heartbeats
// (so peer up/down and restarts are seen the same way), the sender's incarnation and epoch.
// Nodes on other machines (or in other processes) are still reached over ZeroMQ.
#pragma once

#include <string>
#include <unordered_map>

namespace meshchat::router {

class Mesh;

class LocalLinks {
 public:
  void Add(const std::string& id, Mesh* mesh) { meshes_[id] = mesh; }
  void Remove(const std::string& id) { meshes_.erase(id); }
  Mesh* Find(const std::string& id) const {
    auto it = meshes_.find(id);
    return it == meshes_.end() ? nullptr : it->second;
  }
  size_t size() const { return meshes_.size(); }
  const std::unordered_map<std::string, Mesh*>& all() const { return meshes_; }

 private:
  std::unordered_map<std::string, Mesh*> meshes_;
};

}  // namespace meshchat::router
