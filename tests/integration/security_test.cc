// Security with real processes: revoking a device (meshctl revoke), and CurveZMQ mesh links.
#include <catch2/catch.hpp>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include "codec/envelope.h"
#include "codec/media_messages.h"
#include "router/curve.h"
#include "tests/integration/test_mesh.h"

using namespace meshchat;
using namespace meshchat::test;

TEST_CASE(
    "meshctl revoke closes a device's connections within a second and refuses its "
    "tokens, across gateways and restarts",
    "[integration][security]") {
  TestMesh mesh(2, 1);
  const std::string old_token = mesh.Token("alice", "phone");
  auto phone = client::ChatClient::Connect(mesh.Gateway(0), old_token);
  REQUIRE(phone.ok());
  auto laptop = mesh.Connect("alice", 1, "laptop");
  std::string out;
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(mesh.Meshctl("revoke alice phone", &out) == 0);
  CHECK_THAT(out, Catch::Contains("revoked at 2 gateways"));
  // The phone is told and closed at once.
  bool closed = false;
  while (!closed && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1)) {
    auto ev = phone->Next(100);
    if (!ev.ok()) {
      closed = ev.status().code() != Code::kTimeout;
    } else if (auto* e = std::get_if<codec::Error>(&*ev)) {
      CHECK(e->msg == "device revoked");
      CHECK(e->fatal);
    }
  }
  CHECK(closed);
  // The laptop is another device: it keeps working.
  REQUIRE(laptop.Send("bob", "still here").ok());
  Expect<codec::Sent>(laptop);
  // The old token is refused at every gateway, and still after a gateway restarts.
  for (size_t gw : {0, 1}) {
    auto again = client::ChatClient::Connect(mesh.Gateway(gw), old_token);
    REQUIRE_FALSE(again.ok());
    CHECK_THAT(again.status().message(), Catch::Contains("token revoked"));
  }
  REQUIRE(mesh.Meshctl("restart gw1", &out) == 0);
  auto after_restart = client::ChatClient::Connect(mesh.Gateway(0), old_token);
  REQUIRE_FALSE(after_restart.ok());
  CHECK_THAT(after_restart.status().message(), Catch::Contains("token revoked"));
  // A token signed after the revocation lets the device back in.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto back = mesh.Connect("alice", 0, "phone");
  REQUIRE(back.Send("bob", "new token").ok());
  Expect<codec::Sent>(back);
}

TEST_CASE("meshctl revoke refuses, naming it, while a gateway cannot be reached",
          "[integration][security]") {
  TestMesh mesh(2, 1);
  std::string out;
  REQUIRE(mesh.Meshctl("kill gw2 --signal TERM", &out) == 0);
  CHECK(mesh.Meshctl("revoke alice phone", &out) == 1);
  CHECK_THAT(out, Catch::Contains("not revoked at gw2") && Catch::Contains("revoked at 1"));
  CHECK(mesh.Meshctl("revoke 'b@d!' phone", &out) == 1);
  CHECK_THAT(out, Catch::Contains("1-64 characters"));
}

namespace {
// A request of `type` to `n`'s mesh endpoint from a DEALER with `keys` (null: plaintext) and
// routing id `id`; whether an answer came within `ms`.
bool Answers(const router::NodeInfo& n, const router::CurveKeys* keys, int ms,
             codec::MeshType type = codec::MeshType::kStatusReq,
             const std::string& id = "stranger") {
  zmq::context_t ctx;
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::routing_id, id);
  if (keys) router::MakeCurveClient(s, *keys, n.curve);
  s.connect(n.mesh);
  codec::Envelope req;
  req.type = type;
  req.req = 1;
  req.key = "alice";
  (void)s.send(zmq::buffer(codec::Encode(req)), zmq::send_flags::dontwait);
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  return zmq::poll(&item, 1, std::chrono::milliseconds(ms)) > 0;
}
}  // namespace

TEST_CASE(
    "mesh links: only keys the map lists get an answer - a node with another key does "
    "not start",
    "[integration][security]") {
  TestMesh mesh(1, 1, "--groups 0 --media-nodes 0");
  REQUIRE(mesh.map().curve());
  const router::NodeInfo& s1 = *mesh.map().Find("s1");
  // The operator key (what meshctl uses) is answered; a stranger's key and plaintext are not.
  auto op = router::LoadCurveKeys(mesh.var() + "/keys/operator.key");
  REQUIRE(op.ok());
  CHECK(Answers(s1, &*op, 3000));
  const router::CurveKeys stranger = router::GenerateCurveKeys();
  CHECK_FALSE(Answers(s1, &stranger, 1500));
  CHECK_FALSE(Answers(s1, nullptr, 1500));
  // Both are logged and counted.
  std::string metrics;
  for (int i = 0; i < 30; ++i) {
    metrics = mesh.Scrape("s1");
    if (Metric(metrics, "meshchat_mesh_refused_keys_total") >= 1 &&
        Metric(metrics, "meshchat_mesh_failed_handshakes_total") >= 1)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(Metric(metrics, "meshchat_mesh_refused_keys_total") >= 1);
  CHECK(Metric(metrics, "meshchat_mesh_failed_handshakes_total") >= 1);
  std::ifstream log(mesh.var() + "/log/s1.log");
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  CHECK_THAT(text, Catch::Contains("unknown key " + codec::HexOf(stranger.public_key)));
  CHECK_THAT(text, Catch::Contains("handshake failed") && Catch::Contains("plaintext"));
  // Clients still chat through the encrypted mesh.
  auto alice = mesh.Connect("alice", 0);
  auto bob = mesh.Connect("bob", 0);
  REQUIRE(alice.Send("bob", "still private").ok());
  CHECK(Expect<codec::Push>(bob).body == "still private");
  // s1 restarted with a key the map does not list refuses to start, saying why.
  std::string out;
  std::filesystem::remove(mesh.var() + "/keys/s1.key");
  REQUIRE(RunCommand(Bin("meshctl") + " keygen " + mesh.var() + "/keys/s1.key", &out) == 0);
  CHECK(mesh.Meshctl("restart s1", &out) != 0);
  CHECK_THAT(out, Catch::Contains("not the one the map lists for s1"));
}

TEST_CASE("meshctl rekey rotates a node's CURVE key and meshctl's own - old keys are refused",
          "[integration][security]") {
  TestMesh mesh(1, 2, "--groups 0 --media-nodes 0");
  auto [a, b] = mesh.CrossShardUsers();
  auto old_s2 = router::LoadCurveKeys(mesh.var() + "/keys/s2.key");
  auto old_op = router::LoadCurveKeys(mesh.var() + "/keys/operator.key");
  REQUIRE(old_s2.ok());
  REQUIRE(old_op.ok());
  std::string out;
  REQUIRE(mesh.Meshctl("rekey s2", &out) == 0);
  INFO(out);
  auto map = router::ClusterMap::Load(mesh.var() + "/cluster.map");
  REQUIRE(map.ok());
  CHECK(map->epoch == mesh.map().epoch + 1);
  CHECK(map->Find("s2")->curve != old_s2->public_key);
  CHECK(map->Find("s1")->curve == mesh.map().Find("s1")->curve);
  // Messages cross the shards over the re-made links (the clients reconnect if s2's restart
  // cut them; nothing acknowledged is lost).
  bool delivered = false;
  for (int attempt = 0; attempt < 20 && !delivered; ++attempt) {
    auto sender = client::ChatClient::Connect(mesh.Gateway(0), mesh.Token(a, "d2"));
    auto receiver = client::ChatClient::Connect(mesh.Gateway(0), mesh.Token(b, "d2"));
    if (sender.ok() && receiver.ok() && sender->Send(b, "after rekey").ok()) {
      for (int i = 0; i < 20 && !delivered; ++i) {
        auto ev = receiver->Next(250);
        if (ev.ok())
          if (auto* p = std::get_if<codec::Push>(&*ev)) delivered = p->body == "after rekey";
      }
    }
    if (!delivered) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  CHECK(delivered);
  // The old key of s2 is no longer admitted anywhere (here: as seen by s1).
  const router::NodeInfo& s1 = *map->Find("s1");
  CHECK_FALSE(Answers(s1, &*old_s2, 1500));
  // meshctl's own key: the new one works, the old one is refused.
  REQUIRE(mesh.Meshctl("rekey operator", &out) == 0);
  CHECK(mesh.Meshctl("status", &out) == 0);
  auto new_op = router::LoadCurveKeys(mesh.var() + "/keys/operator.key");
  REQUIRE(new_op.ok());
  CHECK(new_op->public_key != old_op->public_key);
  CHECK(Answers(s1, &*new_op, 3000));
  CHECK_FALSE(Answers(s1, &*old_op, 1500));
  CHECK(mesh.Meshctl("rekey nosuch", &out) == 1);
  CHECK_THAT(out, Catch::Contains("no node 'nosuch'"));
}

TEST_CASE("meshctl rotate-secret: tokens of the previous secret work until it is dropped",
          "[integration][security]") {
  TestMesh mesh(1, 1, "--groups 0 --media-nodes 0 --presence 0");
  const std::string old_token = mesh.Token("alice", "phone");  // signed with the first secret
  std::string out;
  REQUIRE(mesh.Meshctl("rotate-secret", &out) == 0);
  INFO(out);
  // The file: the new secret first, the previous one second; mode 0600 kept.
  std::ifstream in(mesh.var() + "/cluster.secret");
  std::string fresh, previous;
  REQUIRE(std::getline(in, fresh));
  REQUIRE(std::getline(in, previous));
  CHECK(fresh != previous);
  CHECK((std::filesystem::status(mesh.var() + "/cluster.secret").permissions() &
         std::filesystem::perms::others_read) == std::filesystem::perms::none);
  REQUIRE(mesh.Meshctl("token bob --device pc", &out) == 0);
  const std::string new_token = out.substr(out.find_last_of('\n', out.size() - 2) + 1);
  auto trimmed = [](std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  };
  // Both are accepted while the previous secret is rotated out.
  auto with_old = client::ChatClient::Connect(mesh.Gateway(0), old_token);
  CHECK(with_old.ok());
  auto with_new = client::ChatClient::Connect(mesh.Gateway(0), trimmed(new_token));
  CHECK(with_new.ok());
  // A second rotation before the first is finished is refused.
  CHECK(mesh.Meshctl("rotate-secret", &out) == 1);
  CHECK_THAT(out, Catch::Contains("drop it first"));
  // Dropped: the old token is refused, the new one still works.
  REQUIRE(mesh.Meshctl("rotate-secret --drop-old", &out) == 0);
  auto old_again = client::ChatClient::Connect(mesh.Gateway(0), old_token);
  REQUIRE_FALSE(old_again.ok());
  CHECK_THAT(old_again.status().message(), Catch::Contains("invalid token"));
  CHECK(client::ChatClient::Connect(mesh.Gateway(0), trimmed(new_token)).ok());
  CHECK(mesh.Meshctl("rotate-secret --drop-old", &out) == 1);
  CHECK_THAT(out, Catch::Contains("no previous secret"));
}

TEST_CASE("a node's key cannot send operator requests (drain, who), only node traffic",
          "[integration][security]") {
  TestMesh mesh(1, 1, "--groups 0 --media-nodes 0");
  const router::NodeInfo& gw1 = *mesh.map().Find("gw1");
  auto s1_key = router::LoadCurveKeys(mesh.var() + "/keys/s1.key");
  REQUIRE(s1_key.ok());
  // s1's own key and id (what a leaked node key allows): status is answered, drain and "who"
  // are not, and the gateway goes on taking clients.
  CHECK(Answers(gw1, &*s1_key, 3000, codec::MeshType::kStatusReq, "s1"));
  CHECK_FALSE(Answers(gw1, &*s1_key, 1500, codec::MeshType::kDrain, "s1"));
  CHECK_FALSE(Answers(gw1, &*s1_key, 1500, codec::MeshType::kDescribeReq, "s1"));
  std::ifstream log(mesh.var() + "/log/gw1.log");
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  CHECK_THAT(text, Catch::Contains("from node s1 refused: nodes cannot send them"));
  CHECK_THAT(text, !Catch::Contains("draining on request"));
  // meshctl (the operator key) still can.
  std::string out;
  CHECK(mesh.Meshctl("who alice", &out) == 0);
  bool in = false;
  for (int i = 0; i < 20 && !in; ++i) {
    in = client::ChatClient::Connect(mesh.Gateway(0), mesh.Token("alice")).ok();
    if (!in) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  CHECK(in);
}
