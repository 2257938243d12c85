#include "nodes/runtime/node_runner.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <map>

#include "base/cluster_secret.h"
#include "codec/client_messages.h"
#include "nodes/runtime/last_error_sink.h"
#include "nodes/runtime/node_instance.h"

namespace meshchat::nodes {
bool IsOperatorRequest(codec::MeshType t) {
  using codec::MeshType;
  return t == MeshType::kDrain || t == MeshType::kMapUpdate || t == MeshType::kRevoke ||
         t == MeshType::kDescribeReq;
}

std::string ReadSecretFile(const std::string& path) {
  auto s = ReadSecret(path);  // start-up: an unusable secret is fatal
  if (!s.ok()) throw std::runtime_error(s.status().message() + " (at least 16 characters)");
  return *s;
}

int RunNodesMain(int argc, char** argv, std::optional<router::Role> role, const RoleFactory& make) {
  const bool host = !role;  // meshchat-node: several nodes of any role in one process
  CLI::App app{host ? std::string("meshchat node host: several nodes in one process")
                    : std::string("meshchat ") + router::RoleName(*role) + " node"};
  NodeArgs common;
  std::vector<std::string> ids, node_opts;
  std::string key_dir, log_level = "info";
  app.add_option("--map", common.map_path, "cluster map file")->required();
  auto* id_opt = app.add_option("--id", ids,
                                host ? "a node of the map to run here (repeatable)"
                                     : "this node's id in the map")
                     ->required();
  if (!host) id_opt->expected(1);
  app.add_option("--data", common.data_root, "directory for node data (a subdirectory per node)");
  app.add_option("--secret-file", common.secret_file, "file holding the cluster token secret");
  app.add_option(
      "--key-file", common.key_file,
      "this node's CURVE secret key (64 lowercase hex digits, mode 0600): needed when the map "
      "lists curve keys");
  if (host) {
    app.add_option("--key-dir", key_dir,
                   "directory of the nodes' CURVE secret keys, ID.key each (instead of "
                   "--key-file)");
    app.add_option("--node-opt", node_opts, "ID:KEY=VALUE, a role setting for one node only");
  }
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error");
  app.add_option("--opt", common.opts, "role setting KEY=VALUE for every node (repeatable)");
  CLI11_PARSE(app, argc, argv);

  std::string names;
  for (const auto& id : ids) names += (names.empty() ? "" : "+") + id;
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  console->set_pattern(std::string("%Y-%m-%dT%H:%M:%S.%e %^%l%$ ") + names + " %v");
  auto last_error = std::make_shared<LastErrorSink>(codec::kMaxErrorTextBytes);
  auto logger = std::make_shared<spdlog::logger>(
      "node", spdlog::sinks_init_list{console, spdlog::sink_ptr(last_error)});
  logger->set_level(spdlog::level::from_str(log_level));
  spdlog::set_default_logger(logger);

  try {
    if (host && !common.key_file.empty() && ids.size() > 1)
      throw std::runtime_error("--key-file is one node's key: give --key-dir for several");
    // Signals arrive as readable events on the loop, never as asynchronous handlers.
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    const int sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

    SystemClock clock;
    router::Reactor reactor(clock);
    router::LocalLinks local;
    // Every mesh is made (and registered in `local`) before the first one connects, so
    // co-hosted nodes reach each other in memory from the start.
    std::map<std::string, std::vector<std::string>> own_opts;  // --node-opt, by node
    for (const auto& o : node_opts) {
      const auto colon = o.find(':');
      if (colon == std::string::npos || colon == 0)
        throw std::runtime_error("--node-opt '" + o + "': expected ID:KEY=VALUE");
      const std::string id = o.substr(0, colon);
      if (std::find(ids.begin(), ids.end(), id) == ids.end())
        throw std::runtime_error("--node-opt '" + o + "': no node " + id + " runs here");
      own_opts[id].push_back(o.substr(colon + 1));
    }
    std::vector<std::unique_ptr<NodeInstance>> nodes;
    for (const auto& id : ids) {
      NodeArgs a = common;
      a.id = id;
      if (!key_dir.empty()) a.key_file = key_dir + "/" + id + ".key";
      for (const auto& kv : own_opts[id]) a.opts.push_back(kv);
      nodes.push_back(std::make_unique<NodeInstance>(a, role, make, reactor, clock,
                                                     host ? &local : nullptr, last_error));
    }

    bool shutting_down = false;
    auto st = reactor.AddFd(sigfd, EPOLLIN, [&](uint32_t) {
      signalfd_siginfo si;
      while (read(sigfd, &si, sizeof si) == sizeof si) {
      }
      if (shutting_down) {
        reactor.Stop();  // second signal: stop now
        return;
      }
      shutting_down = true;
      spdlog::info("stopping");
      for (auto& n : nodes) n->BeginShutdown();
      // Let the loop flush goodbyes, then stop.
      reactor.After(300, [&] { reactor.Stop(); });
    });
    if (!st.ok()) throw std::runtime_error(st.ToString());
    for (auto& n : nodes) n->Start();
    reactor.Run();
    spdlog::info("stopped");
    return 0;
  } catch (const std::exception& e) {
    spdlog::error("fatal: {}", e.what());
    return 1;
  }
}

}  // namespace meshchat::nodes
