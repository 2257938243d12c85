#include "tests/integration/test_mesh.h"

#include <httplib.h>

#include <sys/wait.h>

#include <catch2/catch.hpp>

#include <cstdio>
#include <ctime>
#include <fstream>

#include "codec/token.h"
#include "router/hash_ring.h"

namespace meshchat::test {

std::string Bin(const std::string& name) {
  return std::string(MESHCHAT_BIN_DIR) + "/" + name;
}

int RunCommand(const std::string& cmd, std::string* output) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  if (output) *output = out;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TestMesh::TestMesh(int gateways, int sessions, const std::string& extra, bool split)
    : var_(dir_.path() + "/var") {
  std::string out;
  const int rc = Meshctl("up --gateways " + std::to_string(gateways) + " --sessions " +
                             std::to_string(sessions) + (split ? " --split " : " ") + extra,
                         &out);
  INFO(out);
  REQUIRE(rc == 0);
  auto map = router::ClusterMap::Load(var_ + "/cluster.map");
  REQUIRE(map.ok());
  map_ = *map;
  std::ifstream in(var_ + "/cluster.secret");
  REQUIRE(in >> secret_);
  std::ifstream endpoints(var_ + "/client-endpoints");
  std::string first;
  REQUIRE(std::getline(endpoints, first));
  tls_ = first.rfind("tls://", 0) == 0;
}

TestMesh::~TestMesh() {
  Meshctl("down");
}

std::string TestMesh::Scrape(const std::string& node) const {
  const router::NodeInfo* n = map_.Find(node);
  REQUIRE(n);
  REQUIRE_FALSE(n->metrics.empty());
  std::string host;
  uint16_t port = 0;
  REQUIRE(router::SplitHostPort(n->metrics, host, port));
  httplib::Client c(host, port);
  c.set_connection_timeout(2);
  auto res = c.Get("/metrics");
  REQUIRE(res);
  CHECK(res->status == 200);
  return res->body;
}

double Metric(const std::string& page, const std::string& series) {
  const size_t at = page.find("\n" + series + " ");
  return at == std::string::npos ? 0 : std::stod(page.substr(at + series.size() + 2));
}

int TestMesh::Meshctl(const std::string& args, std::string* output) const {
  return RunCommand(Bin("meshctl") + " --var " + var_ + " " + args, output);
}

std::string TestMesh::Token(const std::string& user, const std::string& device,
                            int64_t ttl_s) const {
  const auto now = static_cast<int64_t>(std::time(nullptr));
  return codec::SignToken({user, device, now + ttl_s, 1, now}, secret_);
}

std::string TestMesh::GatewayAddr(size_t i) const {
  auto gws = map_.IdsWithRole(router::Role::kGateway);
  REQUIRE(i < gws.size());
  return map_.Find(gws[i])->client;
}

client::Endpoint TestMesh::Gateway(size_t i) const {
  auto ep = client::ParseEndpoint((tls_ ? "tls://" : "tcp://") + GatewayAddr(i));
  REQUIRE(ep.ok());
  if (tls_) ep->tls_opts.ca_file = var_ + "/tls/ca.pem";
  return *ep;
}

std::pair<std::string, std::string> TestMesh::CrossShardUsers() const {
  REQUIRE(map_.IdsWithRole(router::Role::kSession).size() >= 2);  // else no such pair
  router::HashRing ring(map_.IdsWithRole(router::Role::kSession));
  for (int i = 0;; ++i) {
    std::string a = "alice" + std::to_string(i), b = "bob" + std::to_string(i);
    if (ring.Owner(a) != ring.Owner(b)) return {a, b};
  }
}

client::ChatClient TestMesh::Connect(const std::string& user, size_t gateway,
                                     const std::string& device) const {
  auto c = client::ChatClient::Connect(Gateway(gateway), Token(user, device));
  INFO(c.status().ToString());
  REQUIRE(c.ok());
  return std::move(c).value();
}

}  // namespace meshchat::test
