// meshctl up's default shape: every node in one meshchat-node process, linked in memory.
// The chat paths across shards, and what an operator can and cannot do to one node of it.
#include <catch2/catch.hpp>

#include <fstream>

#include "tests/integration/test_mesh.h"

using namespace meshchat;
using namespace meshchat::test;

TEST_CASE("one process: a chat across both session shards, its receipt, and a group",
          "[integration][one_process]") {
  TestMesh mesh(2, 2, "", /*split=*/false);
  auto [a, b] = mesh.CrossShardUsers();
  auto ca = mesh.Connect(a, 0);
  auto cb = mesh.Connect(b, 1);
  REQUIRE(ca.Send(b, "hello", 1).ok());
  auto push = Expect<codec::Push>(cb);  // acked by the library: delivered
  CHECK(push.body == "hello");
  CHECK(push.from == a);
  auto sent = Expect<codec::Sent>(ca);
  CHECK(sent.cid == 1);
  CHECK(sent.seq == push.seq);
  auto delivered = Expect<codec::Receipt>(ca);
  CHECK(delivered.kind == codec::ReceiptKind::kDelivered);
  REQUIRE(cb.Read(a, push.seq).ok());
  CHECK(Expect<codec::Receipt>(ca).kind == codec::ReceiptKind::kRead);

  codec::GroupRequest create;
  create.op = "create";
  create.group = "grp1";
  create.users = {b};
  REQUIRE(ca.Group(create).ok());
  CHECK(Expect<codec::GroupResult>(ca).ok);
  REQUIRE(ca.SendToGroup("grp1", "to all").ok());
  Expect<codec::Sent>(ca);
  auto gp = Expect<codec::Push>(cb);
  while (gp.system) gp = Expect<codec::Push>(cb);  // "added to the group" first
  CHECK(gp.body == "to all");
}

TEST_CASE("one process: node-level operations that would stop the other nodes are refused",
          "[integration][one_process]") {
  TestMesh mesh(2, 2, "", /*split=*/false);
  std::ifstream procs(mesh.var() + "/processes");
  std::string line;
  REQUIRE(std::getline(procs, line));
  CHECK(line.find("gw1") != std::string::npos);
  CHECK(line.find("s2") != std::string::npos);
  std::string out;
  CHECK(mesh.Meshctl("remove gw2", &out) == 1);
  CHECK_THAT(out, Catch::Contains("runs in one process with"));
  CHECK_THAT(out, Catch::Contains("--split"));
  // Still serving: the refusal stopped nothing.
  auto [a, b] = mesh.CrossShardUsers();
  auto ca = mesh.Connect(a, 1);
  REQUIRE(ca.Send(b, "still here").ok());
  Expect<codec::Sent>(ca);
}

TEST_CASE("meshchat-node refuses bad per-node settings and role binaries take one id",
          "[integration][one_process]") {
  TestMesh mesh(1, 1, "", /*split=*/true);
  const std::string common = " --map " + mesh.var() + "/cluster.map --data " + mesh.var() +
                             "/data2 --key-dir " + mesh.var() + "/keys";
  std::string out;
  CHECK(RunCommand(Bin("meshchat-node") + common + " --id s1 --node-opt nocolon", &out) == 1);
  CHECK_THAT(out, Catch::Contains("expected ID:KEY=VALUE"));
  CHECK(RunCommand(Bin("meshchat-node") + common + " --id s1 --node-opt gw1:x=1", &out) == 1);
  CHECK_THAT(out, Catch::Contains("no node gw1 runs here"));
  CHECK(RunCommand(Bin("meshchat-node") + common + " --id s1 --node-opt s1:no_such=1", &out) == 1);
  CHECK_THAT(out, Catch::Contains("no_such"));
  CHECK(RunCommand(Bin("meshchat-node") + common + " --id nobody", &out) == 1);
  CHECK_THAT(out, Catch::Contains("not in"));
  CHECK(
      RunCommand(Bin("meshchat-session") + " --map " + mesh.var() + "/cluster.map --id s1 --id s2",
                 &out) != 0);
}
