// Adding and removing gateways of a running cluster: the new map reaches every node, clients
// of a removed gateway move to another one, and no acknowledged message is lost or doubled.
#include <catch2/catch.hpp>

#include <fstream>
#include <set>
#include <thread>

#include "tests/integration/test_mesh.h"

using namespace meshchat;
using namespace meshchat::test;

namespace {
client::Endpoint LastEndpoint(const TestMesh& mesh) {
  std::ifstream in(mesh.var() + "/client-endpoints");
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  auto ep = client::ParseEndpoint(last);
  REQUIRE(ep.ok());
  return *ep;
}
}  // namespace

TEST_CASE("meshctl add and remove gateways under traffic, nothing lost or doubled",
          "[integration][membership]") {
  TestMesh mesh;
  auto [a, b] = mesh.CrossShardUsers();
  std::string out;
  REQUIRE(mesh.Meshctl("add gw3", &out) == 0);
  INFO(out);
  auto carol = client::ChatClient::Connect(LastEndpoint(mesh), mesh.Token("carol"));
  REQUIRE(carol.ok());
  CHECK(carol->welcome().node == "gw3");
  auto cb = mesh.Connect(b, 1);
  REQUIRE(carol->Send(b, "via the new gateway").ok());
  CHECK(Expect<codec::Push>(cb).body == "via the new gateway");
  REQUIRE(cb.Send("carol", "and back").ok());
  CHECK(Expect<codec::Push>(*carol).body == "and back");

  // a is on gw1, which is removed while a sends: a is told to reconnect, does so through
  // another gateway and resends what was not acknowledged, with the same cids.
  auto ca = mesh.Connect(a, 0);
  std::thread remover([&] { mesh.Meshctl("remove gw1", &out); });
  std::map<uint64_t, std::string> unacked;
  const int kMessages = 40;
  int sent_on_gw1 = 0;
  for (int i = 0; i < kMessages; ++i) {
    const std::string body = "m" + std::to_string(i);
    auto cid = ca.Send(b, body);
    if (!cid.ok()) break;  // the connection went away: the rest go through gw2 below
    ++sent_on_gw1;
    unacked[*cid] = body;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    while (ca.HasBufferedEvent()) {
      auto ev = ca.Next(0);
      if (!ev.ok()) break;
      if (auto* s = std::get_if<codec::Sent>(&*ev)) unacked.erase(s->cid);
    }
  }
  remover.join();
  // Whatever a sent is either acked or resent through gw2 now.
  auto again = mesh.Connect(a, 1, "d1");
  for (const auto& [cid, body] : unacked) REQUIRE(again.Send(b, body, cid).ok());
  for (int i = sent_on_gw1; i < kMessages; ++i)
    REQUIRE(again.Send(b, "m" + std::to_string(i)).ok());
  for (size_t i = 0; i < unacked.size() + (kMessages - sent_on_gw1); ++i)
    Expect<codec::Sent>(again, 10000);
  std::set<std::string> got;
  size_t pushes = 0;
  while (got.size() < static_cast<size_t>(kMessages)) {
    auto p = Expect<codec::Push>(cb, 10000);
    if (p.from != a) continue;
    ++pushes;
    got.insert(p.body);
  }
  CHECK(got.size() == static_cast<size_t>(kMessages));
  CHECK(pushes == static_cast<size_t>(kMessages));  // no duplicate delivery

  REQUIRE(mesh.Meshctl("status --json", &out) == 0);
  CHECK(out.find("\"id\":\"gw1\"") == std::string::npos);
  CHECK_THAT(out, Catch::Contains("\"epoch\":3,"));
  CHECK(out.find("\"epoch\":2,") == std::string::npos);

  // Bad input, each with a clear error.
  CHECK(mesh.Meshctl("add gw3", &out) == 1);
  CHECK_THAT(out, Catch::Contains("already in the map"));
  CHECK(mesh.Meshctl("add m9 --role nosuch", &out) != 0);
  CHECK_THAT(out, Catch::Contains("nosuch"));
  CHECK(mesh.Meshctl("remove m1", &out) == 1);
  CHECK_THAT(out, Catch::Contains("cannot remove the last media node"));
  CHECK(mesh.Meshctl("remove nosuch", &out) == 1);
  CHECK(mesh.Meshctl("add 'bad id'", &out) == 1);
}

TEST_CASE("meshctl push-map: the by-hand steps for several hosts, and bad files",
          "[integration][membership][handover]") {
  TestMesh mesh(2, 2, "--groups 0");
  auto [a, b] = mesh.CrossShardUsers();
  auto cb = mesh.Connect(b, 1);
  {
    auto ca = mesh.Connect(a, 0);
    for (int i = 0; i < 5; ++i) REQUIRE(ca.Send(b, "before " + std::to_string(i)).ok());
    for (int i = 0; i < 5; ++i) Expect<codec::Sent>(ca);
  }
  auto map = router::ClusterMap::Load(mesh.var() + "/cluster.map");
  REQUIRE(map.ok());
  const std::string file = mesh.var() + "/../next.map";
  auto write = [&](const router::ClusterMap& m) { std::ofstream(file) << m.Serialize(); };
  std::string out;
  // Bad files: a malformed line (named), an epoch that is not newer.
  std::ofstream(file) << "epoch 9\nnode s1 session\n";
  CHECK(mesh.Meshctl("push-map " + file, &out) == 1);
  CHECK_THAT(out, Catch::Contains("line 2"));
  write(*map);
  CHECK(mesh.Meshctl("push-map " + file, &out) == 1);
  CHECK_THAT(out, Catch::Contains("not newer"));
  // Removing s2 by hand: leaving (its keys move), then stopped and dropped.
  router::ClusterMap next = *map;
  ++next.epoch;
  for (auto& n : next.nodes)
    if (n.id == "s2") n.leaving = true;
  write(next);
  REQUIRE(mesh.Meshctl("push-map " + file, &out) == 0);
  CHECK_THAT(out, Catch::Contains("keys handed over"));
  REQUIRE(mesh.Meshctl("kill s2 --signal TERM", &out) == 0);
  ++next.epoch;
  std::erase_if(next.nodes, [](const router::NodeInfo& n) { return n.id == "s2"; });
  write(next);
  REQUIRE(mesh.Meshctl("push-map " + file, &out) == 0);
  // Everything a sent is still delivered, from s1 now.
  std::set<std::string> got;
  while (got.size() < 5) {
    auto p = Expect<codec::Push>(cb, 10000);
    got.insert(p.body);
  }
  auto ca = mesh.Connect(a, 1);
  REQUIRE(ca.Send(b, "after").ok());
  Expect<codec::Sent>(ca);
  CHECK(Expect<codec::Push>(cb, 10000).body == "after");
}
