// PresenceCore on a fake clock: thresholds and throttling without sleeping.
#include <catch2/catch.hpp>

#include "nodes/presence/presence_core.h"
#include "nodes/shard/records.h"
#include "store/mem_kv_store.h"

using namespace meshchat;
using namespace meshchat::codec;
using namespace meshchat::nodes;

namespace {

struct P {
  FakeClock clock;
  store::MemKvStore kv;
  PresenceCore core{PresenceConfig{"p1", 1, 5000, 1000}, clock, kv};
  Effects fx;
  std::vector<Publication> pub;

  void Env(MeshType t, const std::string& key, const Stamp& s, uint64_t arg = 0,
           std::string body = "") {
    Envelope e;
    e.type = t;
    e.key = key;
    e.stamp = s;
    e.arg = arg;
    e.body = std::move(body);
    core.OnEnvelope("s1", std::move(e), fx, pub);
  }
  void Activity(const std::string& user, int devices, bool user_activity) {
    Env(MeshType::kActivity, user, {}, user_activity ? static_cast<uint64_t>(clock.WallMs()) : 0,
        EncodeUints({static_cast<uint64_t>(devices)}));
  }
  Presence Answer(const std::string& target, const std::string& asker, bool hides = false) {
    fx.Clear();
    Env(MeshType::kPresenceQuery, target, Stamp{asker, "d", 1, "gw1"}, hides ? 1 : 0);
    REQUIRE(fx.mesh.size() == 1);
    Presence p;
    REQUIRE(Decode(fx.mesh[0].env.body, p) == DecodeStatus::kOk);
    return p;
  }
};

}  // namespace

TEST_CASE("online needs a connected device and user activity within the threshold",
          "[nodes][presence]") {
  P p;
  p.Activity("bob", 1, false);  // connected, but no user activity yet
  CHECK_FALSE(p.core.StateOf("bob").online);
  p.Activity("bob", 1, true);
  const uint64_t t = static_cast<uint64_t>(p.clock.WallMs());
  CHECK(p.core.StateOf("bob").online);
  p.clock.Advance(5000);
  CHECK(p.core.StateOf("bob").online);
  p.clock.Advance(1);
  CHECK_FALSE(p.core.StateOf("bob").online);  // idle past the threshold
  CHECK(p.core.StateOf("bob").last_seen == t);
  p.Activity("bob", 1, true);
  p.Activity("bob", 0, false);  // the last device goes away
  CHECK_FALSE(p.core.StateOf("bob").online);
}

TEST_CASE("watched users' changes are published, at most once a second", "[nodes][presence]") {
  P p;
  p.Env(MeshType::kPresenceWatch, "bob", Stamp{"alice", "d", 1, "gw1"});
  REQUIRE(p.fx.mesh.size() == 2);  // the answer, and the gateway's permission to watch
  CHECK(p.fx.mesh[1].env.type == MeshType::kWatchOk);
  p.Activity("bob", 1, true);
  REQUIRE(p.pub.size() == 1);  // online
  p.pub.clear();
  p.clock.Advance(300);
  p.Activity("bob", 1, true);  // still online, last seen moves: not news
  CHECK(p.pub.empty());
  p.Activity("bob", 0, false);  // offline 0.3 s after going online: throttled...
  CHECK(p.pub.empty());
  p.clock.Advance(800);
  p.core.OnTick(p.pub);  // ...and published when the second is up
  REQUIRE(p.pub.size() == 1);
  Presence last;
  REQUIRE(Decode(p.pub[0].body, last) == DecodeStatus::kOk);
  CHECK_FALSE(last.online);
  p.pub.clear();
  p.core.OnTick(p.pub);
  CHECK(p.pub.empty());  // nothing new
}

TEST_CASE("online times out into last seen for watchers", "[nodes][presence]") {
  P p;
  p.Env(MeshType::kPresenceWatch, "bob", Stamp{"alice", "d", 1, "gw1"});
  p.Activity("bob", 1, true);
  p.pub.clear();
  p.clock.Advance(5001);
  p.core.OnTick(p.pub);
  REQUIRE(p.pub.size() == 1);
  Presence now;
  REQUIRE(Decode(p.pub[0].body, now) == DecodeStatus::kOk);
  CHECK_FALSE(now.online);
  CHECK(now.last_seen > 0);
}

TEST_CASE("privacy decides who sees anything, without revealing itself", "[nodes][presence]") {
  P p;
  p.Activity("bob", 1, true);
  p.Env(MeshType::kContact, "bob", {}, 0, "alice");
  CHECK(p.Answer("bob", "carol").last_seen > 0);  // everyone
  p.Env(MeshType::kPrivacy, "bob", {}, static_cast<uint64_t>(PrivacyMode::kContacts));
  CHECK(p.Answer("bob", "alice").last_seen > 0);
  const Presence hidden = p.Answer("bob", "carol");
  CHECK(hidden == Presence{"bob", false, 0});  // the same as a user never seen
  CHECK(p.Answer("nobody-ever", "carol") == Presence{"nobody-ever", false, 0});
  p.Env(MeshType::kPrivacy, "bob", {}, static_cast<uint64_t>(PrivacyMode::kNobody));
  CHECK(p.Answer("bob", "alice").last_seen == 0);
  CHECK(p.Answer("bob", "bob").last_seen > 0);  // oneself, always
  p.Env(MeshType::kPrivacy, "bob", {}, static_cast<uint64_t>(PrivacyMode::kEveryone));
  CHECK(p.Answer("bob", "carol", /*hides=*/true).last_seen == 0);
  // A watch that is not allowed registers nothing.
  p.fx.Clear();
  p.Env(MeshType::kPresenceWatch, "bob", Stamp{"carol", "d", 1, "gw1"}, 1);
  CHECK(p.fx.mesh.size() == 1);
}

TEST_CASE("last seen is stored by Flush and read back after a restart", "[nodes][presence]") {
  FakeClock clock;
  store::MemKvStore kv;
  uint64_t t = 0;
  {
    PresenceCore core{PresenceConfig{"p1", 1, 5000, 1000}, clock, kv};
    Effects fx;
    std::vector<Publication> pub;
    Envelope e;
    e.type = MeshType::kActivity;
    e.key = "bob";
    e.arg = t = static_cast<uint64_t>(clock.WallMs());
    e.body = EncodeUints({1});
    core.OnEnvelope("s1", std::move(e), fx, pub);
    REQUIRE(core.Flush().ok());
  }
  PresenceCore again{PresenceConfig{"p1", 1, 5000, 1000}, clock, kv};
  CHECK(again.StateOf("bob").last_seen == t);
  CHECK_FALSE(again.StateOf("bob").online);  // devices are soft state: unknown until told
}

TEST_CASE("under load a watched user's changes go out at most every 10 s, the newest last",
          "[nodes][presence][overload]") {
  P p;
  p.Env(MeshType::kPresenceWatch, "bob", Stamp{"alice", "d", 1, "gw1"});
  p.core.SetLoad({LoadLevel::kShedHints, false});
  p.Activity("bob", 1, true);
  REQUIRE(p.pub.size() == 1);  // online: news at once, the first time
  p.pub.clear();
  p.clock.Advance(2000);
  p.Activity("bob", 0, false);  // offline 2 s later: held (at normal load it would go)
  p.core.OnTick(p.pub);
  CHECK(p.pub.empty());
  p.clock.Advance(2000);
  p.Activity("bob", 1, true);  // and online again: still held, the offline is shed
  p.Activity("bob", 0, false);
  CHECK(p.core.shed().presence == 1);
  p.clock.Advance(6000);
  p.core.OnTick(p.pub);
  REQUIRE(p.pub.size() == 1);  // 10 s after the last: the newest state only
  Presence now;
  REQUIRE(Decode(p.pub[0].body, now) == DecodeStatus::kOk);
  CHECK_FALSE(now.online);
}
