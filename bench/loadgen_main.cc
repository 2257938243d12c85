// meshchat-loadgen: the load generator. See bench/README.md.
//   meshchat-loadgen w1 [--system meshchat|mosquitto] [--pairs N] [--rates R1,R2..] ...
//   meshchat-loadgen w3 [--conns N] [--procs P]
//   meshchat-loadgen w4 [--clients N] [--pending K]
//   meshchat-loadgen w5 [--files N] [--bytes B]
//   meshchat-loadgen abuse [--seconds S] [--never-read N] [--feeders F] [--garbage G]
//   meshchat-loadgen unauth [--conns N] [--frame BYTES] [--fill BYTES] [--hold S]
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <sstream>

#include "bench/abuse.h"
#include "bench/w1.h"
#include "bench/w2.h"
#include "bench/w3_w4.h"
#include "bench/w5_media.h"

using namespace meshchat::bench;

int main(int argc, char** argv) {
  CLI::App app{"meshchat load generator"};
  app.require_subcommand(1);
  const char* home = std::getenv("MESHCHAT_HOME");
  std::string var = (home && *home ? std::string(home) : std::string(".")) + "/var";
  app.add_option("--var", var, "meshctl state directory of the mesh under test");

  W1Options w1;
  std::string system = "meshchat", rates, mqtt_host = "127.0.0.1";
  int mqtt_port = 1883;
  std::vector<long> mqtt_pids;
  auto* c1 = app.add_subcommand("w1", "one-to-one chat with receipts, open-loop rate ramp");
  c1->add_option("--system", system, "meshchat or mosquitto")
      ->check(CLI::IsMember({"meshchat", "mosquitto"}));
  c1->add_option("--pairs", w1.pairs, "sender/receiver pairs");
  c1->add_option("--rates", rates, "comma-separated offered rates (messages/s), one per step");
  c1->add_option("--step", w1.step_s, "seconds per step");
  c1->add_option("--drain", w1.drain_s, "seconds to wait for stragglers after a step");
  c1->add_option("--body", w1.body_bytes, "message body bytes");
  c1->add_option("--max-p99-ms", w1.max_p99_ms, "p99 a sustained step must stay under");
  c1->add_option("--heavy", w1.heavy_pairs, "the first N pairs send --heavy-factor times as often");
  c1->add_option("--heavy-factor", w1.heavy_factor, "how much more often the heavy pairs send")
      ->check(CLI::Range(1, 1000));
  c1->add_flag("--chatty", w1.chatty,
               "typing before each message, a read receipt per delivery, refused sends resent "
               "after retry_after (meshchat)");
  c1->add_option("--mqtt-host", mqtt_host, "broker address (mosquitto)");
  c1->add_option("--mqtt-port", mqtt_port, "broker port (mosquitto)");
  c1->add_option("--server-pid", mqtt_pids, "broker pid(s), for CPU and RSS (mosquitto)");

  W2Options w2;
  std::string system2 = "meshchat", rates2;
  auto* c2 = app.add_subcommand("w2", "group fan-out, open-loop rate ramp");
  c2->add_option("--system", system2, "meshchat or mosquitto")
      ->check(CLI::IsMember({"meshchat", "mosquitto"}));
  c2->add_option("--groups", w2.groups, "groups");
  c2->add_option("--size", w2.size, "members per group")->check(CLI::Range(2, 1024));
  c2->add_option("--rates", rates2, "comma-separated group messages/s, one per step");
  c2->add_option("--step", w2.step_s, "seconds per step");
  c2->add_option("--drain", w2.drain_s, "seconds to wait for stragglers after a step");
  c2->add_option("--max-p99-ms", w2.max_p99_ms, "p99 a sustained step must stay under");
  c2->add_option("--mqtt-host", mqtt_host, "broker address (mosquitto)");
  c2->add_option("--mqtt-port", mqtt_port, "broker port (mosquitto)");
  c2->add_option("--server-pid", mqtt_pids, "broker pid(s) (mosquitto)");

  size_t conns = 1000;
  int procs = 1;
  std::string system3 = "meshchat";
  long broker_pid = 0;
  auto* c3 = app.add_subcommand("w3", "idle authenticated connections: memory per connection");
  c3->add_option("--system", system3, "meshchat or mosquitto")
      ->check(CLI::IsMember({"meshchat", "mosquitto"}));
  c3->add_option("--mqtt-host", mqtt_host, "broker address (mosquitto)");
  c3->add_option("--mqtt-port", mqtt_port, "broker port (mosquitto)");
  c3->add_option("--server-pid", broker_pid, "broker pid (mosquitto)");
  c3->add_option("--conns", conns, "connections");
  c3->add_option("--procs", procs, "processes (each can hold at most ~19,000)")
      ->check(CLI::Range(1, 64));

  size_t clients = 1000, pending = 5;
  auto* c4 = app.add_subcommand("w4", "reconnect storm: time to reconnect and drain");
  c4->add_option("--clients", clients, "clients");
  c4->add_option("--pending", pending, "messages waiting for each client");

  W5Options w5;
  auto* c5 = app.add_subcommand("w5", "media: upload, share, fetch across gateways");
  c5->add_option("--files", w5.files, "files uploaded one after another");
  c5->add_option("--bytes", w5.bytes, "size of each file")->check(CLI::Range(1, 64 << 20));

  AbuseOptions ab;
  auto* c6 = app.add_subcommand("abuse", "never-reading clients and garbage connections at gw1");
  c6->add_option("--seconds", ab.seconds, "how long");
  c6->add_option("--never-read", ab.never_read, "clients that never read");
  c6->add_option("--feeders", ab.feeders_per_sleeper, "feeders per never-reading client");
  c6->add_option("--garbage-rate", ab.garbage_rate, "garbage connections per second")
      ->check(CLI::PositiveNumber);

  UnauthOptions un;
  auto* c7 = app.add_subcommand("unauth", "connections that never finish a hello, at gw1");
  c7->add_option("--conns", un.conns, "connections")->check(CLI::Range(1, 19000));
  c7->add_option("--frame", un.frame, "declared frame length")->check(CLI::Range(1, 1 << 30));
  c7->add_option("--fill", un.fill, "bytes of it each sends")->check(CLI::Range(0, 1 << 30));
  c7->add_option("--hold", un.hold_seconds, "seconds kept open after sending");

  CLI11_PARSE(app, argc, argv);
  if (c7->parsed()) return RunUnauth(var, un);
  if (c5->parsed()) return RunW5(var, w5);
  if (c6->parsed()) return RunAbuse(var, ab);
  if (c1->parsed()) {
    if (!rates.empty()) {
      w1.rates.clear();
      std::stringstream ss(rates);
      for (std::string r; std::getline(ss, r, ',');) w1.rates.push_back(std::stod(r));
    }
    auto driver = system == "meshchat"
                      ? MakeMeshchatDriver(var, w1.body_bytes, w1.chatty, w1.heavy_pairs)
                      : MakeMqttDriver(mqtt_host, mqtt_port, w1.body_bytes, mqtt_pids);
    if (!driver) {
      std::cerr << "loadgen: " << system << " driver not built (libmosquitto-dev missing)\n";
      return 2;
    }
    return RunW1(*driver, w1);
  }
  if (c2->parsed()) {
    if (!rates2.empty()) {
      w2.rates.clear();
      std::stringstream ss(rates2);
      for (std::string r; std::getline(ss, r, ',');) w2.rates.push_back(std::stod(r));
    }
    auto driver = system2 == "meshchat"
                      ? MakeMeshchatGroupDriver(var, w2.body_bytes)
                      : MakeMqttGroupDriver(mqtt_host, mqtt_port, w2.body_bytes, mqtt_pids);
    if (!driver) {
      std::cerr << "loadgen: " << system2 << " driver not built (libmosquitto-dev missing)\n";
      return 2;
    }
    return RunW2(*driver, w2);
  }
  if (c3->parsed())
    return system3 == "meshchat" ? RunW3(var, conns, procs)
                                 : RunW3Mqtt(mqtt_host, mqtt_port, conns, broker_pid);
  return RunW4(var, clients, pending);
}
