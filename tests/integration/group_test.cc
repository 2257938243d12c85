// Group chat through a real mesh: 2 gateways, 2 session nodes, 2 group nodes.
#include <catch2/catch.hpp>

#include <chrono>
#include <deque>
#include <map>
#include <set>

#include "router/hash_ring.h"
#include "tests/integration/test_mesh.h"

using namespace meshchat;
using namespace meshchat::test;

namespace {

// A client whose events are never lost by waiting for a specific one: what a wait skips is
// kept, in order, for the next wait.
class Member {
 public:
  explicit Member(client::ChatClient c) : c_(std::move(c)) {}
  client::ChatClient& c() { return c_; }
  const codec::Welcome& welcome() const { return c_.welcome(); }

  template <typename T>
  T Expect(int timeout_ms = 5000) {
    for (auto it = stash_.begin(); it != stash_.end(); ++it)
      if (auto* t = std::get_if<T>(&*it)) {
        T v = *t;
        stash_.erase(it);
        return v;
      }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      INFO("waiting for an event as " << c_.welcome().user);
      REQUIRE(left.count() > 0);
      auto ev = c_.Next(static_cast<int>(left.count()));
      INFO(ev.status().ToString());
      REQUIRE(ev.ok());
      if (auto* t = std::get_if<T>(&*ev)) return *t;
      stash_.push_back(std::move(*ev));
    }
  }
  // True if nothing at all arrives within `ms`.
  bool Quiet(int ms) {
    if (!stash_.empty()) return false;
    return c_.Next(ms).status().code() == Code::kTimeout;
  }
  codec::GroupResult Ask(codec::GroupRequest req) {
    auto rid = c_.Group(std::move(req));
    REQUIRE(rid.ok());
    while (true) {
      auto r = Expect<codec::GroupResult>();
      if (r.rid == *rid) return r;
    }
  }
  // The next non-system group message.
  codec::Push NextMessage() {
    while (true) {
      auto p = Expect<codec::Push>();
      if (!p.system) return p;
    }
  }

 private:
  client::ChatClient c_;
  std::deque<client::Event> stash_;
};

codec::GroupRequest Op(const std::string& op, const std::string& group,
                       std::vector<std::string> users = {}) {
  codec::GroupRequest r;
  r.op = op;
  r.group = group;
  r.users = std::move(users);
  return r;
}

}  // namespace

TEST_CASE("a group message reaches every member across gateways and shards, in one order",
          "[integration][groups]") {
  TestMesh mesh;
  Member alice(mesh.Connect("alice", 0));
  Member bob(mesh.Connect("bob", 1));
  Member carol(mesh.Connect("carol", 0));
  auto created = alice.Ask(Op("create", "team", {"bob", "carol"}));
  REQUIRE(created.ok);
  // Everyone hears of the creation, as the group's first message.
  for (auto* c : {&alice, &bob, &carol}) {
    INFO("creation notice for " << c->welcome().user);
    auto sys = c->Expect<codec::Push>();
    CHECK(sys.system);
    CHECK(sys.group == "team");
    CHECK(sys.seq == 1);
  }
  // Two senders at once: every member sees the same order.
  for (int i = 0; i < 20; ++i) {
    REQUIRE(alice.c().SendToGroup("team", "a" + std::to_string(i)).ok());
    REQUIRE(bob.c().SendToGroup("team", "b" + std::to_string(i)).ok());
  }
  std::vector<std::vector<std::string>> seen(3);
  std::vector<std::vector<uint64_t>> seqs(3);
  Member* clients[] = {&alice, &bob, &carol};
  const size_t want[] = {20, 20, 40};  // a sender's only device is not sent its own messages
  for (int k = 0; k < 3; ++k) {
    while (seen[k].size() < want[k]) {
      INFO("member " << k << " has " << seen[k].size());
      auto p = clients[k]->NextMessage();
      CHECK(p.group == "team");
      CHECK(p.chat == "team");
      seen[k].push_back(p.body);
      seqs[k].push_back(p.seq);
    }
  }
  // Everyone sees the same order: alice's view is carol's without alice's own messages.
  std::vector<std::string> carol_without_alice, carol_without_bob;
  for (const auto& m : seen[2])
    (m[0] == 'a' ? carol_without_bob : carol_without_alice).push_back(m);
  CHECK(seen[0] == carol_without_alice);
  CHECK(seen[1] == carol_without_bob);
  for (size_t i = 1; i < seqs[2].size(); ++i) CHECK(seqs[2][i] == seqs[2][i - 1] + 1);  // no gaps
}

TEST_CASE("non-members are refused and learn nothing - removed members hear nothing more",
          "[integration][groups]") {
  TestMesh mesh;
  Member alice(mesh.Connect("alice", 0));
  Member bob(mesh.Connect("bob", 1));
  Member mallory(mesh.Connect("mallory", 0));
  REQUIRE(alice.Ask(Op("create", "club", {"bob"})).ok);
  auto cid = mallory.c().SendToGroup("club", "let me in");
  REQUIRE(cid.ok());
  auto e = mallory.Expect<codec::Error>();
  CHECK(e.code == codec::ErrorCode::kNotMember);
  CHECK(e.cid == std::optional<uint64_t>(*cid));
  auto info = mallory.Ask(Op("info", "club"));
  auto none = mallory.Ask(Op("info", "no-such-group"));
  CHECK_FALSE(info.ok);
  CHECK(info.code == none.code);  // the same answer whether the group exists or not
  CHECK(bob.Ask(Op("add", "club", {"mallory"})).code == codec::ErrorCode::kNotAdmin);

  REQUIRE(alice.Ask(Op("remove", "club", {"bob"})).ok);
  REQUIRE(alice.c().SendToGroup("club", "after bob left").ok());
  alice.Expect<codec::Sent>();
  // bob's last group message is the notice of his removal.
  auto first = bob.Expect<codec::Push>();  // "alice created the group"
  auto removed = bob.Expect<codec::Push>();
  CHECK(first.system);
  CHECK(removed.system);
  CHECK_THAT(removed.body, Catch::Contains("removed bob"));
  CHECK(bob.Quiet(1000));
  auto sent = bob.c().SendToGroup("club", "still here?");
  REQUIRE(sent.ok());
  CHECK(bob.Expect<codec::Error>().code == codec::ErrorCode::kNotMember);
}

TEST_CASE("offline members catch up in order - a retried cid is delivered once",
          "[integration][groups]") {
  TestMesh mesh;
  Member alice(mesh.Connect("alice", 0));
  {
    Member dave(mesh.Connect("dave", 1));
    REQUIRE(alice.Ask(Op("create", "g1", {"dave"})).ok);
    dave.Expect<codec::Push>();  // creation notice, acked
  }
  for (int i = 0; i < 10; ++i) REQUIRE(alice.c().SendToGroup("g1", "m" + std::to_string(i)).ok());
  REQUIRE(alice.c().SendToGroup("g1", "dup", 999).ok());
  REQUIRE(alice.c().SendToGroup("g1", "dup", 999).ok());
  std::vector<uint64_t> acked;
  for (int i = 0; i < 12; ++i) acked.push_back(alice.Expect<codec::Sent>().seq);
  CHECK(acked[10] == acked[11]);  // same cid: same sequence
  Member dave(mesh.Connect("dave", 0));
  for (int i = 0; i < 10; ++i) CHECK(dave.NextMessage().body == "m" + std::to_string(i));
  CHECK(dave.NextMessage().body == "dup");
  CHECK(dave.Quiet(1000));  // only once
  auto list = dave.Ask(Op("list", ""));
  CHECK(list.groups == std::vector<std::string>{"g1"});
}

TEST_CASE("group receipts are cursors: delivered to k of n, read by k of n",
          "[integration][groups]") {
  TestMesh mesh;
  Member alice(mesh.Connect("alice", 0));
  Member bob(mesh.Connect("bob", 1));
  Member carol(mesh.Connect("carol", 1));
  REQUIRE(alice.Ask(Op("create", "r", {"bob", "carol", "erin"})).ok);
  REQUIRE(alice.c().SendToGroup("r", "did you get this?").ok());
  const uint64_t seq = alice.Expect<codec::Sent>().seq;
  auto pb = bob.NextMessage();  // acked by the library: delivered
  carol.NextMessage();
  REQUIRE(bob.c().ReadGroup("r", pb.seq).ok());
  codec::GroupResult r;
  for (int i = 0; i < 50; ++i) {  // cursors travel over channels: give them a moment
    auto req = Op("receipts", "r");
    req.seq = seq;
    r = alice.Ask(req);
    if (r.delivered == 2 && r.read == 1) break;
  }
  CHECK(r.ok);
  CHECK(r.total == 3);  // bob, carol, erin (erin never connected)
  CHECK(r.delivered == 2);
  CHECK(r.read == 1);
  REQUIRE(r.members.size() == 4);
}

TEST_CASE("a group of 50 is made in one create - a create over 1,024 users is bad_request",
          "[integration][groups]") {
  TestMesh mesh;
  Member alice(mesh.Connect("alice", 0));
  std::vector<std::string> users;
  for (int i = 0; i < 1025; ++i) users.push_back("u" + std::to_string(i));
  // Group lists may hold up to 1,024 entries (the member cap), not section 3's general 32.
  REQUIRE(alice.Ask(Op("create", "fifty", {users.begin(), users.begin() + 49})).ok);
  auto info = alice.Ask(Op("info", "fifty"));
  CHECK(info.members.size() == 50);
  // Over the list limit the body cannot be decoded: an error without rid, naming the limit.
  REQUIRE(alice.c().Group(Op("create", "huge", users)).ok());
  auto e = alice.Expect<codec::Error>();
  CHECK(e.code == codec::ErrorCode::kBadRequest);
  CHECK_FALSE(e.fatal);
  CHECK_THAT(e.msg, Catch::Contains("1024"));
  CHECK(alice.Ask(Op("info", "huge")).code == codec::ErrorCode::kNotMember);  // not created
}

TEST_CASE("large groups send hints and members pull ranges", "[integration][groups]") {
  TestMesh mesh(2, 2, "--opt large_group=2");
  Member alice(mesh.Connect("alice", 0));
  Member bob(mesh.Connect("bob", 1));
  REQUIRE(alice.Ask(Op("create", "big", {"bob", "carol"})).ok);  // 3 members > 2
  bob.Expect<codec::Push>();  // the creation notice is still pushed
  for (int i = 0; i < 5; ++i) REQUIRE(alice.c().SendToGroup("big", "p" + std::to_string(i)).ok());
  uint64_t hinted = 0;
  while (hinted < 6) hinted = bob.Expect<codec::GroupHint>().seq;
  auto req = Op("pull", "big");
  req.seq = 1;  // after the creation notice
  auto r = bob.Ask(req);
  REQUIRE(r.ok);
  REQUIRE(r.messages.size() == 5);
  for (int i = 0; i < 5; ++i) {
    CHECK(r.messages[static_cast<size_t>(i)].body == "p" + std::to_string(i));
    CHECK(r.messages[static_cast<size_t>(i)].seq == static_cast<uint64_t>(i + 2));
  }
}

TEST_CASE("kill -9 of a group owner loses no acked group message", "[integration][groups]") {
  TestMesh mesh(2, 2, "--opt send_burst=1000");
  Member alice(mesh.Connect("alice", 0));
  Member bob(mesh.Connect("bob", 1));
  REQUIRE(alice.Ask(Op("create", "sturdy", {"bob"})).ok);
  std::string owner;
  {
    router::HashRing ring(mesh.map().IdsWithRole(router::Role::kGroup));
    owner = ring.Owner("sturdy");
  }
  std::map<uint64_t, std::string> unacked;
  std::set<uint64_t> acked;
  uint64_t cid = 1;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 50; ++i, ++cid) {
      unacked[cid] = "r" + std::to_string(cid);
      (void)alice.c().SendToGroup("sturdy", unacked[cid], cid);
    }
    if (round == 1) {
      std::string out;
      REQUIRE(mesh.Meshctl("kill " + owner, &out) == 0);
      REQUIRE(mesh.Meshctl("start " + owner, &out) == 0);
    }
    // Collect acks; resend what was refused or not acked (same cid: stored once).
    for (int attempt = 0; attempt < 100 && !unacked.empty(); ++attempt) {
      auto ev = alice.c().Next(300);
      if (!ev.ok()) {
        for (auto& [c, body] : unacked) (void)alice.c().SendToGroup("sturdy", body, c);
        continue;
      }
      if (auto* s = std::get_if<codec::Sent>(&*ev)) {
        unacked.erase(s->cid);
        acked.insert(s->cid);
      }
    }
  }
  CHECK(unacked.empty());
  std::set<uint64_t> got;
  uint64_t last = 0;
  while (got.size() < acked.size()) {
    auto p = bob.NextMessage();
    CHECK(p.seq > last);
    last = p.seq;
    CHECK(got.insert(p.cid).second);  // never twice
  }
  CHECK(got == acked);
}
