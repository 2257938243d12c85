// Presence through a real mesh: online, typing and last seen; application activity; privacy;
// a presence node restart.
#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <thread>

#include "tests/integration/test_mesh.h"

using namespace meshchat;
using namespace meshchat::test;
using namespace std::chrono_literals;

namespace {

// The next presence event about `user`.
codec::Presence PresenceOf(client::ChatClient& c, const std::string& user, int timeout_ms = 5000) {
  while (true) {
    auto p = Expect<codec::Presence>(c, timeout_ms);
    if (p.user == user) return p;
  }
}

codec::Presence Ask(client::ChatClient& c, const std::string& user) {
  REQUIRE(c.QueryPresence({user}).ok());
  return PresenceOf(c, user);
}

// Asks until `ok` holds (settings and activity travel asynchronously), for at most 5 s.
template <typename Pred>
codec::Presence AskUntil(client::ChatClient& c, const std::string& user, Pred ok) {
  codec::Presence p;
  for (int i = 0; i < 50; ++i) {
    p = Ask(c, user);
    if (ok(p)) break;
    std::this_thread::sleep_for(100ms);
  }
  return p;
}
const auto kSeen = [](const codec::Presence& p) { return p.last_seen > 0; };
const auto kHidden = [](const codec::Presence& p) { return p.last_seen == 0 && !p.online; };

}  // namespace

TEST_CASE("A watches B: online, typing, then last seen after B leaves", "[integration][presence]") {
  TestMesh mesh(2, 2, "--opt online_ms=1500");
  auto a = mesh.Connect("alice", 0);
  REQUIRE(a.WatchPresence({"bob"}).ok());
  auto before = PresenceOf(a, "bob");
  CHECK_FALSE(before.online);
  CHECK(before.last_seen == 0);  // never seen
  uint64_t seen_at = 0;
  {
    auto b = mesh.Connect("bob", 1);
    REQUIRE(b.Typing("alice").ok());  // user activity, and a typing notice for alice
    std::optional<codec::TypingNotice> typing;
    std::optional<codec::Presence> online;
    while (!typing || !online) {  // they travel different paths: either may come first
      auto ev = a.Next(5000);
      REQUIRE(ev.ok());
      if (auto* t = std::get_if<codec::TypingNotice>(&*ev)) typing = *t;
      if (auto* p = std::get_if<codec::Presence>(&*ev); p && p->user == "bob") online = *p;
    }
    CHECK(typing->from == "bob");
    CHECK(typing->chat == "bob");
    CHECK(typing->on);
    CHECK(typing->ttl_ms > 0);
    CHECK(online->online);
    seen_at = online->last_seen;
    CHECK(seen_at > 0);
  }  // bob leaves
  auto gone = PresenceOf(a, "bob", 8000);
  CHECK_FALSE(gone.online);
  CHECK(gone.last_seen == seen_at);
}

TEST_CASE("traffic the app makes by itself does not refresh last seen", "[integration][presence]") {
  TestMesh mesh(2, 2, "--opt online_ms=1000");
  auto a = mesh.Connect("alice", 0);
  auto b = mesh.Connect("bob", 1);
  REQUIRE(b.Send("alice", "hi").ok());  // user activity
  Expect<codec::Sent>(b);
  // Online ends a second after the activity (online_ms=1000).
  const auto first =
      AskUntil(a, "bob", [](const codec::Presence& p) { return p.last_seen > 0 && !p.online; });
  CHECK(first.last_seen > 0);
  CHECK_FALSE(first.online);
  // Resends, acks, pings and reconnects are the app's own doing.
  REQUIRE(b.Send("alice", "hi", 77, /*app=*/true).ok());
  Expect<codec::Sent>(b);
  REQUIRE(b.Ping(1).ok());
  Expect<client::Pong>(b);
  auto b2 = mesh.Connect("bob", 0, "laptop");
  std::this_thread::sleep_for(300ms);
  const auto after = Ask(a, "bob");
  CHECK(after.last_seen == first.last_seen);
  CHECK_FALSE(after.online);
}

TEST_CASE("privacy: everyone, contacts, nobody - who hides sees no one",
          "[integration][presence]") {
  TestMesh mesh;
  auto alice = mesh.Connect("alice", 0);
  auto bob = mesh.Connect("bob", 1);
  auto carol = mesh.Connect("carol", 0);
  REQUIRE(bob.Send("alice", "we are contacts now").ok());  // a chat: contacts
  Expect<codec::Sent>(bob);
  REQUIRE(bob.Typing("carol").ok());                   // activity
  CHECK(AskUntil(carol, "bob", kSeen).last_seen > 0);  // everyone (default)

  REQUIRE(bob.SetPrivacy(codec::PrivacyMode::kContacts).ok());
  // Looks like a user never seen: nothing leaks.
  CHECK(kHidden(AskUntil(carol, "bob", kHidden)));
  CHECK(Ask(alice, "bob").last_seen > 0);  // a contact still sees him

  REQUIRE(bob.SetPrivacy(codec::PrivacyMode::kNobody).ok());
  CHECK(kHidden(AskUntil(alice, "bob", kHidden)));
  REQUIRE(alice.Typing("carol").ok());
  CHECK(AskUntil(carol, "alice", kSeen).last_seen > 0);
  CHECK(kHidden(Ask(bob, "alice")));  // bob hides his own: he sees no one's
}

TEST_CASE("last seen survives a presence node restart", "[integration][presence]") {
  TestMesh mesh;
  auto a = mesh.Connect("alice", 0);
  {
    auto b = mesh.Connect("bob", 1);
    REQUIRE(b.Typing("alice").ok());
  }
  const auto before = AskUntil(a, "bob", kSeen);
  REQUIRE(before.last_seen > 0);
  std::this_thread::sleep_for(1500ms);  // stored at most a second after it happened
  std::string out;
  REQUIRE(mesh.Meshctl("kill p1", &out) == 0);
  REQUIRE(mesh.Meshctl("start p1", &out) == 0);
  codec::Presence after;
  for (int i = 0; i < 50; ++i) {  // the gateway's link to the new process comes up
    REQUIRE(a.QueryPresence({"bob"}).ok());
    auto ev = a.Next(300);
    if (ev.ok() && std::holds_alternative<codec::Presence>(*ev)) {
      after = std::get<codec::Presence>(*ev);
      break;
    }
  }
  CHECK(after.last_seen == before.last_seen);
}
