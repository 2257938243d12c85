// meshctl and chat as a user runs them: real processes, exit codes and output.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "codec/token.h"
#include "router/hash_ring.h"
#include "tests/integration/test_mesh.h"

using namespace meshchat;
using namespace meshchat::test;

namespace {
std::string LastLine(const std::string& s) {
  std::string t = s;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  return t.substr(t.rfind('\n') == std::string::npos ? 0 : t.rfind('\n') + 1);
}
// MESHCHAT_HOME=... for `chat` run against this mesh.
std::string HomeOf(const TestMesh& mesh) {
  return "MESHCHAT_HOME=" + mesh.var().substr(0, mesh.var().rfind('/')) + " ";
}

// The start of a `chat` command line for `user` through the gateway-th gateway.
std::string ChatAs(const TestMesh& mesh, const std::string& user, size_t gateway) {
  return HomeOf(mesh) + Bin("chat") + " --token " + mesh.Token(user) + " --server tcp://" +
         mesh.GatewayAddr(gateway) + " ";
}
}  // namespace

TEST_CASE("meshctl up refuses a second start - down stops once, then says so", "[cli]") {
  std::string out;
  {
    TestMesh mesh;
    CHECK(mesh.Meshctl("up", &out) == 1);
    CHECK_THAT(out, Catch::Contains("already running") && Catch::Contains("meshctl down"));
    CHECK(mesh.Meshctl("down", &out) == 0);
    CHECK_THAT(out, Catch::Contains("stopped 8 nodes"));
    CHECK(mesh.Meshctl("down", &out) == 0);
    CHECK_THAT(out, Catch::Contains("nothing to stop"));
    // Status of a stopped mesh: every node down, exit code 3.
    CHECK(mesh.Meshctl("status", &out) == 3);
    CHECK_THAT(out, Catch::Contains("down"));
  }
}

TEST_CASE("meshctl status lists every node, as a table and as JSON", "[cli]") {
  TestMesh mesh(2, 3);
  std::string out;
  REQUIRE(mesh.Meshctl("status", &out) == 0);
  for (const char* id : {"gw1", "gw2", "s1", "s2", "s3", "m1"})
    CHECK_THAT(out, Catch::Contains(id));
  CHECK_THAT(out, Catch::Contains("8/8"));  // each node sees its 8 peers (groups, presence, media)
  CHECK_THAT(out, Catch::Contains("EPOCH") && Catch::Contains("MSG/S") &&
                      Catch::Contains("STORE") && Catch::Contains("QUEUE"));
  REQUIRE(mesh.Meshctl("top --count 3 --interval 0.2", &out) == 0);
  size_t tables = 0;
  for (size_t at = out.find("LAST ERROR"); at != std::string::npos;
       at = out.find("LAST ERROR", at + 1))
    ++tables;
  CHECK(tables == 3);
  CHECK(mesh.Meshctl("top --interval 0", &out) == 2);
  REQUIRE(mesh.Meshctl("status --json", &out) == 0);
  CHECK_THAT(out, Catch::Contains("\"id\":\"s3\",\"role\":\"session\",\"state\":\"up\""));
  CHECK_THAT(out, Catch::Contains("\"epoch\":1,") && Catch::Contains("\"queue\":"));
  // Each session node has an LMDB file, and heartbeats alone make mesh traffic each second.
  bool figures = false;
  for (int i = 0; i < 30 && !figures; ++i) {
    REQUIRE(mesh.Meshctl("status --json", &out) == 0);
    const size_t s1 = out.find("\"id\":\"s1\"");
    REQUIRE(s1 != std::string::npos);
    const std::string line = out.substr(s1, out.find('}', s1) - s1);
    figures = line.find("\"store_bytes\":0") == std::string::npos &&
              line.find("\"msgs_per_s\":0,") == std::string::npos;
    if (!figures) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  CHECK(figures);
}

TEST_CASE("meshctl token mints a token the cluster accepts, and checks its input", "[cli]") {
  TestMesh mesh;
  std::string out;
  REQUIRE(mesh.Meshctl("token carol --device tablet --ttl 60", &out) == 0);
  const std::string token = LastLine(out);
  std::ifstream in(mesh.var() + "/cluster.secret");
  std::string secret;
  in >> secret;
  codec::TokenClaims claims;
  REQUIRE(codec::VerifyToken(token, secret, std::time(nullptr), claims) == codec::TokenStatus::kOk);
  CHECK(claims.user == "carol");
  CHECK(claims.device == "tablet");
  CHECK(claims.expires_s <= std::time(nullptr) + 60);
  auto c = client::ChatClient::Connect(mesh.Gateway(1), token);
  REQUIRE(c.ok());
  CHECK(c->welcome().user == "carol");

  CHECK(mesh.Meshctl("token 'bad user'", &out) == 2);
  CHECK(mesh.Meshctl("token carol --ttl 0", &out) == 2);
  CHECK(mesh.Meshctl("frobnicate", &out) == 2);
  CHECK(RunCommand(Bin("meshctl") + " --var /nonexistent/x token carol", &out) == 1);
  CHECK_THAT(out, Catch::Contains("meshctl up"));
  // --help states the defaults a caller gets without the options.
  REQUIRE(RunCommand(Bin("meshctl") + " token --help", &out) == 0);
  CHECK_THAT(out, Catch::Contains("--ttl INT=86400"));
  CHECK_THAT(out, Catch::Contains("--device TEXT=cli"));
}

TEST_CASE("chat send, listen and history across gateways, online or not", "[cli]") {
  TestMesh mesh;
  const std::string home = HomeOf(mesh);
  const std::string alice = ChatAs(mesh, "alice", 0), bob = ChatAs(mesh, "bob", 1);
  std::string out;
  // bob is offline: the messages are stored (single tick) and wait for him.
  REQUIRE(RunCommand(alice + "send --to bob 'first line'", &out) == 0);
  CHECK(out == "sent seq=1\n");
  REQUIRE(RunCommand(alice + "send --to bob 'second line'", &out) == 0);
  CHECK(out == "sent seq=2\n");
  REQUIRE(RunCommand(bob + "listen --count 2 --timeout 10", &out) == 0);
  CHECK(out == "first line\nsecond line\n");
  // Already processed by this device: not shown again.
  CHECK(RunCommand(bob + "listen --count 1 --timeout 0.5", &out) == 4);
  REQUIRE(RunCommand(bob + "history", &out) == 0);
  CHECK_THAT(out, Catch::Contains("alice: first line") && Catch::Contains("alice: second line"));

  // Double and blue ticks: bob listens and marks read; alice waits for the read tick.
  FILE* listener = popen((bob + "listen --count 1 --timeout 20 --read").c_str(), "r");
  REQUIRE(listener);
  REQUIRE(RunCommand(alice + "send --to bob 'read me' --wait read --timeout 20", &out) == 0);
  CHECK_THAT(out, Catch::Contains("sent seq=3") && Catch::Contains("read seq=3"));
  std::string got;
  char buf[256];
  while (fgets(buf, sizeof buf, listener)) got += buf;
  CHECK(WEXITSTATUS(pclose(listener)) == 0);
  CHECK(got == "read me\n");
}

TEST_CASE("chat finds the local mesh by itself and reports errors with exit codes", "[cli]") {
  TestMesh mesh;
  std::string out;
  const std::string home = "MESHCHAT_HOME=" + mesh.var().substr(0, mesh.var().rfind('/')) + " ";
  // No --server: the local mesh's client-endpoints file is used.
  CHECK(
      RunCommand(home + Bin("chat") + " --token " + mesh.Token("alice") + " send --to nobody hello",
                 &out) == 0);
  CHECK_THAT(out, Catch::StartsWith("sent seq=1"));
  CHECK(RunCommand(
            home + Bin("chat") + " --token " + mesh.Token("alice") + " send --to 'bad id' hello",
            &out) == 1);
  CHECK_THAT(out, Catch::Contains("bad_request"));
  CHECK(RunCommand(home + Bin("chat") + " --token bogus send --to bob hi", &out) == 3);
  CHECK_THAT(out, Catch::Contains("bad_token"));
  CHECK(RunCommand("MESHCHAT_TOKEN= " + home + Bin("chat") + " send --to bob hi", &out) == 2);
  CHECK(RunCommand(Bin("chat") + " --server 127.0.0.1:1 --token x send --to b hi", &out) == 3);
  CHECK(RunCommand(home + Bin("chat") + " --token " + mesh.Token("alice") +
                       " listen --count 1 --timeout 0.5",
                   &out) == 4);
  CHECK(RunCommand(home + Bin("chat") + " --token " + mesh.Token("alice") +
                       " send --to bob hi --wait eventually",
                   &out) == 2);
}

TEST_CASE("meshctl kill and start one node", "[cli]") {
  TestMesh mesh;
  std::string out;
  REQUIRE(mesh.Meshctl("kill s1", &out) == 0);
  CHECK_THAT(out, Catch::Contains("sent SIGKILL to s1"));
  CHECK(mesh.Meshctl("status", &out) == 3);
  CHECK(mesh.Meshctl("kill s1", &out) == 1);
  CHECK_THAT(out, Catch::Contains("not running"));
  // Its peers log it down; status shows that as their last error.
  bool logged = false;
  for (int i = 0; i < 100 && !logged; ++i) {
    mesh.Meshctl("status --json", &out);
    logged = out.find("\"last_error\":\"peer s1 down") != std::string::npos;
    if (!logged) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(logged);
  REQUIRE(mesh.Meshctl("start s1", &out) == 0);
  CHECK(mesh.Meshctl("start s1", &out) == 1);
  CHECK_THAT(out, Catch::Contains("already running"));
  CHECK(mesh.Meshctl("start nosuch", &out) == 1);
  CHECK_THAT(out, Catch::Contains("no node 'nosuch'"));
  bool all_up = false;
  for (int i = 0; i < 50 && !all_up; ++i) {
    all_up = mesh.Meshctl("status", &out) == 0;
    if (!all_up) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(all_up);
}

TEST_CASE("chat group commands: create, send, info, receipts, list, leave", "[cli][groups]") {
  TestMesh mesh;
  const std::string home = "MESHCHAT_HOME=" + mesh.var().substr(0, mesh.var().rfind('/')) + " ";
  const std::string alice = home + Bin("chat") + " --token " + mesh.Token("alice") + " ";
  const std::string bob = home + Bin("chat") + " --token " + mesh.Token("bob") + " ";
  std::string out;
  REQUIRE(RunCommand(alice + "group create crew bob", &out) == 0);
  CHECK_THAT(out, Catch::StartsWith("ok crew seq=1"));
  CHECK(RunCommand(alice + "group create crew bob", &out) == 1);
  CHECK_THAT(out, Catch::Contains("group_exists"));
  REQUIRE(RunCommand(alice + "group send crew hello crew", &out) == 0);
  CHECK(out == "sent seq=2\n");
  REQUIRE(RunCommand(bob + "listen --count 2 --timeout 10", &out) == 0);
  CHECK(out == "alice created the group\nhello crew\n");
  REQUIRE(RunCommand(bob + "group info crew", &out) == 0);
  CHECK_THAT(out, Catch::Contains("members: alice* bob"));
  std::string receipts;
  for (int i = 0; i < 50; ++i) {  // bob's ack travels to the group's node as a cursor
    REQUIRE(RunCommand(alice + "group receipts crew 2", &receipts) == 0);
    if (receipts.find("delivered to 1 of 1") != std::string::npos) break;
  }
  CHECK_THAT(receipts, Catch::Contains("delivered to 1 of 1"));
  REQUIRE(RunCommand(bob + "group list", &out) == 0);
  CHECK(out == "crew\n");
  REQUIRE(RunCommand(bob + "group leave crew", &out) == 0);
  CHECK(RunCommand(bob + "group send crew still here", &out) == 1);
  CHECK_THAT(out, Catch::Contains("not_member"));
  CHECK(RunCommand(bob + "group frobnicate crew", &out) == 2);
  CHECK(RunCommand(bob + "group info", &out) == 2);
}

TEST_CASE("chat presence and chat privacy", "[cli][presence]") {
  TestMesh mesh;
  const std::string home = "MESHCHAT_HOME=" + mesh.var().substr(0, mesh.var().rfind('/')) + " ";
  const std::string alice = home + Bin("chat") + " --token " + mesh.Token("alice") + " ";
  const std::string bob = home + Bin("chat") + " --token " + mesh.Token("bob") + " ";
  std::string out;
  REQUIRE(RunCommand(alice + "presence bob", &out) == 0);
  CHECK(out == "bob not seen\n");
  REQUIRE(RunCommand(bob + "send --to carol hi", &out) == 0);  // bob acts
  bool seen = false;
  for (int i = 0; i < 50 && !seen; ++i) {  // last seen is stored within a second
    REQUIRE(RunCommand(alice + "presence bob", &out) == 0);
    seen = out.find("bob last seen ") == 0 || out == "bob online\n";
  }
  CHECK(seen);
  REQUIRE(RunCommand(bob + "privacy nobody", &out) == 0);
  CHECK(out == "privacy nobody\n");
  bool hidden = false;
  for (int i = 0; i < 50 && !hidden; ++i) {
    REQUIRE(RunCommand(alice + "presence bob", &out) == 0);
    hidden = out == "bob not seen\n";
  }
  CHECK(hidden);
  CHECK(RunCommand(bob + "privacy sometimes", &out) == 2);
}

TEST_CASE("meshctl ring, who and restart", "[cli]") {
  TestMesh mesh;
  std::string out;
  REQUIRE(mesh.Meshctl("ring session", &out) == 0);
  CHECK_THAT(out, Catch::Contains("s1") && Catch::Contains("s2") && Catch::Contains("%"));
  CHECK(mesh.Meshctl("ring wizard", &out) == 2);
  REQUIRE(mesh.Meshctl("ring media", &out) == 0);
  CHECK_THAT(out, Catch::Contains("m1") && Catch::Contains("100.00%"));

  auto bob = mesh.Connect("bob", 1, "phone");
  auto alice = mesh.Connect("alice", 0);
  bob.set_auto_ack(false);
  for (int i = 0; i < 3; ++i) REQUIRE(alice.Send("bob", "unread").ok());
  for (int i = 0; i < 3; ++i) Expect<codec::Sent>(alice);
  REQUIRE(mesh.Meshctl("who bob", &out) == 0);
  CHECK_THAT(out, Catch::Contains("bob: 1 connected [phone via gw2") &&
                      Catch::Contains("3 inbox entries waiting"));
  CHECK(mesh.Meshctl("who 'no such'", &out) == 2);

  REQUIRE(mesh.Meshctl("restart s1", &out) == 0);
  CHECK_THAT(out, Catch::Contains("stopped s1") && Catch::Contains("started s1"));
  CHECK(mesh.Meshctl("restart nosuch", &out) == 1);
  CHECK(mesh.Meshctl("kill nosuch", &out) == 1);
  CHECK(mesh.Meshctl("kill s1 --signal HUP", &out) == 2);

  // An unreachable node: `who` says so (exit 1), `status` marks it down (exit 3).
  const std::string shard =
      router::HashRing(mesh.map().IdsWithRole(router::Role::kSession)).Owner(std::string("bob"));
  REQUIRE(mesh.Meshctl("kill " + shard, &out) == 0);
  CHECK(mesh.Meshctl("who bob", &out) == 1);
  CHECK_THAT(out, Catch::Contains("meshctl who:"));
  CHECK(mesh.Meshctl("status", &out) == 3);
  CHECK_THAT(out, Catch::Contains(shard) && Catch::Contains("down"));
  REQUIRE(mesh.Meshctl("start " + shard, &out) == 0);
}

TEST_CASE("meshctl drain sends a gateway's clients away and stops it taking new ones", "[cli]") {
  TestMesh mesh;
  std::string out;
  auto bob = mesh.Connect("bob", 0, "phone");
  REQUIRE(mesh.Meshctl("drain gw1", &out) == 0);
  CHECK_THAT(out, Catch::Contains("gw1 drained"));
  // The client is told to reconnect elsewhere, then the gateway closes the socket.
  auto bye = Expect<codec::Bye>(bob);
  CHECK(bye.reason == "draining");
  CHECK_FALSE(bob.Next(2000).ok());
  // New clients are refused and the local mesh no longer points clients at gw1.
  CHECK_FALSE(client::ChatClient::Connect(mesh.Gateway(0), mesh.Token("bob")).ok());
  std::ifstream endpoints(mesh.var() + "/client-endpoints");
  std::string all((std::istreambuf_iterator<char>(endpoints)), std::istreambuf_iterator<char>());
  CHECK(all.find(mesh.GatewayAddr(0)) == std::string::npos);
  CHECK(all.find(mesh.GatewayAddr(1)) != std::string::npos);
  // The other gateway serves bob as before.
  auto again = mesh.Connect("bob", 1, "phone");
  CHECK(again.welcome().user == "bob");
  CHECK(mesh.Meshctl("drain s1", &out) == 1);
  CHECK_THAT(out, Catch::Contains("not a gateway"));
  CHECK(mesh.Meshctl("drain nosuch", &out) == 1);
}

TEST_CASE("chat send-image, listen, fetch and link", "[cli][media]") {
  TestMesh mesh;
  const std::string home = HomeOf(mesh);
  const std::string alice = ChatAs(mesh, "alice", 0), bob = ChatAs(mesh, "bob", 1);
  const std::string dir = mesh.var() + "/..";
  std::string photo(700'000, '\0');
  for (size_t i = 0; i < photo.size(); ++i) photo[i] = static_cast<char>(i * 131 + i / 7);
  std::ofstream(dir + "/cat.jpg", std::ios::binary) << photo;
  std::string out;
  REQUIRE(RunCommand(alice + "send-image --to bob " + dir + "/cat.jpg --caption 'my cat'", &out) ==
          0);
  INFO(out);
  const size_t at = out.find("media=");
  REQUIRE(at != std::string::npos);
  const std::string id = out.substr(at + 6, 32);
  CHECK_THAT(out, Catch::Contains("image/jpeg 700000 bytes"));
  REQUIRE(RunCommand(bob + "listen --count 1 --timeout 10", &out) == 0);
  CHECK(out == "my cat [media " + id + " image/jpeg 700000 bytes]\n");
  REQUIRE(RunCommand(bob + "fetch " + id + " -o " + dir + "/got.jpg", &out) == 0);
  std::ifstream got(dir + "/got.jpg", std::ios::binary);
  CHECK(std::string(std::istreambuf_iterator<char>(got), {}) == photo);
  REQUIRE(RunCommand(bob + "link " + id + " --ttl 60", &out) == 0);
  CHECK_THAT(out, Catch::StartsWith("http://127.0.0.1:") && Catch::Contains("/media/" + id));
  // Carol never received it: this device has no reference, and exit code 2 says so.
  const std::string carol = home + Bin("chat") + " --token " + mesh.Token("carol") + " ";
  CHECK(RunCommand(carol + "fetch " + id + " -o " + dir + "/x", &out) == 2);
  CHECK_THAT(out, Catch::Contains("no reference to media"));
  CHECK(RunCommand(alice + "send-image --to bob " + dir + "/missing.jpg", &out) == 2);
  std::ofstream(dir + "/notes.xyz") << "x";
  CHECK(RunCommand(alice + "send-image --to bob " + dir + "/notes.xyz", &out) == 2);
  CHECK_THAT(out, Catch::Contains("--type"));
  CHECK(RunCommand(alice + "send-image --to bob --type text/html " + dir + "/notes.xyz", &out) ==
        1);
  CHECK_THAT(out, Catch::Contains("not allowed"));
}

TEST_CASE("chat mode and chat scroll", "[cli][retention]") {
  TestMesh mesh;
  const std::string alice = ChatAs(mesh, "alice", 0), bob = ChatAs(mesh, "bob", 1);
  std::string out;
  REQUIRE(RunCommand(alice + "mode bob permanent --timer 7d", &out) == 0);
  CHECK(out == "sent seq=1: the chat with bob is permanent, messages disappear after 604800 s\n");
  REQUIRE(RunCommand(alice + "send --to bob 'kept for a week'", &out) == 0);
  REQUIRE(RunCommand(bob + "scroll alice --limit 5", &out) == 0);
  CHECK_THAT(out, Catch::Contains("1  ") && Catch::Contains("*: alice made this chat permanent"));
  CHECK_THAT(out, Catch::Contains("2  ") && Catch::Contains("alice: kept for a week"));
  REQUIRE(RunCommand(bob + "scroll alice --before 2", &out) == 0);
  CHECK_THAT(out, !Catch::Contains("kept for a week"));
  CHECK(RunCommand(alice + "mode bob forever", &out) == 2);
  CHECK(RunCommand(alice + "mode bob permanent --timer 5x", &out) == 2);
  CHECK(RunCommand(alice + "mode bob temporary --timer 91d", &out) == 2);
  REQUIRE(RunCommand(alice + "group create crew bob", &out) == 0);
  REQUIRE(RunCommand(alice + "group mode crew permanent 24h", &out) == 0);
  REQUIRE(RunCommand(alice + "group send crew hello", &out) == 0);
  REQUIRE(RunCommand(bob + "group history crew", &out) == 0);
  CHECK_THAT(out, Catch::Contains("alice: hello") && Catch::Contains("made this group permanent"));
  REQUIRE(RunCommand(bob + "group info crew", &out) == 0);
  CHECK_THAT(out, Catch::Contains("permanent timer=86400s"));
  CHECK(RunCommand(bob + "group mode crew temporary", &out) == 1);  // not an admin
}

TEST_CASE("chat deletes disappearing messages from the device's history too", "[cli][retention]") {
  TestMesh mesh;
  const std::string alice = ChatAs(mesh, "alice", 0), bob = ChatAs(mesh, "bob", 1);
  std::string out;
  REQUIRE(RunCommand(alice + "mode bob temporary --timer 1s", &out) == 0);
  REQUIRE(RunCommand(alice + "send --to bob 'gone in a second'", &out) == 0);
  REQUIRE(RunCommand(bob + "listen --count 2 --timeout 10", &out) == 0);
  CHECK_THAT(out, Catch::Contains("gone in a second"));
  REQUIRE(RunCommand(bob + "history", &out) == 0);
  CHECK_THAT(out, Catch::Contains("gone in a second") && Catch::Contains("disappear after 1 s"));
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  REQUIRE(RunCommand(bob + "history", &out) == 0);
  CHECK_THAT(out, !Catch::Contains("gone in a second"));
  CHECK_THAT(out, Catch::Contains("disappear after 1 s"));  // the announcement stays
}

namespace {
std::vector<int> FreeLocalPorts(size_t n) {
  std::vector<int> fds, ports;
  for (size_t i = 0; i < n; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ports.push_back(ntohs(a.sin_port));
    fds.push_back(fd);
  }
  for (int fd : fds) close(fd);
  return ports;
}
}  // namespace

TEST_CASE("multi-host: each host starts its nodes from the same cluster file and secret", "[cli]") {
  TempDir dir;
  auto p = FreeLocalPorts(3);
  const std::string file = dir.path() + "/cluster.map", secret = dir.path() + "/secret";
  // Every node and each host's meshctl has a CURVE keypair; the map lists the public keys.
  auto keygen = [&](const std::string& path) {
    std::string t;
    REQUIRE(RunCommand(Bin("meshctl") + " keygen " + path, &t) == 0);
    return LastLine(t);
  };
  std::filesystem::create_directories(dir.path() + "/a/keys");
  std::filesystem::create_directories(dir.path() + "/b/keys");
  const std::string gw_key = dir.path() + "/gw1.key", s1_key = dir.path() + "/s1.key";
  std::ofstream(file) << "# two 'hosts': one runs the gateway, the other the session node\n"
                      << "epoch 1\n"
                      << "node gw1 gateway mesh=tcp://127.0.0.1:" << p[0]
                      << " client=127.0.0.1:" << p[1] << " curve=" << keygen(gw_key) << "\n"
                      << "node s1 session mesh=tcp://127.0.0.1:" << p[2]
                      << " curve=" << keygen(s1_key) << "\n"
                      << "operator host-a curve=" << keygen(dir.path() + "/a/keys/operator.key")
                      << "\n"
                      << "operator host-b curve=" << keygen(dir.path() + "/b/keys/operator.key")
                      << "\n";
  std::ofstream(secret) << "0123456789abcdef0123456789abcdef\n";
  const std::string host_a = Bin("meshctl") + " --var " + dir.path() + "/a ";
  const std::string host_b = Bin("meshctl") + " --var " + dir.path() + "/b ";
  struct Down {
    std::string a, b;
    ~Down() {
      RunCommand(a + "down");
      RunCommand(b + "down");
    }
  } down{host_a, host_b};
  std::string out;
  // A node's key must be the one the map lists for it.
  CHECK(RunCommand(host_b + "start s1 --map " + file + " --secret-file " + secret, &out) == 1);
  CHECK_THAT(out, Catch::Contains("--key-file"));
  CHECK(RunCommand(host_b + "start s1 --map " + file + " --secret-file " + secret + " --key-file " +
                       gw_key,
                   &out) == 1);
  CHECK_THAT(out, Catch::Contains("not the one the map lists"));
  REQUIRE(RunCommand(host_b + "start s1 --map " + file + " --secret-file " + secret +
                         " --key-file " + s1_key,
                     &out) == 0);
  // The gateway takes clients over TLS only (no certificate: it does not start), with a
  // certificate from the development CA that `chat --ca` checks.
  CHECK(RunCommand(host_a + "start gw1 --map " + file + " --secret-file " + secret +
                       " --key-file " + gw_key,
                   &out) != 0);
  CHECK_THAT(out, Catch::Contains("clients need TLS"));
  REQUIRE(RunCommand(host_a + "tls-certs --dir " + dir.path() + "/tls", &out) == 0);
  REQUIRE(RunCommand(host_a + "start gw1 --map " + file + " --secret-file " + secret +
                         " --key-file " + gw_key + " --opt tls_cert=" + dir.path() +
                         "/tls/gateway.pem --opt tls_key=" + dir.path() + "/tls/gateway.key",
                     &out) == 0);
  const std::string chat = "MESHCHAT_HOME=" + dir.path() + " " + Bin("chat") + " --ca " +
                           dir.path() + "/tls/ca.pem --server 127.0.0.1:" + std::to_string(p[1]) +
                           " --token ";
  auto token = [&](const std::string& user) {
    std::string t;
    REQUIRE(RunCommand(host_a + "token " + user, &t) == 0);
    return LastLine(t);
  };
  REQUIRE(RunCommand(chat + token("alice") + " send --to bob 'across hosts'", &out) == 0);
  REQUIRE(RunCommand(chat + token("bob") + " listen --count 1 --timeout 10", &out) == 0);
  CHECK(out == "across hosts\n");
  // Each host's meshctl asks both nodes with its own operator key.
  CHECK(RunCommand(host_b + "status", &out) == 0);  // non-zero if a node does not answer
  CHECK_THAT(out, Catch::Contains("gw1") && Catch::Contains("s1"));

  // Bad input: a node the file does not have, a malformed file, no secret.
  CHECK(RunCommand(host_a + "start nosuch --map " + file, &out) == 1);
  CHECK_THAT(out, Catch::Contains("no node 'nosuch'"));
  std::ofstream(dir.path() + "/bad.map") << "epoch 1\nnode gw1 gateway mesh=tcp://x\n";
  CHECK(RunCommand(host_a + "start gw1 --map " + dir.path() + "/bad.map", &out) == 1);
  CHECK_THAT(out, Catch::Contains("line 2"));
  CHECK(RunCommand(Bin("meshctl") + " --var " + dir.path() + "/c start s1 --map " + file, &out) ==
        1);
  CHECK_THAT(out, Catch::Contains("--secret-file"));
}
