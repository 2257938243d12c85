// Adding and removing session and group nodes of a running cluster while clients chat: the
// keys that move are handed over (nodes/shard/handover.h) and every acknowledged message reaches
// its recipients exactly once and in order, including a recipient who is offline throughout.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <thread>

#include "client/media_transfer.h"
#include "router/hash_ring.h"
#include "tests/integration/test_mesh.h"
#include "tests/random_bytes.h"

using namespace meshchat;
using namespace meshchat::test;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kGroup = "team";
constexpr const char* kOffline = "zoe";  // gets messages from u0, connects only at the end

// Many clients, each with one message in flight at a time (so the order it writes is the
// order it must be delivered in). A message is resent with the same cid until its `sent`
// arrives: after an error ("cluster map changing; retry"), a timeout, or a reconnect. Runs on
// its own thread; the test thread only reads the results after Stop().
class Traffic {
 public:
  struct User {
    std::string id, token;
    size_t gw = 0;
    std::optional<client::ChatClient> c;
    uint64_t last_n = 0;  // survives reconnects, as a client app persists it
    bool busy = false;
    uint64_t cid = 0;
    std::string to, body;
    bool to_group = false;
    Clock::time_point sent_at;
    int next = 0;
    std::map<std::string, std::vector<std::string>> acked;  // "to" (or group) -> bodies
    std::map<std::string, std::vector<std::string>> got;    // "from" (or group/from) -> bodies
    std::map<std::string, uint64_t> last_seq;               // chat -> highest seq seen
    int order_errors = 0, errors = 0, reconnects = 0, resends = 0;
  };

  Traffic(const TestMesh& mesh, const std::vector<std::string>& ids, size_t gateways)
      : mesh_(mesh), gateways_(gateways) {
    for (size_t i = 0; i < ids.size(); ++i) {
      User u;
      u.id = ids[i];
      u.token = mesh.Token(ids[i]);
      u.gw = i % gateways;
      users_.push_back(std::move(u));
    }
  }
  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  // Stops writing new messages, finishes those in flight, and waits for deliveries.
  void Stop() {
    stop_ = true;
    thread_.join();
  }
  std::vector<User>& users() { return users_; }
  int written() const { return written_; }

 private:
  void Run() {
    const auto hard_deadline = Clock::now() + std::chrono::minutes(4);
    Clock::time_point quiet_since{};
    while (Clock::now() < hard_deadline) {
      bool any_busy = false;
      for (size_t i = 0; i < users_.size(); ++i) any_busy |= Turn(i);
      if (stop_ && !any_busy) {
        if (quiet_since == Clock::time_point{}) quiet_since = Clock::now();
        if (Clock::now() - quiet_since > std::chrono::seconds(3)) return;  // deliveries drained
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  // One user's turn; returns whether it has a message in flight.
  bool Turn(size_t i) {
    User& u = users_[i];
    if (!u.c) {
      auto ep = mesh_.Gateway(u.gw);
      auto c = client::ChatClient::Connect(ep, u.token, 4000);
      if (!c.ok()) {
        u.gw = (u.gw + 1) % gateways_;
        return u.busy;
      }
      u.c.emplace(std::move(c).value());
      u.c->set_last_n(u.last_n);
      if (u.busy) Resend(u);
    }
    if (!u.busy && !stop_) Write(i);
    for (;;) {
      auto ev = u.c->Next(0);
      if (!ev.ok()) {
        if (ev.status().code() != Code::kTimeout) {  // closed: reconnect, elsewhere
          u.c.reset();
          u.gw = (u.gw + 1) % gateways_;
          ++u.reconnects;
        }
        break;
      }
      u.last_n = u.c->last_n();
      if (auto* s = std::get_if<codec::Sent>(&*ev)) {
        if (u.busy && s->cid == u.cid) {
          u.busy = false;
          u.acked[u.to].push_back(u.body);
        }
      } else if (std::get_if<codec::Error>(&*ev)) {
        ++u.errors;
        if (u.busy) u.sent_at = Clock::now() - std::chrono::milliseconds(1300);  // soon
      } else if (auto* p = std::get_if<codec::Push>(&*ev)) {
        if (p->system || p->from == u.id) continue;
        const std::string chat = p->group.empty() ? p->from : p->group;
        if (p->seq <= u.last_seq[chat]) ++u.order_errors;
        u.last_seq[chat] = p->seq;
        u.got[p->group.empty() ? p->from : p->group + "/" + p->from].push_back(p->body);
      }
    }
    if (u.c && u.busy && Clock::now() - u.sent_at > std::chrono::milliseconds(1500)) Resend(u);
    return u.busy;
  }
  void Write(size_t i) {
    User& u = users_[i];
    const int k = u.next++;
    u.body = u.id + ":" + std::to_string(k);
    u.to_group = k % 3 == 2;
    if (u.to_group)
      u.to = kGroup;
    else if (i == 0 && k % 3 == 1)
      u.to = kOffline;
    else
      u.to = users_[(i + 1) % users_.size()].id;
    auto cid = u.to_group ? u.c->SendToGroup(u.to, u.body) : u.c->Send(u.to, u.body);
    u.busy = true;
    u.sent_at = Clock::now();
    u.cid = cid.ok() ? *cid : 0;
    ++written_;
    if (!cid.ok()) {
      u.cid = k + 1;  // cids start at 1 per connection; reuse a fixed one for the resend
      u.c.reset();
    }
  }
  void Resend(User& u) {
    ++u.resends;
    auto r = u.to_group ? u.c->SendToGroup(u.to, u.body, u.cid) : u.c->Send(u.to, u.body, u.cid);
    u.sent_at = Clock::now();
    if (!r.ok()) u.c.reset();
  }

  const TestMesh& mesh_;
  size_t gateways_;
  std::vector<User> users_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  int written_ = 0;
};

// How many of `users` the ring change from `before` to `after` gives another owner.
int Moved(const std::vector<std::string>& users, const std::vector<std::string>& before,
          const std::vector<std::string>& after) {
  router::HashRing a(before), b(after);
  int n = 0;
  for (const auto& u : users) n += a.Owner(u) != b.Owner(u);
  return n;
}

}  // namespace

TEST_CASE("meshctl add and remove session and group nodes under traffic: no acked loss",
          "[integration][membership][handover]") {
  TestMesh mesh(2, 2, "--groups 1");
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) ids.push_back("u" + std::to_string(i));
  // Keys really move in each step (the ring is deterministic, so this is a fixed fact).
  std::vector<std::string> conv_and_users = ids;
  conv_and_users.push_back(kOffline);
  CHECK(Moved(conv_and_users, {"s1", "s2"}, {"s1", "s2", "s3"}) > 0);
  CHECK(Moved(conv_and_users, {"s1", "s2", "s3"}, {"s2", "s3"}) > 0);
  // The group moves at least once: removing g1 moves it to g2 if adding g2 did not.
  {
    auto owner = mesh.Connect(ids[0], 0);
    codec::GroupRequest create;
    create.op = "create";
    create.group = kGroup;
    create.users.assign(ids.begin() + 1, ids.end());
    REQUIRE(owner.Group(create).ok());
    REQUIRE(Expect<codec::GroupResult>(owner).ok);
  }
  Traffic traffic(mesh, ids, 2);
  traffic.Start();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  std::string out;
  // Sessions: add s3 (keys move to it), then remove s1 (its keys move to s2 and s3).
  CHECK(mesh.Meshctl("add s3 --role session", &out) == 0);
  INFO(out);
  CHECK_THAT(out, Catch::Contains("keys handed over"));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(mesh.Meshctl("remove s1", &out) == 0);
  CHECK_THAT(out, Catch::Contains("s1 leaving"));
  CHECK_THAT(out, Catch::Contains("removed s1"));
  // Groups: add g2 (the group moves to it), then remove g1.
  CHECK(mesh.Meshctl("add g2 --role group", &out) == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(mesh.Meshctl("remove g1", &out) == 0);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  traffic.Stop();

  // Everything acked reached its recipient once, in order; nothing else arrived.
  auto& users = traffic.users();
  std::map<std::string, const Traffic::User*> by_id;
  for (const auto& u : users) by_id[u.id] = &u;
  size_t acked_total = 0;
  for (const auto& u : users) {
    INFO("sender " << u.id << " errors " << u.errors << " resends " << u.resends);
    CHECK_FALSE(u.busy);  // every message got its `sent` in the end
    CHECK(u.order_errors == 0);
    for (const auto& [to, bodies] : u.acked) {
      acked_total += bodies.size();
      if (to == kGroup) {
        for (const auto& m : users)
          if (m.id != u.id) {
            auto it = m.got.find(std::string(kGroup) + "/" + u.id);
            INFO("member " << m.id);
            CHECK((it == m.got.end() ? std::vector<std::string>{} : it->second) == bodies);
          }
      } else if (to != kOffline) {
        auto it = by_id.at(to)->got.find(u.id);
        INFO("recipient " << to);
        CHECK((it == by_id.at(to)->got.end() ? std::vector<std::string>{} : it->second) == bodies);
      }
    }
  }
  CHECK(acked_total > 100);
  int errors = 0, resends = 0, reconnects = 0;
  for (const auto& u : users) {
    errors += u.errors;
    resends += u.resends;
    reconnects += u.reconnects;
  }
  WARN("hand-over under traffic: " << acked_total << " messages acked, " << errors
                                   << " retryable errors, " << resends << " resends, " << reconnects
                                   << " reconnects");
  // The offline recipient's inbox moved with its key (perhaps twice): all of it is there.
  auto zoe = mesh.Connect(kOffline, 1);
  std::vector<std::string> zoe_got;
  const auto& want = users[0].acked[kOffline];
  while (zoe_got.size() < want.size()) {
    auto ev = zoe.Next(10000);
    REQUIRE(ev.ok());
    if (auto* p = std::get_if<codec::Push>(&*ev)) zoe_got.push_back(p->body);
  }
  CHECK(zoe_got == want);
  CHECK_FALSE(zoe.Next(1000).ok());  // and nothing more

  REQUIRE(mesh.Meshctl("status --json", &out) == 0);
  CHECK(out.find("\"id\":\"s1\"") == std::string::npos);
  CHECK(out.find("\"id\":\"g1\"") == std::string::npos);
  CHECK_THAT(out, Catch::Contains("\"id\":\"s3\""));
  CHECK_THAT(out, Catch::Contains("\"epoch\":7,"));
  CHECK_THAT(out, Catch::Contains("\"handover\":0,"));
  CHECK(out.find("\"handover\":1") == std::string::npos);

  // Bad input: a node that does not answer blocks a key move (and is named); the last node of
  // a role stays.
  REQUIRE(mesh.Meshctl("kill p1", &out) == 0);
  CHECK(mesh.Meshctl("add s9 --role session", &out) == 1);
  CHECK_THAT(out, Catch::Contains("node p1 does not answer"));
  REQUIRE(mesh.Meshctl("start p1", &out) == 0);
  CHECK(mesh.Meshctl("remove g2", &out) == 1);
  CHECK_THAT(out, Catch::Contains("cannot remove the last group node"));
  CHECK(mesh.Meshctl("status", &out) == 0);  // the failed attempts changed nothing
  CHECK(out.find("s9") == std::string::npos);
}

namespace {
codec::Presence AskPresence(client::ChatClient& c, const std::string& user) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    REQUIRE(c.QueryPresence({user}).ok());
    for (;;) {
      auto ev = c.Next(3000);
      REQUIRE(ev.ok());
      if (auto* p = std::get_if<codec::Presence>(&*ev); p && p->user == user) return *p;
      if (std::get_if<codec::Error>(&*ev)) break;  // moving: ask again
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  FAIL("no presence answer for " << user);
  return {};
}
}  // namespace

TEST_CASE("meshctl add and remove presence nodes: privacy, contacts and last seen move along",
          "[integration][membership][handover]") {
  TestMesh mesh(2, 2, "--groups 0");
  std::vector<std::string> users;
  for (int i = 0; i < 9; ++i) users.push_back("v" + std::to_string(i));
  CHECK(Moved(users, {"p1"}, {"p1", "p2"}) > 0);
  auto pal = mesh.Connect("pal", 0);
  auto stranger = mesh.Connect("stranger", 1);
  std::map<std::string, uint64_t> seen;
  for (size_t i = 0; i < users.size(); ++i) {
    auto c = mesh.Connect(users[i], i % 2);
    REQUIRE(c.Send("pal", "hi").ok());  // a chat: each is now the other's contact
    Expect<codec::Sent>(c);
    if (i % 3 == 0) REQUIRE(c.SetPrivacy(codec::PrivacyMode::kNobody).ok());
    if (i % 3 == 1) REQUIRE(c.SetPrivacy(codec::PrivacyMode::kContacts).ok());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // last seen written
  for (size_t i = 2; i < users.size(); i += 3) {
    seen[users[i]] = AskPresence(stranger, users[i]).last_seen;
    REQUIRE(seen[users[i]] > 0);
  }
  auto check = [&] {
    for (size_t i = 0; i < users.size(); ++i) {
      INFO(users[i]);
      const auto by_stranger = AskPresence(stranger, users[i]);
      const auto by_pal = AskPresence(pal, users[i]);
      if (i % 3 == 0) {  // nobody
        CHECK(by_stranger.last_seen == 0);
        CHECK(by_pal.last_seen == 0);
      } else if (i % 3 == 1) {  // contacts
        CHECK(by_stranger.last_seen == 0);
        CHECK(by_pal.last_seen > 0);
      } else {  // everyone, with the last seen it had
        CHECK(by_stranger.last_seen == seen[users[i]]);
      }
    }
  };
  std::string out;
  REQUIRE(mesh.Meshctl("add p2 --role presence", &out) == 0);
  INFO(out);
  check();
  REQUIRE(mesh.Meshctl("remove p1", &out) == 0);
  check();
  // Watching works through the added node's publisher, which gateways follow since the map
  // change: v2 comes online and the watcher hears it.
  REQUIRE(stranger.WatchPresence({"v2"}).ok());
  bool online = false;
  // The watch is answered with v2's state; the gateway's subscription then needs a moment to
  // reach the publisher (PUB/SUB carries hints: one sent before that is not seen).
  for (auto until = Clock::now() + std::chrono::seconds(5); Clock::now() < until;) {
    auto ev = stranger.Next(500);
    if (!ev.ok()) continue;
    if (auto* p = std::get_if<codec::Presence>(&*ev); p && p->user == "v2") break;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  {
    auto v2 = mesh.Connect("v2", 1);
    REQUIRE(v2.Typing("pal").ok());
    for (auto until = Clock::now() + std::chrono::seconds(8); !online && Clock::now() < until;) {
      auto ev = stranger.Next(500);
      if (!ev.ok()) continue;
      if (auto* p = std::get_if<codec::Presence>(&*ev); p && p->user == "v2") online = p->online;
    }
  }
  CHECK(online);
  REQUIRE(mesh.Meshctl("status --json", &out) == 0);
  CHECK(out.find("\"id\":\"p1\"") == std::string::npos);
  CHECK_THAT(out, Catch::Contains("\"id\":\"p2\""));
}

namespace {
// Media moving between media nodes on the store `up_args` picks; see the two cases below.
void MediaMoves(const std::string& up_args) {
  TestMesh mesh(2, 2, "--groups 0 " + up_args);
  auto alice = mesh.Connect("alice", 0);
  auto bob = mesh.Connect("bob", 1);
  std::vector<std::pair<codec::MediaRef, std::string>> stored;
  for (uint32_t i = 0; i < 6; ++i) {
    const std::string photo = RandomBytes(200'000 + i, 100 + i);
    auto ref = client::UploadMedia(alice, photo, "image/png");
    REQUIRE(ref.ok());
    stored.emplace_back(*ref, photo);
  }
  std::vector<std::string> ids;
  for (const auto& [ref, photo] : stored) ids.push_back(codec::HexOf(ref.id));
  CHECK(Moved(ids, {"m1"}, {"m1", "m2"}) > 0);
  // Half an upload: its first two chunks are stored, the rest comes after the move.
  const std::string big = RandomBytes(1'000'000, 7);
  REQUIRE(alice.UploadBegin({1, big.size(), "image/jpeg", client::Sha256(big)}).ok());
  const auto begun = Expect<codec::UploadState>(alice);
  for (uint64_t off = 0; off < 2 * begun.chunk; off += begun.chunk) {
    REQUIRE(alice.SendMedia(begun.id, codec::UploadChunk{off, big.substr(off, begun.chunk)}).ok());
    Expect<codec::UploadState>(alice);
  }
  auto fetch_all = [&] {
    for (const auto& [ref, photo] : stored) {
      INFO(codec::HexOf(ref.id));
      auto got = client::FetchMedia(bob, ref);  // bob holds the tickets (as from messages)
      REQUIRE(got.ok());
      CHECK(*got == photo);
    }
  };
  std::string out;
  REQUIRE(mesh.Meshctl("add m2 --role media", &out) == 0);
  INFO(out);
  fetch_all();
  REQUIRE(mesh.Meshctl("remove m1", &out) == 0);
  fetch_all();
  // The half upload moved to m2 with its stored bytes and completes there.
  auto st = client::QueryUpload(alice, begun.id);
  REQUIRE(st.ok());
  CHECK(st->next == 2 * begun.chunk);
  auto ref = client::ResumeUpload(alice, begun.id, big);
  REQUIRE(ref.ok());
  auto back = client::FetchMedia(bob, *ref);
  REQUIRE(back.ok());
  CHECK(*back == big);
  REQUIRE(mesh.Meshctl("status --json", &out) == 0);
  CHECK(out.find("\"id\":\"m1\"") == std::string::npos);
}
}  // namespace

TEST_CASE("meshctl add and remove media nodes: stored and half-uploaded media move along",
          "[integration][membership][handover][media]") {
  MediaMoves("");  // each node's own directory: the bytes move with the metadata
}

TEST_CASE("meshctl add and remove media nodes on a real Ceph cluster",
          "[integration][membership][handover][media][rados]") {
  const char* conf = std::getenv("MESHCHAT_CEPH_CONF");
  if (!conf) FAIL("MESHCHAT_CEPH_CONF is not set: run scripts/ceph-dev up (scripts/test does)");
  MediaMoves(std::string("--media rados --ceph-conf ") + conf);  // one pool: metadata moves
}
