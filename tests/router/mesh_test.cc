// Two Mesh instances in one process, each on its own thread and reactor, talking over real
// ZeroMQ TCP sockets on loopback.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "router/inbound_delay.h"
#include "router/mesh.h"
#include "tests/free_port.h"

using namespace meshchat;
using namespace meshchat::router;
using meshchat::test::FreePort;

namespace {

ClusterMap TwoNodeMap() {
  ClusterMap m;
  m.epoch = 1;
  for (const char* id : {"a", "b"}) {
    NodeInfo n;
    n.id = id;
    n.role = Role::kSession;
    n.mesh = "tcp://127.0.0.1:" + std::to_string(FreePort());
    m.nodes.push_back(n);
  }
  return m;
}

// Runs a node's reactor on its own thread: the sockets are created and used only there.
struct NodeThread {
  std::thread t;
  Reactor* reactor = nullptr;
  std::promise<void> ready;
  void Stop() {
    if (reactor) reactor->Stop();
    t.join();
  }
};

// Real time plus jumps: timers and heartbeats run as usual, and a test skips ahead instead
// of sleeping through a timeout. Thread-safe: the loop reads it while the test jumps.
class JumpingClock final : public Clock {
 public:
  int64_t WallMs() const override { return real_.WallMs() + skipped_.load(); }
  int64_t MonoMs() const override { return real_.MonoMs() + skipped_.load(); }
  void Jump(int64_t ms) { skipped_ += ms; }

 private:
  SystemClock real_;
  std::atomic<int64_t> skipped_{0};
};

}  // namespace

TEST_CASE("peers see each other, exchange envelopes in order, and talk to themselves",
          "[router][mesh]") {
  const ClusterMap map = TwoNodeMap();
  zmq::context_t ctx;
  std::atomic<int> b_received{0};
  std::atomic<bool> order_ok{true};
  std::atomic<int> a_self{0};
  std::atomic<bool> a_saw_b_up{false};
  constexpr int kCount = 5000;

  std::promise<Reactor*> b_ready;
  std::thread b([&] {
    Reactor r;
    Mesh mesh(ctx, r, map, "b", 22);
    uint64_t expect = 1;
    mesh.OnEnvelope([&](const std::string& from, codec::Envelope&& env) {
      if (from != "a" || env.incarnation != 11 || env.req != expect) order_ok = false;
      ++expect;
      if (++b_received == kCount) r.Stop();
    });
    mesh.Start();
    b_ready.set_value(&r);
    r.Run();
  });
  Reactor* rb = b_ready.get_future().get();

  std::thread a([&] {
    Reactor r;
    Mesh mesh(ctx, r, map, "a", 11);
    mesh.OnEnvelope([&](const std::string& from, codec::Envelope&&) {
      if (from == "a") ++a_self;
    });
    mesh.OnPeerUp([&](const std::string& node, bool) {
      if (node != "b") return;
      a_saw_b_up = true;
      // Send to self once, then a burst to b.
      codec::Envelope self;
      self.type = codec::MeshType::kDeliver;
      (void)mesh.Send("a", self);
      for (int i = 1; i <= kCount; ++i) {
        codec::Envelope e;
        e.type = codec::MeshType::kDeliver;
        e.req = static_cast<uint64_t>(i);
        e.body = std::string(100, 'x');
        if (!mesh.Send("b", std::move(e)).ok()) order_ok = false;
      }
    });
    r.After(10000, [&] { r.Stop(); });  // bound the test
    r.Every(20, [&] {
      if (b_received == kCount && a_self == 1) r.Stop();
    });
    mesh.Start();
    r.Run();
  });
  a.join();
  rb->Stop();
  b.join();
  CHECK(a_saw_b_up);
  CHECK(b_received == kCount);
  CHECK(order_ok);
  CHECK(a_self == 1);
}

TEST_CASE("envelopes lost in the middle of a link are noticed by the receiver", "[router][mesh]") {
  const ClusterMap map = TwoNodeMap();
  zmq::context_t ctx;
  std::atomic<int> received{0};
  std::atomic<uint64_t> gaps{0}, lost{0};
  std::atomic<bool> order_ok{true};
  constexpr int kCount = 100;
  std::promise<Reactor*> b_ready;
  std::thread b([&] {
    Reactor r;
    Mesh mesh(ctx, r, map, "b", 22);
    uint64_t last = 0;
    mesh.OnEnvelope([&](const std::string&, codec::Envelope&& env) {
      if (env.req <= last) order_ok = false;
      last = env.req;
      if (env.req == kCount) r.Stop();
      ++received;
    });
    mesh.OnLinkGap([&](const std::string& from, uint64_t n) {
      if (from == "a") ++gaps, lost += n;
    });
    mesh.Start();
    b_ready.set_value(&r);
    r.After(10000, [&] { r.Stop(); });
    r.Run();
  });
  Reactor* rb = b_ready.get_future().get();
  std::thread a([&] {
    Reactor r;
    Mesh mesh(ctx, r, map, "a", 11);
    // Ten envelopes in the middle of the burst are lost on the way.
    mesh.SetOutboundFault([](const std::string&, const codec::Envelope& e) {
      return e.type == codec::MeshType::kDeliver && e.req >= 50 && e.req < 60;
    });
    mesh.OnPeerUp([&](const std::string& node, bool) {
      if (node != "b") return;
      for (int i = 1; i <= kCount; ++i) {
        codec::Envelope e;
        e.type = codec::MeshType::kDeliver;
        e.req = static_cast<uint64_t>(i);
        (void)mesh.Send("b", std::move(e));
      }
    });
    r.Every(20, [&] {
      if (received >= kCount - 10) r.Stop();
    });
    r.After(10000, [&] { r.Stop(); });
    mesh.Start();
    r.Run();
  });
  a.join();
  rb->Stop();
  b.join();
  CHECK(received == kCount - 10);
  CHECK(order_ok);
  CHECK(gaps == 1);
  CHECK(lost == 10);
}

TEST_CASE("a batch for a peer that is not running is counted as failed, not queued forever",
          "[router][mesh]") {
  const ClusterMap map = TwoNodeMap();
  zmq::context_t ctx;
  Reactor r;
  Mesh mesh(ctx, r, map, "a", 1);
  mesh.Start();
  codec::Envelope e;
  e.type = codec::MeshType::kDeliver;
  REQUIRE(mesh.Send("b", e).ok());  // queued for the end of the turn
  CHECK(mesh.Send("nobody", e).code() == Code::kNotFound);
  r.After(0, [&] { r.Stop(); });  // one turn: the flush finds no connection (ZMQ_IMMEDIATE)
  r.Run();
  CHECK(mesh.stats().send_failed >= 1);
  CHECK(mesh.stats().sent == 0);
  CHECK_FALSE(mesh.IsUp("b"));
}

TEST_CASE("a silent peer is declared down, and a restart is noticed", "[router][mesh]") {
  const ClusterMap map = TwoNodeMap();
  zmq::context_t ctx;
  std::vector<std::string> events;
  std::mutex mu;
  auto log = [&](std::string s) {
    std::lock_guard<std::mutex> l(mu);
    events.push_back(std::move(s));
  };
  auto seen = [&](const std::string& what, int ms = 3000) {  // waits up to `ms` of real time
    for (int i = 0; i < ms / 10; ++i) {
      {
        std::lock_guard<std::mutex> l(mu);
        if (std::find(events.begin(), events.end(), what) != events.end()) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };
  MeshOptions fast;
  fast.heartbeat_ms = 50;  // the silence timeout stays the default 3.5 s: a's clock jumps it

  auto run_b = [&](uint64_t inc, int ms) {
    Reactor r;
    Mesh mesh(ctx, r, map, "b", inc, fast);
    mesh.Start();
    r.After(ms, [&] { r.Stop(); });
    r.Run();
  };
  JumpingClock a_clock;
  std::atomic<Reactor*> a_reactor{nullptr};
  std::thread a([&] {
    Reactor r(a_clock);
    Mesh mesh(ctx, r, map, "a", 1, fast);
    mesh.OnPeerUp(
        [&](const std::string& n, bool restarted) { log(n + (restarted ? " restarted" : " up")); });
    mesh.OnPeerDown([&](const std::string& n) { log(n + " down"); });
    mesh.Start();
    a_reactor = &r;
    r.Run();
  });
  std::thread b1([&] { run_b(100, 400); });
  b1.join();
  REQUIRE(seen("b up"));
  // b has been silent longer than the timeout. A heartbeat of b1 still on its way when the
  // clock jumped (a loaded machine) makes b heard again: then jump once more.
  bool declared_down = false;
  for (int i = 0; i < 15 && !declared_down; ++i) {
    a_clock.Jump(fast.dead_after_ms + 500);
    declared_down = seen("b down", 200);
  }
  CHECK(declared_down);
  std::thread b2([&] { run_b(200, 400); });
  b2.join();
  CHECK(seen("b restarted"));
  while (!a_reactor.load()) std::this_thread::yield();
  a_reactor.load()->Stop();
  a.join();
  std::lock_guard<std::mutex> l(mu);
  // On a loaded machine b1 may miss a heartbeat window and flap (down, up) before it stops:
  // what must hold is up first, a down while b was gone, and the new process seen as restarted.
  CHECK(events.front() == "b up");
  auto down = std::find(events.begin(), events.end(), "b down");
  CHECK(down != events.end());
  CHECK(std::find(down, events.end(), "b restarted") != events.end());
}

TEST_CASE(
    "inbound delay: above each peer's baseline - an overdue heartbeat counts while the "
    "peer still talks",
    "[router][overload]") {
  router::InboundDelay d(1000);
  int64_t now = 1'000'000;
  // Peer a's clock is 500 ms behind ours: its delays read 502 when they are 2.
  for (int i = 0; i < 5; ++i, now += 1000) d.OnHeartbeat("a", now - 502, now);
  CHECK(d.TakeWorstMs(now) == 0);
  d.OnHeartbeat("a", now - 802, now);  // waited 300 ms more than usual
  CHECK(d.TakeWorstMs(now) == 300);
  CHECK(d.TakeWorstMs(now) == 0);  // taken
  // Its next heartbeats are stuck behind a backlog: older envelopes still arrive.
  const int64_t last_hb = now;
  now += 2500;
  d.OnEnvelope("a", now);
  // The one it sent 1 s after the last (which itself waited 300 ms extra) is 1.8 s late.
  CHECK(d.TakeWorstMs(now) == 2500 + 300 - 1000);
  // A peer that falls silent is down, not queued: nothing counted.
  router::InboundDelay quiet(1000);
  quiet.OnHeartbeat("b", last_hb, last_hb);
  CHECK(quiet.TakeWorstMs(last_hb + 10'000) == 0);
}

TEST_CASE("co-hosted meshes on one reactor link in memory: order, liveness, no ZeroMQ send",
          "[router][mesh]") {
  const ClusterMap map = TwoNodeMap();
  zmq::context_t ctx_a, ctx_b;  // separate contexts, as NodeInstance makes them
  Reactor r;
  LocalLinks local;
  MeshOptions opts;
  opts.local = &local;
  Mesh a(ctx_a, r, map, "a", 11, opts);
  Mesh b(ctx_b, r, map, "b", 22, opts);
  CHECK(local.size() == 2);
  constexpr int kCount = 5000;
  int b_received = 0, a_replies = 0;
  bool order_ok = true, a_saw_b_up = false, b_saw_a_up = false;
  b.OnEnvelope([&](const std::string& from, codec::Envelope&& env) {
    if (from != "a" || env.incarnation != 11 || env.epoch != 1 ||
        env.req != static_cast<uint64_t>(b_received + 1))
      order_ok = false;
    ++b_received;
    if (env.req == kCount) {  // a reply sent from inside a handler arrives too
      codec::Envelope back;
      back.type = codec::MeshType::kDeliverResult;
      (void)b.Send("a", std::move(back));
    }
  });
  b.OnPeerUp([&](const std::string& node, bool) { b_saw_a_up = node == "a"; });
  a.OnEnvelope([&](const std::string& from, codec::Envelope&& env) {
    if (from == "b" && env.type == codec::MeshType::kDeliverResult) ++a_replies;
  });
  a.OnPeerUp([&](const std::string& node, bool) {
    if (node != "b" || a_saw_b_up) return;
    a_saw_b_up = true;
    for (int i = 1; i <= kCount; ++i) {
      codec::Envelope e;
      e.type = codec::MeshType::kDeliver;
      e.req = static_cast<uint64_t>(i);
      e.body = std::string(100, 'x');
      if (!a.Send("b", std::move(e)).ok()) order_ok = false;
    }
  });
  a.Start();
  b.Start();
  r.After(10000, [&] { r.Stop(); });  // bound the test
  r.Every(5, [&] {
    if (a_replies == 1) r.Stop();
  });
  r.Run();
  CHECK(a_saw_b_up);
  CHECK(b_saw_a_up);
  CHECK(a.IsUp("b"));
  CHECK(b.IsUp("a"));
  CHECK(b_received == kCount);
  CHECK(order_ok);
  CHECK(a_replies == 1);
  // Everything went through memory: heartbeats and envelopes, none lost, none failed.
  CHECK(a.stats().send_failed == 0);
  CHECK(a.stats().link_gaps == 0);
  CHECK(b.stats().link_gaps == 0);
  CHECK(b.stats().received >= static_cast<uint64_t>(kCount));
}

TEST_CASE("a co-hosted mesh still reaches a node of another process over ZeroMQ",
          "[router][mesh]") {
  const ClusterMap map = TwoNodeMap();
  zmq::context_t ctx;
  std::atomic<int> b_received{0};
  std::promise<Reactor*> b_ready;
  std::thread b([&] {  // "b" runs elsewhere: not in a's LocalLinks
    Reactor r;
    Mesh mesh(ctx, r, map, "b", 22);
    mesh.OnEnvelope([&](const std::string& from, codec::Envelope&&) {
      if (from == "a") ++b_received;
    });
    mesh.Start();
    b_ready.set_value(&r);
    r.Run();
  });
  Reactor* rb = b_ready.get_future().get();
  Reactor r;
  LocalLinks local;  // holds only a
  MeshOptions opts;
  opts.local = &local;
  Mesh a(ctx, r, map, "a", 11, opts);
  a.OnPeerUp([&](const std::string& node, bool) {
    codec::Envelope e;
    e.type = codec::MeshType::kDeliver;
    if (node == "b") (void)a.Send("b", std::move(e));
  });
  a.Start();
  r.After(10000, [&] { r.Stop(); });
  r.Every(20, [&] {
    if (b_received == 1) r.Stop();
  });
  r.Run();
  rb->Stop();
  b.join();
  CHECK(b_received == 1);
}

TEST_CASE("a send to a co-hosted mesh that was destroyed fails instead of touching it",
          "[router][mesh]") {
  const ClusterMap map = TwoNodeMap();
  zmq::context_t ctx_a, ctx_b;
  Reactor r;
  LocalLinks local;
  MeshOptions opts;
  opts.local = &local;
  Mesh a(ctx_a, r, map, "a", 11, opts);
  auto b = std::make_unique<Mesh>(ctx_b, r, map, "b", 22, opts);
  a.Start();
  b->Start();
  codec::Envelope e;
  e.type = codec::MeshType::kDeliver;
  CHECK(a.Send("b", e).ok());
  b.reset();  // shutdown order: one node's mesh goes before the other's
  CHECK(local.size() == 1);
  CHECK(a.Send("b", e).code() == Code::kUnavailable);
}
