// Which nodes share a process (VAR/processes), and starting a node's process: its role
// binary, or meshchat-node with every node of its line (docs/ARCHITECTURE.md, "Several nodes
// in one process").
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ops/local_mesh.h"
#include "ops/local_mesh_util.h"

namespace fs = std::filesystem;

namespace meshchat::nodes {

std::vector<std::string> LocalMesh::ProcessOf(const std::string& id) const {
  std::ifstream in(var_ + "/processes");
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::vector<std::string> ids;
    for (std::string w; words >> w;) ids.push_back(w);
    if (std::find(ids.begin(), ids.end(), id) != ids.end()) return ids;
  }
  return {id};
}

Result<pid_t> LocalMesh::Spawn(const router::NodeInfo& n, const router::ClusterMap& map) const {
  const std::vector<std::string> ids = ProcessOf(n.id);
  const bool host = ids.size() > 1;
  for (const auto& id : ids)
    if (!map.Find(id))
      return Status(Code::kNotFound, "node " + id + " of " + var_ + "/processes is not in the map");
  const std::string exe =
      SelfDir() + "/meshchat-" + (host ? std::string("node") : router::RoleName(n.role));
  // Co-hosted nodes write one log, the first node's; the others' log names link to it.
  const std::string logf = var_ + "/log/" + ids.front() + ".log";
  for (size_t i = 1; i < ids.size(); ++i) {
    const std::string link = var_ + "/log/" + ids[i] + ".log";
    std::error_code ec;
    fs::remove(link, ec);
    fs::create_symlink(ids.front() + ".log", link, ec);
  }
  // A launch prefix for this node, if var/wrap/ID names one (one word a line): how chaos
  // scripts run a node under faketime or inside a network namespace.
  std::vector<std::string> args;
  {
    std::ifstream wrap(var_ + "/wrap/" + ids.front());
    for (std::string word; std::getline(wrap, word);)
      if (!word.empty()) args.push_back(word);
  }
  for (const std::string& a : {exe, std::string("--map"), map_path(), std::string("--data"),
                               var_ + "/data", std::string("--secret-file"), secret_path()})
    args.push_back(a);
  for (const auto& id : ids) {
    args.push_back("--id");
    args.push_back(id);
  }
  if (!n.curve.empty()) {
    args.push_back(host ? "--key-dir" : "--key-file");
    args.push_back(host ? var_ + "/keys" : key_path(n.id));
  }
  {
    std::ifstream opts(var_ + "/node.opts");
    for (std::string line; std::getline(opts, line);)
      if (!line.empty()) {
        args.push_back("--opt");
        args.push_back(line);
      }
  }
  for (const auto& id : ids) {  // settings of one node only
    std::ifstream opts(var_ + "/opts/" + id + ".opts");
    for (std::string line; std::getline(opts, line);)
      if (!line.empty()) {
        args.push_back(host ? "--node-opt" : "--opt");
        args.push_back(host ? id + ":" + line : line);
      }
  }
  pid_t pid = fork();
  if (pid < 0) return Status(Code::kIo, "fork failed");
  if (pid == 0) {
    setsid();  // survives meshctl and the terminal
    int fd = open(logf.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int nul = open("/dev/null", O_RDONLY);
    dup2(nul, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  for (const auto& id : ids) std::ofstream(var_ + "/run/" + id + ".pid") << pid << "\n";
  return pid;
}

}  // namespace meshchat::nodes
