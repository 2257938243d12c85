// kill -9 of session nodes in the middle of a stream: no acknowledged message is lost,
// none is shown twice, and every chat stays in order. Real processes, real sockets.
#include <catch2/catch.hpp>

#include <poll.h>

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "router/hash_ring.h"
#include "tests/integration/test_mesh.h"

using namespace meshchat;
using namespace meshchat::test;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kPairs = 4;
constexpr int kPerPair = 500;
constexpr size_t kWindow = 64;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
      .count();
}

struct Sender {
  std::string user, to;
  std::optional<client::ChatClient> c;
  int next = 0;                         // next message index to send first time
  std::map<uint64_t, int64_t> unacked;  // cid -> when last sent
  std::set<uint64_t> acked;
};

struct Receiver {
  std::string user;
  std::optional<client::ChatClient> c;
  std::vector<std::pair<uint64_t, uint64_t>> got;  // (seq, cid) in arrival order
};

// Streams kPairs chats of kPerPair messages while `victim` is killed (-9) and started twice,
// then gw2 once; checks that every acked message arrived once and in order.
void StreamThroughKills(TestMesh& mesh, const std::string& victim);

}  // namespace

TEST_CASE("kill -9 of session nodes and a gateway mid-stream loses no acked message",
          "[integration][crash]") {
  TestMesh mesh(2, 2);
  // The node we kill: the first receiver's shard (also sender, owner or recipient shard for
  // other pairs, since users spread over both nodes).
  router::HashRing ring(mesh.map().IdsWithRole(router::Role::kSession));
  StreamThroughKills(mesh, ring.Owner("rcv0"));
}

TEST_CASE("kill -9 of the one process that runs every node, mid-stream, loses no acked message",
          "[integration][crash]") {
  // meshctl's default: all nodes in one meshchat-node process, linked in memory. A kill of
  // any node is a kill of all of them: every shard restarts from its LMDB file at once.
  TestMesh mesh(2, 2, "", /*split=*/false);
  std::string out;
  REQUIRE(mesh.Meshctl("status --json", &out) == 0);
  std::set<std::string> pids;
  for (size_t at = out.find("\"pid\":"); at != std::string::npos; at = out.find("\"pid\":", at + 1))
    pids.insert(out.substr(at + 6, out.find_first_of(",}", at) - at - 6));
  INFO(out);
  CHECK(pids.size() == 1);
  StreamThroughKills(mesh, "s1");
}

namespace {

void StreamThroughKills(TestMesh& mesh, const std::string& victim) {
  std::vector<Sender> senders(kPairs);
  std::vector<Receiver> receivers(kPairs);
  for (int i = 0; i < kPairs; ++i) {
    senders[i].user = "snd" + std::to_string(i);
    receivers[i].user = "rcv" + std::to_string(i);
    senders[i].to = receivers[i].user;
  }
  const uint64_t cid_base = 1'000'000;

  auto connect = [&](std::optional<client::ChatClient>& c, const std::string& user, size_t gw) {
    c.reset();
    for (int attempt = 0; attempt < 100; ++attempt) {
      auto r = client::ChatClient::Connect(mesh.Gateway(gw), mesh.Token(user), 2000);
      if (r.ok()) {
        c.emplace(std::move(r).value());
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL("could not connect " << user);
  };
  for (auto& s : senders) connect(s.c, s.user, 0);
  for (auto& r : receivers) connect(r.c, r.user, 1);

  uint64_t last_n[kPairs] = {};
  auto total_acked = [&] {
    size_t n = 0;
    for (auto& s : senders) n += s.acked.size();
    return n;
  };
  int kills = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(90);
  auto all_done = [&] {
    for (int i = 0; i < kPairs; ++i)
      if (senders[i].acked.size() < kPerPair || receivers[i].got.size() < kPerPair) return false;
    return true;
  };

  while (!all_done() && Clock::now() < deadline) {
    if ((kills == 0 && total_acked() >= 500) || (kills == 1 && total_acked() >= 1200)) {
      std::string out;
      REQUIRE(mesh.Meshctl("kill " + victim, &out) == 0);
      ++kills;
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      INFO(out);
      REQUIRE(mesh.Meshctl("start " + victim, &out) == 0);
    }
    if (kills == 2 && total_acked() >= 1600) {  // and the receivers' gateway
      std::string out;
      REQUIRE(mesh.Meshctl("kill gw2", &out) == 0);
      ++kills;
      REQUIRE(mesh.Meshctl("start gw2", &out) == 0);
    }
    const int64_t now = NowMs();
    // Send: new messages within the window, and resends of anything unacked for 3 s.
    for (int i = 0; i < kPairs; ++i) {
      Sender& s = senders[i];
      if (!s.c) continue;
      for (auto& [cid, when] : s.unacked) {
        if (now - when < 3000) continue;
        when = now;
        (void)s.c->Send(s.to, std::to_string(cid - cid_base), cid);
      }
      while (s.unacked.size() < kWindow && s.next < kPerPair) {
        const uint64_t cid = cid_base + static_cast<uint64_t>(s.next++);
        s.unacked[cid] = now;
        (void)s.c->Send(s.to, std::to_string(cid - cid_base), cid);
      }
    }
    // Receive from everyone who has something.
    std::vector<pollfd> fds;
    for (auto& s : senders) fds.push_back({s.c ? s.c->fd() : -1, POLLIN, 0});
    for (auto& r : receivers) fds.push_back({r.c ? r.c->fd() : -1, POLLIN, 0});
    poll(fds.data(), fds.size(), 20);
    for (int i = 0; i < kPairs; ++i) {
      Sender& s = senders[i];
      while (s.c && (s.c->HasBufferedEvent() || (fds[i].revents & (POLLIN | POLLHUP)))) {
        fds[i].revents = 0;
        auto ev = s.c->Next(0);
        if (!ev.ok()) {
          if (ev.status().code() != Code::kTimeout) connect(s.c, s.user, 0);  // closed
          break;
        }
        if (auto* sent = std::get_if<codec::Sent>(&*ev)) {
          s.unacked.erase(sent->cid);
          s.acked.insert(sent->cid);
        } else if (auto* e = std::get_if<codec::Error>(&*ev)) {
          // Retry soon: with the cid, that message; without, everything unacked.
          for (auto& [cid, when] : s.unacked)
            if (!e->cid || *e->cid == cid) when = now - 2800;
        }
      }
      Receiver& r = receivers[i];
      pollfd& rf = fds[kPairs + i];
      while (r.c && (r.c->HasBufferedEvent() || (rf.revents & (POLLIN | POLLHUP)))) {
        rf.revents = 0;
        auto ev = r.c->Next(0);
        if (!ev.ok()) {
          if (ev.status().code() != Code::kTimeout) {
            connect(r.c, r.user, 1);
            r.c->set_last_n(last_n[i]);
          }
          break;
        }
        if (auto* p = std::get_if<codec::Push>(&*ev)) r.got.emplace_back(p->seq, p->cid);
        last_n[i] = r.c->last_n();
      }
    }
  }
  CHECK(kills == 3);
  for (int i = 0; i < kPairs; ++i) {
    INFO("pair " << i << ": acked " << senders[i].acked.size() << ", received "
                 << receivers[i].got.size());
    CHECK(senders[i].acked.size() == static_cast<size_t>(kPerPair));
    std::set<uint64_t> seen;
    uint64_t last_seq = 0;
    size_t dups = 0, out_of_order = 0;
    for (auto [seq, cid] : receivers[i].got) {
      if (!seen.insert(cid).second) ++dups;
      if (seq <= last_seq) ++out_of_order;
      last_seq = seq;
    }
    CHECK(dups == 0);
    CHECK(out_of_order == 0);
    for (uint64_t cid : senders[i].acked) CHECK(seen.count(cid) == 1);  // none lost
  }
}

}  // namespace
