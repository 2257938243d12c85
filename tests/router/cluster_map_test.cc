#include <catch2/catch.hpp>

#include "router/cluster_map.h"

using namespace meshchat;
using namespace meshchat::router;

TEST_CASE("a valid map parses and serializes back", "[router]") {
  const char* text = R"(# test map
epoch 7
node gw1 gateway mesh=tcp://127.0.0.1:7101 client=127.0.0.1:7001   # comment
node s1  session mesh=tcp://127.0.0.1:7201

node s2 session mesh=ipc:///tmp/s2.sock
)";
  auto m = ClusterMap::Parse(text);
  REQUIRE(m.ok());
  CHECK(m->epoch == 7);
  REQUIRE(m->nodes.size() == 3);
  NodeInfo gw1;
  gw1.id = "gw1";
  gw1.role = Role::kGateway;
  gw1.mesh = "tcp://127.0.0.1:7101";
  gw1.client = "127.0.0.1:7001";
  CHECK(m->nodes[0] == gw1);
  CHECK(m->IdsWithRole(Role::kSession) == std::vector<std::string>{"s1", "s2"});
  auto again = ClusterMap::Parse(m->Serialize());
  REQUIRE(again.ok());
  CHECK(again->nodes == m->nodes);
  CHECK(again->epoch == 7);
}

TEST_CASE("joined and leaving nodes: only leaving ones are out of the ring", "[router]") {
  auto m = ClusterMap::Parse(
      "epoch 5\n"
      "node s1 session mesh=tcp://127.0.0.1:1 leaving\n"
      "node s2 session mesh=tcp://127.0.0.1:2\n"
      "node s3 session mesh=tcp://127.0.0.1:3 joined=5\n"
      "node g1 group mesh=tcp://127.0.0.1:4 joined=2 leaving\n");
  REQUIRE(m.ok());
  CHECK(m->IdsWithRole(Role::kSession) == std::vector<std::string>{"s2", "s3"});
  CHECK(m->IdsWithRole(Role::kGroup).empty());
  CHECK(m->Find("s1")->leaving);
  CHECK(m->Find("s3")->joined == 5);
  auto again = ClusterMap::Parse(m->Serialize());
  REQUIRE(again.ok());
  CHECK(again->nodes == m->nodes);
  auto bad = [](const std::string& line) {
    auto r = ClusterMap::Parse("epoch 1\n" + line + "\n");
    REQUIRE_FALSE(r.ok());
    return r.status().message();
  };
  CHECK_THAT(bad("node s1 session mesh=tcp://127.0.0.1:1 joined=0"),
             Catch::Contains("joined must be a positive epoch"));
  CHECK_THAT(bad("node s1 session mesh=tcp://127.0.0.1:1 joined=x"),
             Catch::Contains("joined must be"));
  CHECK_THAT(bad("node gw1 gateway mesh=tcp://127.0.0.1:1 client=127.0.0.1:2 leaving"),
             Catch::Contains("gateways own no keys"));
  CHECK_THAT(bad("node s1 session mesh=tcp://127.0.0.1:1 leavin"),
             Catch::Contains("unknown node attribute"));
}

TEST_CASE("map errors name the line and the problem", "[router]") {
  auto err = [](const std::string& text) {
    auto m = ClusterMap::Parse(text);
    REQUIRE_FALSE(m.ok());
    return m.status().message();
  };
  CHECK_THAT(err("node s1 session mesh=tcp://h:1\n"), Catch::Contains("missing 'epoch"));
  CHECK_THAT(err("epoch 1\n"), Catch::Contains("no nodes"));
  CHECK_THAT(err("epoch 0\nnode s1 session mesh=tcp://h:1\n"), Catch::Contains("line 1"));
  CHECK_THAT(err("epoch 1\nnode s1 session mesh=tcp://h:1\nnode s1 session mesh=tcp://h:2\n"),
             Catch::Contains("line 3: duplicate node id 's1'"));
  CHECK_THAT(err("epoch 1\nnode x1 wizard mesh=tcp://h:1\n"), Catch::Contains("unknown role"));
  CHECK_THAT(err("epoch 1\nnode s1 session mesh=http://h:1\n"),
             Catch::Contains("bad mesh endpoint"));
  CHECK_THAT(err("epoch 1\nnode s1 session mesh=tcp://h:99999\n"),
             Catch::Contains("bad mesh endpoint"));
  CHECK_THAT(err("epoch 1\nnode g1 gateway mesh=tcp://h:1\n"),
             Catch::Contains("has no client endpoint"));
  CHECK_THAT(err("epoch 1\nnode g1 gateway mesh=tcp://h:1 client=nohost\n"),
             Catch::Contains("bad client endpoint"));
  CHECK_THAT(err("epoch 1\nnode s1 session mesh=tcp://h:1\nnode s2 session mesh=tcp://h:1\n"),
             Catch::Contains("used twice"));
  CHECK_THAT(err("epoch 1\nfrobnicate\n"), Catch::Contains("unknown directive"));
  CHECK_THAT(err("epoch 1\nnode s1 session mesh=tcp://h:1 colour=red\n"),
             Catch::Contains("unknown node attribute"));
  CHECK_THAT(err("epoch 1\nnode bad/id session mesh=tcp://h:1\n"), Catch::Contains("bad node id"));
}

TEST_CASE("loading a missing file is an error", "[router]") {
  auto m = ClusterMap::Load("/nonexistent/cluster.map");
  REQUIRE_FALSE(m.ok());
  CHECK(m.status().code() == Code::kNotFound);
}

TEST_CASE("curve keys: on every node or none, operators only with them, round trip", "[router]") {
  const std::string k1(64, 'a'), k2(64, 'b'), k3(64, 'c');
  const std::string text = "epoch 3\nnode s1 session mesh=tcp://h:1 curve=" + k1 +
                           "\nnode s2 session mesh=tcp://h:2 curve=" + k2 +
                           "\noperator ops curve=" + k3 + "\n";
  auto m = ClusterMap::Parse(text);
  REQUIRE(m.ok());
  CHECK(m->curve());
  CHECK(m->nodes[0].curve == std::string(32, '\xaa'));
  REQUIRE(m->operators.size() == 1);
  CHECK(m->operators[0].name == "ops");
  CHECK(m->operators[0].curve == std::string(32, '\xcc'));
  auto again = ClusterMap::Parse(m->Serialize());
  REQUIRE(again.ok());
  CHECK(again->nodes == m->nodes);
  CHECK(again->operators == m->operators);
  CHECK_FALSE(ClusterMap::Parse("epoch 1\nnode s1 session mesh=tcp://h:1\n")->curve());

  auto err = [](const std::string& t) {
    auto r = ClusterMap::Parse(t);
    REQUIRE_FALSE(r.ok());
    return r.status().message();
  };
  CHECK_THAT(err("epoch 1\nnode s1 session mesh=tcp://h:1 curve=" + k1 +
                 "\nnode s2 session mesh=tcp://h:2\n"),
             Catch::Contains("line 3: either every node has a curve key or none has"));
  CHECK_THAT(err("epoch 1\nnode s1 session mesh=tcp://h:1 curve=" + k1.substr(1) + "\n"),
             Catch::Contains("64 hex digits"));
  CHECK_THAT(err("epoch 1\nnode s1 session mesh=tcp://h:1 curve=" + std::string(64, 'g') + "\n"),
             Catch::Contains("64 hex digits"));
  CHECK_THAT(err("epoch 1\nnode s1 session mesh=tcp://h:1 curve=" + k1 +
                 "\nnode s2 session mesh=tcp://h:2 curve=" + k1 + "\n"),
             Catch::Contains("used twice"));
  CHECK_THAT(err("epoch 1\nnode s1 session mesh=tcp://h:1\noperator ops curve=" + k3 + "\n"),
             Catch::Contains("operator keys need curve keys"));
  CHECK_THAT(err("epoch 1\nnode s1 session mesh=tcp://h:1 curve=" + k1 + "\noperator ops\n"),
             Catch::Contains("expected 'operator NAME curve=HEX64'"));
  CHECK_THAT(err("epoch 1\nnode s1 session mesh=tcp://h:1 curve=" + k1 +
                 "\noperator ops curve=" + k1 + "\n"),
             Catch::Contains("used twice"));
}

TEST_CASE("replicas: a copy of a shard head, out of the ring, checked and round-tripped",
          "[router]") {
  auto m = ClusterMap::Parse(
      "epoch 1\n"
      "node s1 session mesh=tcp://127.0.0.1:1\n"
      "node s1r session mesh=tcp://127.0.0.1:2 replica-of=s1\n"
      "node s2 session mesh=tcp://127.0.0.1:3\n"
      "node s1q session mesh=tcp://127.0.0.1:4 replica-of=s1\n");
  REQUIRE(m.ok());
  CHECK(m->IdsWithRole(Role::kSession) == std::vector<std::string>{"s1", "s2"});
  CHECK(m->ReplicasOf("s1") == std::vector<std::string>{"s1r", "s1q"});
  CHECK(m->ReplicasOf("s2").empty());
  CHECK(m->ShardOf("s1q") == "s1");
  CHECK(m->ShardOf("s2") == "s2");
  auto again = ClusterMap::Parse(m->Serialize());
  REQUIRE(again.ok());
  CHECK(again->nodes == m->nodes);
  auto bad = [](const std::string& lines) {
    auto r = ClusterMap::Parse("epoch 1\nnode s1 session mesh=tcp://127.0.0.1:1\n" + lines);
    REQUIRE_FALSE(r.ok());
    return r.status().message();
  };
  CHECK_THAT(bad("node s2 session mesh=tcp://127.0.0.1:2 replica-of=s9\n"),
             Catch::Contains("must be a node of role session"));
  CHECK_THAT(bad("node g1 group mesh=tcp://127.0.0.1:2 replica-of=s1\n"),
             Catch::Contains("must be a node of role group"));
  CHECK_THAT(bad("node s2 session mesh=tcp://127.0.0.1:2 replica-of=s1\n"
                 "node s3 session mesh=tcp://127.0.0.1:3 replica-of=s2\n"),
             Catch::Contains("not itself a replica"));
  CHECK_THAT(bad("node s2 session mesh=tcp://127.0.0.1:2 replica-of=s2\n"),
             Catch::Contains("another node"));
  CHECK_THAT(bad("node s2 session mesh=tcp://127.0.0.1:2 replica-of=s1 leaving\n"),
             Catch::Contains("do not join or leave"));
}
