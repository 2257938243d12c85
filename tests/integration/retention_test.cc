// Temporary and permanent chats through a real mesh: mode changes, history pages for a new
// device, disappearing messages, group history from the join point.
#include <catch2/catch.hpp>

#include <thread>

#include "tests/integration/test_mesh.h"

using namespace meshchat;
using namespace meshchat::test;

namespace {
codec::HistoryPage Page(client::ChatClient& c, const std::string& with, uint64_t before,
                        uint64_t limit) {
  auto rid = c.RequestHistory(codec::History{0, with, before, {}, limit});
  REQUIRE(rid.ok());
  while (true) {
    auto page = Expect<codec::HistoryPage>(c);
    if (page.rid == *rid) return page;
  }
}
}  // namespace

TEST_CASE("retention: a permanent chat's history reaches a new device, page by page",
          "[integration][retention]") {
  TestMesh mesh;
  auto [a, b] = mesh.CrossShardUsers();
  auto ca = mesh.Connect(a, 0);
  auto cb = mesh.Connect(b, 1);
  CHECK(Page(ca, b, 0, 10).mode == "temporary");
  auto cid = ca.SetChatMode(b, codec::ChatRetention::kPermanent, 0);
  REQUIRE(cid.ok());
  CHECK(Expect<codec::Sent>(ca).cid == *cid);
  auto notice = Expect<codec::Push>(cb);
  CHECK(notice.system);
  for (int i = 1; i <= 5; ++i) {
    REQUIRE(ca.Send(b, "m" + std::to_string(i)).ok());
    Expect<codec::Sent>(ca);
  }
  auto tablet = mesh.Connect(b, 0, "tablet");  // a new device of bob, on the other gateway
  auto latest = Page(tablet, a, 0, 3);
  REQUIRE(latest.messages.size() == 3);
  CHECK(latest.mode == "permanent");
  CHECK(latest.messages.back().body == "m5");
  CHECK(latest.more);
  auto rest = Page(tablet, a, latest.messages.front().seq, 10);
  REQUIRE(rest.messages.size() == 3);
  CHECK(rest.messages.front().system);
  CHECK_FALSE(rest.more);
}

TEST_CASE("retention: disappearing messages carry their time and leave the history",
          "[integration][retention]") {
  TestMesh mesh;
  auto [a, b] = mesh.CrossShardUsers();
  auto ca = mesh.Connect(a, 0);
  auto cb = mesh.Connect(b, 1);
  REQUIRE(ca.SetChatMode(b, codec::ChatRetention::kPermanent, 2).ok());
  Expect<codec::Push>(cb);
  REQUIRE(ca.Send(b, "gone soon").ok());
  auto p = Expect<codec::Push>(cb);
  CHECK(p.body == "gone soon");
  CHECK(p.exp == p.ts + 2000);
  CHECK(Page(ca, b, 0, 10).messages.size() == 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  auto page = Page(ca, b, 0, 10);
  REQUIRE(page.messages.size() == 1);  // only the announcement stays
  CHECK(page.messages[0].system);
  CHECK(page.timer == 2);
}

TEST_CASE("retention: group history is for members, from when they joined",
          "[integration][retention]") {
  TestMesh mesh;
  auto ca = mesh.Connect("gina", 0);
  auto cc = mesh.Connect("carl", 1);
  auto op = [&](client::ChatClient& c, codec::GroupRequest r) {
    auto rid = c.Group(std::move(r));
    REQUIRE(rid.ok());
    while (true) {
      auto res = Expect<codec::GroupResult>(c);
      if (res.rid == *rid) return res;
    }
  };
  REQUIRE(op(ca, {"create", 0, "club", {}, "Club", 0, 0}).ok);
  codec::GroupRequest mode{"mode", 0, "club", {}, "", 0, 0};
  mode.mode = "permanent";
  REQUIRE(op(ca, mode).ok);
  REQUIRE(ca.SendToGroup("club", "before carl").ok());
  REQUIRE(op(ca, {"add", 0, "club", {"carl"}, "", 0, 0}).ok);
  REQUIRE(ca.SendToGroup("club", "after carl").ok());
  auto gina = op(ca, {"history", 0, "club", {}, "", 0, 50});
  CHECK(gina.mode == "permanent");
  CHECK(gina.messages.size() == 4);  // mode notice, before, added, after
  auto carl = op(cc, {"history", 0, "club", {}, "", 0, 50});
  REQUIRE(carl.messages.size() == 2);
  CHECK(carl.messages[1].body == "after carl");
  auto stranger = mesh.Connect("sam", 0);
  CHECK(op(stranger, {"history", 0, "club", {}, "", 0, 50}).code == codec::ErrorCode::kNotMember);
}
