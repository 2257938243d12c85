// Integration-test harness: a real mesh of node processes started by meshctl in a private
// directory on free loopback ports, and stopped when the test ends.
#pragma once

#include <string>
#include <vector>

#include "client/chat_client.h"
#include "router/cluster_map.h"
#include "tests/temp_dir.h"

namespace meshchat::test {

// Runs a command line through the shell, capturing stdout and stderr together.
int RunCommand(const std::string& cmd, std::string* output = nullptr);
std::string Bin(const std::string& name);  // path of a built executable

class TestMesh {
 public:
  // `extra` is appended to `meshctl up` (e.g. "--opt large_group=3"). `split`: each node in a
  // process of its own (`up --split`), so a test can fault one node; else meshctl's default,
  // every node in one process.
  TestMesh(int gateways = 2, int sessions = 2, const std::string& extra = "", bool split = true);
  ~TestMesh();
  TestMesh(const TestMesh&) = delete;
  TestMesh& operator=(const TestMesh&) = delete;

  // `meshctl --var VAR ARGS`
  int Meshctl(const std::string& args, std::string* output = nullptr) const;
  std::string Token(const std::string& user, const std::string& device = "d1",
                    int64_t ttl_s = 3600) const;
  client::Endpoint Gateway(size_t i) const;  // i-th gateway's client endpoint (TLS or not)
  std::string GatewayAddr(size_t i) const;   // "HOST:PORT"
  // Two users whose session shards differ.
  std::pair<std::string, std::string> CrossShardUsers() const;
  // Connects and authenticates; REQUIREs success.
  client::ChatClient Connect(const std::string& user, size_t gateway,
                             const std::string& device = "d1") const;
  const std::string& var() const { return var_; }
  // GET /metrics of `node` (the Prometheus text); REQUIREs an answer.
  std::string Scrape(const std::string& node) const;
  const router::ClusterMap& map() const { return map_; }

 private:
  TempDir dir_;
  std::string var_;
  std::string secret_;
  router::ClusterMap map_;
  bool tls_ = false;  // started with --tls: clients check the mesh's development CA
};

// The value of one series in a Prometheus page (a Scrape), 0 if absent.
double Metric(const std::string& page, const std::string& series);

// Waits for the next event of type T, skipping others; REQUIREs it arrives in time.
template <typename T>
T Expect(client::ChatClient& c, int timeout_ms = 5000);

}  // namespace meshchat::test

#include "tests/integration/test_mesh_inl.h"
