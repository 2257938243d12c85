// CurveZMQ between mesh nodes: the ZAP decision on its own, then real meshes on loopback,
// each node with its own ZeroMQ context (ZAP handlers are per context) and reactor thread,
// against strangers: an unknown key, a plaintext peer, and a listed key claiming another id.
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>
#include <future>
#include <thread>

#include "codec/media_messages.h"
#include "router/curve.h"
#include "router/mesh.h"
#include "tests/free_port.h"
#include "tests/temp_dir.h"

using namespace meshchat;
using namespace meshchat::router;
using meshchat::test::FreePort;
using meshchat::test::TempDir;

namespace {

std::vector<std::string> Request(const std::string& mechanism, const std::string& key) {
  std::vector<std::string> f = {"1.0", "7", "meshchat", "127.0.0.1", "", mechanism};
  if (!key.empty()) f.push_back(key);
  return f;
}

// Node "b" of a CURVE map {a, b, c} plus an operator, running on its own thread; `a` and the
// operator are driven by the test with plain DEALER sockets.
struct CurveNode {
  ClusterMap map;
  CurveKeys a = GenerateCurveKeys(), b = GenerateCurveKeys(), c = GenerateCurveKeys(),
            op = GenerateCurveKeys();
  std::atomic<int> received{0};
  std::vector<std::string> senders;  // written on b's thread, read after Stop
  std::atomic<uint64_t> denied{0}, failed{0}, impostors{0};
  Reactor* reactor = nullptr;
  std::thread t;

  CurveNode() {
    map.epoch = 1;
    for (auto [id, keys] : {std::pair{"a", &a}, std::pair{"b", &b}, std::pair{"c", &c}}) {
      NodeInfo n;
      n.id = id;
      n.role = Role::kSession;
      n.mesh = "tcp://127.0.0.1:" + std::to_string(FreePort());
      n.curve = keys->public_key;
      map.nodes.push_back(n);
    }
    map.operators.push_back({"ops", op.public_key});
    std::promise<Reactor*> ready;
    t = std::thread([this, &ready] {
      zmq::context_t ctx;
      Reactor r;
      ZapHandler zap(ctx, r);
      zap.Start(AdmittedKeys(map));
      MeshOptions o;
      o.curve = b;
      Mesh mesh(ctx, r, map, "b", 22, o);
      mesh.OnEnvelope([&](const std::string& from, codec::Envelope&&) {
        senders.push_back(from);
        ++received;
      });
      mesh.Start();
      zap.Watch(mesh.router_socket(), "mesh");
      r.Every(20, [&] {
        denied = zap.denied();
        failed = zap.handshake_failures();
        impostors = mesh.stats().impostors;
      });
      ready.set_value(&r);
      r.Run();
    });
    reactor = ready.get_future().get();
  }
  ~CurveNode() { Stop(); }
  void Stop() {
    if (!t.joinable()) return;
    reactor->Stop();
    t.join();
  }
  // Sends one envelope to b from a DEALER with `keys` (empty: plaintext) and routing id `id`.
  void SendAs(zmq::context_t& ctx, const CurveKeys* keys, const std::string& id) {
    zmq::socket_t s(ctx, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 200);
    s.set(zmq::sockopt::routing_id, id);
    if (keys) MakeCurveClient(s, *keys, b.public_key);
    s.connect(map.Find("b")->mesh);
    codec::Envelope env;
    env.type = codec::MeshType::kStatusReq;
    env.req = 1;
    (void)s.send(zmq::buffer(codec::Encode(env)), zmq::send_flags::none);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  template <typename F>
  bool WaitFor(F f) {
    for (int i = 0; i < 150 && !f(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return f();
  }
};

}  // namespace

TEST_CASE("ZAP admits listed CURVE keys by name and nothing else", "[router][curve]") {
  const CurveKeys node = GenerateCurveKeys(), op = GenerateCurveKeys();
  const std::map<std::string, std::string> admitted = {{node.public_key, "s1"},
                                                       {op.public_key, "operator:ops"}};
  auto ok = DecideZap(Request("CURVE", node.public_key), admitted);
  CHECK(ok.admitted);
  CHECK(ok.reply == std::vector<std::string>{"1.0", "7", "200", "OK", "s1", ""});
  CHECK(DecideZap(Request("CURVE", op.public_key), admitted).user_id == "operator:ops");

  auto unknown = DecideZap(Request("CURVE", GenerateCurveKeys().public_key), admitted);
  CHECK_FALSE(unknown.admitted);
  CHECK(unknown.reply[2] == "400");
  CHECK_THAT(unknown.why, Catch::Contains("unknown key"));
  CHECK(DecideZap(Request("NULL", ""), admitted).reply[2] == "400");
  CHECK(DecideZap(Request("PLAIN", "user"), admitted).reply[2] == "400");
  CHECK(DecideZap(Request("CURVE", "short"), admitted).reply[2] == "400");
  CHECK(DecideZap({"2.0", "1"}, admitted).reply[2] == "500");
  CHECK(DecideZap({}, admitted).reply[2] == "500");
}

TEST_CASE("CURVE key files: 0600 only, 64 hex digits, public key derived", "[router][curve]") {
  TempDir dir;
  const std::string path = dir.path() + "/n.key";
  const CurveKeys k = GenerateCurveKeys();
  REQUIRE(SaveCurveKeys(path, k).ok());
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto back = LoadCurveKeys(path);
  REQUIRE(back.ok());
  CHECK(back->public_key == k.public_key);
  CHECK(back->secret_key == k.secret_key);
  chmod(path.c_str(), 0644);
  CHECK_THAT(LoadCurveKeys(path).status().message(), Catch::Contains("readable by others"));
  chmod(path.c_str(), 0600);
  std::ofstream(path) << "not hex at all\n";
  CHECK_FALSE(LoadCurveKeys(path).ok());
  CHECK(LoadCurveKeys(dir.path() + "/missing").status().code() == Code::kNotFound);
}

TEST_CASE(
    "a CURVE mesh processes listed peers only: unknown keys, plaintext and impostors "
    "are refused",
    "[router][curve]") {
  CurveNode node;
  zmq::context_t ctx;
  SECTION("a listed node and an operator get through, named by their ids") {
    node.SendAs(ctx, &node.a, "a");
    node.SendAs(ctx, &node.op, "meshctl-1");
    REQUIRE(node.WaitFor([&] { return node.received >= 2; }));
  }
  SECTION("an unknown key is refused by ZAP") {
    const CurveKeys stranger = GenerateCurveKeys();
    node.SendAs(ctx, &stranger, "a");
    CHECK(node.WaitFor([&] { return node.denied >= 1; }));
  }
  SECTION("a plaintext peer fails the handshake") {
    node.SendAs(ctx, nullptr, "a");
    CHECK(node.WaitFor([&] { return node.failed >= 1; }));
  }
  SECTION("a listed key claiming another node's id, or a node key posing as an operator") {
    node.SendAs(ctx, &node.a, "c");
    node.SendAs(ctx, &node.c, "meshctl-2");
    CHECK(node.WaitFor([&] { return node.impostors >= 2; }));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // Only the admitted, authentic senders were ever handed to the node's handlers.
  const int got = node.received;
  node.Stop();
  for (int i = 0; i < got; ++i) CHECK((node.senders[i] == "a" || node.senders[i] == "meshctl-1"));
}
