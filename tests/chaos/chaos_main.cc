// meshchat-chaos: the workload and the history checker of the chaos scripts (scripts/chaos/).
//   meshchat-chaos workload --gateways H:P[,H:P...] --secret-file F --log FILE [...]
//   meshchat-chaos check --log FILE [--phases FILE]     exit 0 = PASS, 1 = FAIL
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "client/chat_client.h"
#include "tests/chaos/history.h"
#include "tests/chaos/workload.h"

using namespace meshchat;

namespace {

int Check(const std::string& log_path, const std::string& phases_path) {
  std::ifstream in(log_path);
  if (!in) {
    std::cerr << "meshchat-chaos check: cannot read " << log_path << "\n";
    return 2;
  }
  std::vector<chaos::Event> events;
  std::string line, why;
  size_t lineno = 0, bad = 0;
  while (std::getline(in, line)) {
    ++lineno;
    chaos::Event e;
    if (!chaos::ParseEvent(line, e, why)) {
      // A line cut by a killed workload is the only expected kind; more means a broken log.
      if (++bad <= 3) std::cerr << log_path << ":" << lineno << ": " << why << "\n";
      continue;
    }
    events.push_back(std::move(e));
  }
  chaos::Phases phases;
  if (!phases_path.empty()) {
    std::ifstream p(phases_path);
    std::stringstream ss;
    ss << p.rdbuf();
    if (!chaos::ParsePhases(ss.str(), phases, why)) {
      std::cerr << phases_path << ": " << why << "\n";
      return 2;
    }
  }
  const chaos::Report r = chaos::Check(events, phases);
  std::cout << chaos::Describe(r);
  if (bad > 1) {
    std::cout << "verdict: FAIL (" << bad << " malformed history lines)\n";
    return 1;
  }
  return r.ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"meshchat chaos workload and history checker"};
  app.require_subcommand(1);
  chaos::WorkloadOptions o;
  std::string gateways, secret_file, log_path, phases_path;
  auto* w = app.add_subcommand("workload", "chat through the mesh and log every event");
  w->add_option("--gateways", gateways, "client endpoints HOST:PORT, comma-separated")->required();
  w->add_option("--secret-file", secret_file, "cluster secret (tokens are signed with it)")
      ->required();
  w->add_option("--log", log_path, "history file to write")->required();
  w->add_option("--users", o.users, "clients")->check(CLI::Range(3, 500));
  w->add_option("--seconds", o.write_seconds, "writing phase")->check(CLI::Range(1, 3600));
  w->add_option("--drain-seconds", o.drain_seconds, "most time to finish what is in flight");
  w->add_option("--pace-ms", o.pace_ms, "per user: pause after each acknowledgement");
  w->add_option("--prefix", o.prefix, "user id prefix");
  w->add_option("--offline", o.offline, "users written to who connect only at the end");
  w->add_option("--inflight", o.inflight, "per user: messages written, not yet acknowledged")
      ->check(CLI::Range(1, 64));
  w->add_option("--stop-file", o.stop_file, "end the writing phase when this file appears");
  auto* c = app.add_subcommand("check", "judge a history: loss, duplicates, order, phantoms");
  c->add_option("--log", log_path, "history file")->required();
  c->add_option("--phases", phases_path, "phases file (fault T / heal T, wall ms)");
  CLI11_PARSE(app, argc, argv);

  if (c->parsed()) return Check(log_path, phases_path);
  o.group = o.prefix + "grp";  // each population its own group
  std::stringstream list(gateways);
  for (std::string ep; std::getline(list, ep, ',');) {
    auto e = client::ParseEndpoint(ep);
    if (!e.ok()) {
      std::cerr << "meshchat-chaos: bad gateway endpoint '" << ep << "'\n";
      return 2;
    }
    o.gateways.push_back(*e);
  }
  std::ifstream sf(secret_file);
  std::getline(sf, o.secret);
  while (!o.secret.empty() && std::isspace(static_cast<unsigned char>(o.secret.back())))
    o.secret.pop_back();
  if (o.secret.empty()) {
    std::cerr << "meshchat-chaos: no secret in " << secret_file << "\n";
    return 2;
  }
  std::FILE* log = std::fopen(log_path.c_str(), "w");
  if (!log) {
    std::cerr << "meshchat-chaos: cannot write " << log_path << "\n";
    return 2;
  }
  setvbuf(log, nullptr, _IOLBF, 0);  // whole lines: a killed workload leaves a readable log
  const int rc = chaos::RunWorkload(o, log);
  std::fclose(log);
  if (rc == 2) std::cerr << "meshchat-chaos: could not create the group: is the mesh up?\n";
  return rc;
}
