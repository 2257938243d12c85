// Authorization audit: a logged-in user (mallory) tries to act as, or read what belongs to,
// others. Every attempt must fail, and fail the same way whether its target exists or not.
// (Media: tests/integration/media_test.cc, "not-found for everyone else".)
#include <catch2/catch.hpp>

#include "client/connection.h"
#include "codec/group_messages.h"
#include "codec/history_messages.h"
#include "tests/integration/test_mesh.h"

using namespace meshchat;
using namespace meshchat::test;

namespace {

codec::GroupResult GroupOp(client::ChatClient& c, codec::GroupRequest req) {
  auto rid = c.Group(std::move(req));
  REQUIRE(rid.ok());
  while (true) {
    auto r = Expect<codec::GroupResult>(c);
    if (r.rid == *rid) return r;
  }
}

codec::GroupRequest Op(const std::string& op, const std::string& group,
                       std::vector<std::string> users = {}, uint64_t seq = 0) {
  codec::GroupRequest r;
  r.op = op;
  r.group = group;
  r.users = std::move(users);
  r.seq = seq;
  r.limit = 50;
  return r;
}

// The refusal of a group_send (an error with its cid).
codec::Error GroupSendRefusal(client::ChatClient& c, const std::string& group) {
  auto cid = c.SendToGroup(group, "let me in");
  REQUIRE(cid.ok());
  while (true) {
    auto e = Expect<codec::Error>(c);
    if (e.cid == *cid) return e;
  }
}

// Nothing of type T (that `match` accepts) arrives within `ms`; other events are skipped.
template <typename T>
bool NoneWithin(client::ChatClient& c, int ms, bool (*match)(const T&) = nullptr) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < until) {
    auto ev = c.Next(100);
    if (!ev.ok()) continue;
    if (const T* t = std::get_if<T>(&*ev); t && (!match || match(*t))) return false;
  }
  return true;
}

bool IsRead(const codec::Receipt& r) {
  return r.kind == codec::ReceiptKind::kRead;
}

}  // namespace

TEST_CASE("authorization audit: nobody sends, reads, pages, acks or receipts as someone else",
          "[integration][security]") {
  TestMesh mesh(2, 2, "--groups 1");
  auto alice = mesh.Connect("alice", 0);
  auto bob = mesh.Connect("bob", 1);
  auto mallory = mesh.Connect("mallory", 0);
  REQUIRE(alice.Send("bob", "for bob only").ok());
  Expect<codec::Sent>(alice);
  REQUIRE(Expect<codec::Push>(bob).body == "for bob only");

  SECTION("who a message is from is the token's user, whatever else is said") {
    // A second hello with alice's token on mallory's connection changes nothing.
    auto raw = client::Connection::Dial(mesh.Gateway(0).host, mesh.Gateway(0).port, 2000);
    REQUIRE(raw.ok());
    auto hello = [&](const std::string& token) {
      return raw->SendFrame(static_cast<uint8_t>(codec::FrameType::kHello),
                            codec::Encode(codec::Hello{1, token}));
    };
    REQUIRE(hello(mesh.Token("mallory", "evil")).ok());
    REQUIRE(raw->ReadFrame(3000).ok());  // welcome
    REQUIRE(hello(mesh.Token("alice", "phone")).ok());
    auto f = raw->ReadFrame(3000);
    REQUIRE(f.ok());
    codec::Error e;
    REQUIRE(codec::Decode(f->body, e) == codec::DecodeStatus::kOk);
    CHECK(e.code == codec::ErrorCode::kAlreadyAuthenticated);
    REQUIRE(raw->SendFrame(static_cast<uint8_t>(codec::FrameType::kSend),
                           codec::Encode(codec::Send{"bob", 1, "hi, it's alice"}))
                .ok());
    auto p = Expect<codec::Push>(bob);
    CHECK(p.from == "mallory");
    CHECK(p.chat == "mallory");
  }

  SECTION("paging another chat's history shows only one's own conversation") {
    codec::History h;
    h.chat = "bob";  // mallory's chat with bob: empty, not alice's
    REQUIRE(mallory.RequestHistory(h).ok());
    auto page = Expect<codec::HistoryPage>(mallory);
    CHECK(page.messages.empty());
    h.chat = "alice|bob";  // the internal conversation id is not a chat name
    REQUIRE(mallory.RequestHistory(h).ok());
    CHECK(Expect<codec::Error>(mallory).code == codec::ErrorCode::kBadRequest);
    for (uint64_t guess : {1, 2, 100}) {  // guessing sequence numbers reaches nothing
      h.chat = "bob";
      h.after = guess - 1;
      REQUIRE(mallory.RequestHistory(h).ok());
      CHECK(Expect<codec::HistoryPage>(mallory).messages.empty());
    }
  }

  SECTION("reads and acks move only one's own cursors") {
    REQUIRE(mallory.Read("alice", 1).ok());  // alice's message to bob is seq 1
    REQUIRE(mallory.Read("bob", 1).ok());
    REQUIRE(mallory.Ack(1000).ok());
    CHECK(NoneWithin<codec::Receipt>(alice, 700, IsRead));  // no read receipt from anyone
    REQUIRE(bob.Read("alice", 1).ok());                     // the real reader
    codec::Receipt r = Expect<codec::Receipt>(alice);
    while (r.kind != codec::ReceiptKind::kRead) r = Expect<codec::Receipt>(alice);
    CHECK(r.chat == "bob");
    CHECK(r.seq == 1);
  }

  SECTION("groups: not a member, never was, removed, or no such group: one answer") {
    REQUIRE(GroupOp(alice, Op("create", "crew", {"bob", "mallory"})).ok);
    REQUIRE(GroupOp(alice, Op("remove", "crew", {"mallory"})).ok);
    REQUIRE(GroupOp(alice, Op("create", "inner", {"bob"})).ok);
    for (const char* g : {"crew", "inner", "nosuch"}) {
      INFO(g);
      const auto send = GroupSendRefusal(mallory, g);
      CHECK(send.code == codec::ErrorCode::kNotMember);
      for (const char* op : {"info", "history", "pull", "receipts", "add", "rename", "leave"}) {
        INFO(op);
        auto r = GroupOp(mallory, Op(op, g,
                                     std::string(op) == "add" ? std::vector<std::string>{"mallory"}
                                                              : std::vector<std::string>{},
                                     1));
        CHECK_FALSE(r.ok);
        CHECK(r.code == codec::ErrorCode::kNotMember);
        CHECK(r.members.empty());
        CHECK(r.messages.empty());
        CHECK(r.name.empty());
        CHECK(r.seq == 0);
      }
    }
    // Messages to the group after mallory was removed never reach her.
    REQUIRE(alice.SendToGroup("crew", "without mallory").ok());
    CHECK(NoneWithin<codec::Push>(mallory, 700));
  }
}
