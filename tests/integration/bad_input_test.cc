// Protocol abuse against a real gateway: each bad input gets its error frame and a closed
// connection, while a well-behaved pair of clients on the same gateway keeps chatting.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include <sstream>

#include "client/connection.h"
#include "codec/client_messages.h"
#include "tests/integration/test_mesh.h"

using namespace meshchat;
using namespace meshchat::test;

namespace {

// Reads the error frame the server sends and checks the connection is then closed.
void ExpectFatal(client::Connection& c, codec::ErrorCode code) {
  auto f = c.ReadFrame(5000);
  INFO(f.status().ToString());
  REQUIRE(f.ok());
  REQUIRE(f->type == static_cast<uint8_t>(codec::FrameType::kError));
  codec::Error e;
  REQUIRE(codec::Decode(f->body, e) == codec::DecodeStatus::kOk);
  CHECK(e.code == code);
  CHECK(e.fatal);
  auto after = c.ReadFrame(5000);
  CHECK(after.status().code() == Code::kUnavailable);  // closed by the server
}

client::Connection Raw(const TestMesh& mesh) {
  auto c = client::Connection::Dial(mesh.Gateway(0).host, mesh.Gateway(0).port, 2000);
  REQUIRE(c.ok());
  return std::move(c).value();
}

std::string Header(uint32_t len, uint8_t type) {
  return {char(len >> 24), char(len >> 16), char(len >> 8), char(len), char(type)};
}

void StillChatting(client::ChatClient& a, client::ChatClient& b, const std::string& to_b,
                   const std::string& text) {
  REQUIRE(a.Send(to_b, text).ok());
  CHECK(Expect<codec::Push>(b).body == text);
  Expect<codec::Sent>(a);
}

}  // namespace

TEST_CASE("bad input gets an error and a closed connection - others keep chatting",
          "[integration][abuse]") {
  TestMesh mesh;
  auto [a, b] = mesh.CrossShardUsers();
  auto ca = mesh.Connect(a, 0);
  auto cb = mesh.Connect(b, 0);
  StillChatting(ca, cb, b, "before");

  SECTION("garbage bytes (an HTTP request)") {
    auto c = Raw(mesh);
    REQUIRE(c.SendRaw("GET / HTTP/1.1\r\nHost: x\r\n\r\n").ok());
    ExpectFatal(c, codec::ErrorCode::kFrameTooLarge);  // "GET " read as a length
  }
  SECTION("an oversize declared length, without the bytes") {
    auto c = Raw(mesh);
    REQUIRE(c.SendRaw(Header(64u << 20, 0x01)).ok());
    ExpectFatal(c, codec::ErrorCode::kFrameTooLarge);
  }
  SECTION("a zero length") {
    auto c = Raw(mesh);
    REQUIRE(c.SendRaw(Header(0, 0x01)).ok());
    ExpectFatal(c, codec::ErrorCode::kMalformedFrame);
  }
  SECTION("a zero length, answered before any type byte follows") {
    auto c = Raw(mesh);
    REQUIRE(c.SendRaw(std::string(4, '\0')).ok());
    ExpectFatal(c, codec::ErrorCode::kMalformedFrame);
  }
  SECTION("an unknown frame type") {
    auto c = Raw(mesh);
    REQUIRE(c.SendFrame(0x7E, "\x80").ok());
    ExpectFatal(c, codec::ErrorCode::kUnknownType);
  }
  SECTION("a message before hello") {
    auto c = Raw(mesh);
    REQUIRE(c.SendFrame(0x03, codec::Encode(codec::Send{b, 1, "sneaky"})).ok());
    ExpectFatal(c, codec::ErrorCode::kNotAuthenticated);
  }
  SECTION("a bad token") {
    auto c = Raw(mesh);
    REQUIRE(c.SendFrame(0x01, codec::Encode(codec::Hello{1, "mc1.forged.token"})).ok());
    ExpectFatal(c, codec::ErrorCode::kBadToken);
  }
  SECTION("an expired token") {
    auto c = Raw(mesh);
    REQUIRE(c.SendFrame(0x01, codec::Encode(codec::Hello{1, mesh.Token("eve", "d", -3600)})).ok());
    ExpectFatal(c, codec::ErrorCode::kTokenExpired);
  }
  SECTION("a token tampered with") {
    auto c = Raw(mesh);
    std::string t = mesh.Token("eve");
    t[t.size() / 2] = t[t.size() / 2] == 'A' ? 'B' : 'A';
    REQUIRE(c.SendFrame(0x01, codec::Encode(codec::Hello{1, t})).ok());
    ExpectFatal(c, codec::ErrorCode::kBadToken);
  }
  SECTION("a hello body that is not msgpack") {
    auto c = Raw(mesh);
    REQUIRE(c.SendFrame(0x01, "\xc1\xc1\xc1").ok());
    ExpectFatal(c, codec::ErrorCode::kMalformedFrame);
  }
  SECTION("a hello body nested 100,000 deep (a msgpack bomb)") {
    auto c = Raw(mesh);
    REQUIRE(c.SendFrame(0x01, std::string(100'000, '\x91') + "\x01").ok());
    ExpectFatal(c, codec::ErrorCode::kFrameTooLarge);  // over the 8 KiB allowed before hello
  }
  SECTION("a hello body nested 8,000 deep (a msgpack bomb within the hello limit)") {
    auto c = Raw(mesh);
    REQUIRE(c.SendFrame(0x01, std::string(8'000, '\x91') + "\x01").ok());
    ExpectFatal(c, codec::ErrorCode::kMalformedFrame);
  }
  SECTION("a hello declaring a 4 GiB token in 15 bytes") {
    auto c = Raw(mesh);
    REQUIRE(c.SendFrame(0x01, std::string("\x82\xa1v\x01\xa5token\xdb\xff\xff\xff\xff", 15)).ok());
    ExpectFatal(c, codec::ErrorCode::kMalformedFrame);
  }
  SECTION("an unsupported protocol version") {
    auto c = Raw(mesh);
    REQUIRE(c.SendFrame(0x01, codec::Encode(codec::Hello{99, mesh.Token("eve")})).ok());
    ExpectFatal(c, codec::ErrorCode::kUnsupportedVersion);
  }
  SECTION("a truncated frame, then the client goes away") {
    std::string out;
    {
      auto c = Raw(mesh);
      REQUIRE(c.SendRaw(Header(100, 0x01) + "only-part").ok());
    }
    // The gateway drops the half frame and the connection; its count returns to 2.
    bool back_to_two = false;
    for (int i = 0; i < 50 && !back_to_two; ++i) {
      REQUIRE(mesh.Meshctl("status --json", &out) == 0);
      std::istringstream lines(out);
      for (std::string line; std::getline(lines, line);)
        if (line.find("\"id\":\"gw1\"") != std::string::npos)
          back_to_two = line.find("\"connections\":2,") != std::string::npos;
    }
    CHECK(back_to_two);
  }
  SECTION("a malformed send body after authentication is refused but not fatal") {
    auto c = Raw(mesh);
    REQUIRE(c.SendFrame(0x01, codec::Encode(codec::Hello{1, mesh.Token("mallory")})).ok());
    auto welcome = c.ReadFrame(5000);
    REQUIRE(welcome.ok());
    REQUIRE(welcome->type == static_cast<uint8_t>(codec::FrameType::kWelcome));
    // Not msgpack, then nested 100,000 deep: each refused, neither fatal.
    for (const std::string& body :
         {std::string("\xc1 not msgpack"), std::string(100'000, '\x91') + "\x01"}) {
      REQUIRE(c.SendFrame(0x03, body).ok());
      auto f = c.ReadFrame(5000);
      REQUIRE(f.ok());
      REQUIRE(f->type == static_cast<uint8_t>(codec::FrameType::kError));
      codec::Error e;
      REQUIRE(codec::Decode(f->body, e) == codec::DecodeStatus::kOk);
      CHECK(e.code == codec::ErrorCode::kBadRequest);
      CHECK_FALSE(e.fatal);
      CHECK_THAT(e.msg, !Catch::Contains("65536"));  // neither is about the body's size
    }
    REQUIRE(c.SendFrame(0x07, codec::Encode(codec::Ping{5})).ok());  // still connected
    auto pong = c.ReadFrame(5000);
    REQUIRE(pong.ok());
    CHECK(pong->type == static_cast<uint8_t>(codec::FrameType::kPong));
    CHECK(pong->body == codec::Encode(codec::Ping{5}));
  }

  StillChatting(ca, cb, b, "after");
}

TEST_CASE("an address that keeps failing to authenticate is refused for a while",
          "[integration][overload]") {
  // Three failures at once, then one a second; every test client comes from 127.0.0.1.
  TestMesh mesh(1, 1, "--opt auth_fail_burst=3 --opt auth_fail_rate=1");
  for (int i = 0; i < 3; ++i) {
    auto c = Raw(mesh);
    REQUIRE(c.SendFrame(0x01, codec::Encode(codec::Hello{1, "mc1.forged.token"})).ok());
    ExpectFatal(c, codec::ErrorCode::kBadToken);
  }
  // The next connection is closed at once, whatever token it brings...
  auto refused = client::ChatClient::Connect(mesh.Gateway(0), mesh.Token("alice"), 2000);
  CHECK_FALSE(refused.ok());
  // ...until the address has earned a failure back.
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  auto ok = client::ChatClient::Connect(mesh.Gateway(0), mesh.Token("alice"), 2000);
  CHECK(ok.ok());
}

TEST_CASE(
    "slowloris: a frame started and not finished in time closes the connection - a "
    "large frame sent steadily and an idle connection do not",
    "[integration][abuse]") {
  // Frames must complete within 1 s plus 1 s per 8 KiB of their length.
  TestMesh mesh(1, 1, "--opt frame_deadline_ms=1000");
  const std::string a = "alice", b = "bob";
  auto ca = mesh.Connect(a, 0);
  auto cb = mesh.Connect(b, 0);
  auto closed_within = [](client::Connection& c, int ms) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < until) {
      auto f = c.ReadFrame(100);
      if (!f.ok() && f.status().code() == Code::kUnavailable) return true;
    }
    return false;
  };
  {  // three bytes of a header, then silence: before hello...
    auto c = Raw(mesh);
    REQUIRE(c.SendRaw(std::string("\x00\x00\x00", 3)).ok());
    CHECK(closed_within(c, 2500));
  }
  {  // ...and after it: a 100-byte frame dribbled a byte every 150 ms
    auto c = Raw(mesh);
    const std::string hello = codec::EncodeMessageFrame(codec::Hello{1, mesh.Token("slow")});
    REQUIRE(c.SendRaw(hello).ok());
    REQUIRE(c.ReadFrame(3000).ok());  // welcome
    const std::string frame = codec::EncodeMessageFrame(codec::Send{"x", 1, std::string(90, 'z')});
    bool closed = false;
    for (size_t i = 0; i < frame.size() && !closed; ++i) {
      closed = !c.SendRaw(frame.substr(i, 1)).ok();
      auto f = c.ReadFrame(150);
      closed = closed || (!f.ok() && f.status().code() == Code::kUnavailable);
    }
    CHECK(closed);
  }
  // A 60 KB message in one go, and an idle authenticated connection, are fine.
  auto idle = mesh.Connect("idle", 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  REQUIRE(ca.Send(b, std::string(60'000, 'l')).ok());
  CHECK(Expect<codec::Push>(cb).body.size() == 60'000);
  REQUIRE(idle.Ping(7).ok());
  Expect<client::Pong>(idle);
  CHECK_THAT(mesh.Scrape("gw1"), Catch::Contains("meshchat_gateway_slow_frames_total 2"));
}

TEST_CASE(
    "unauthenticated connections: frames over 8 KiB are refused, and what they buffer "
    "together is bounded",
    "[integration][abuse]") {
  TestMesh mesh(1, 1, "--opt max_unauth_buffered=400000");
  {  // most of a 1 MiB frame before hello: refused at its header, nothing buffered
    auto c = Raw(mesh);
    REQUIRE(c.SendRaw(Header(1u << 20, 0x01) + std::string(60'000, 'x')).ok());
    ExpectFatal(c, codec::ErrorCode::kFrameTooLarge);
  }
  // 100 strangers each start an 8 KiB hello and stop 200 bytes short: 51 fit in 400,000
  // bytes, the others are closed as they go over.
  std::vector<client::Connection> strangers;
  for (int i = 0; i < 100; ++i) {
    strangers.push_back(Raw(mesh));
    REQUIRE(strangers.back().SendRaw(Header(8000, 0x01) + std::string(7800, 'x')).ok());
  }
  double buffered = 0, overflows = 0;
  for (int i = 0; i < 50 && overflows < 49; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const std::string page = mesh.Scrape("gw1");
    buffered = Metric(page, "meshchat_gateway_unauth_buffered_bytes");
    overflows = Metric(page, "meshchat_gateway_unauth_overflows_total");
  }
  CHECK(overflows == 49);
  CHECK(buffered <= 400'000);
  CHECK(buffered == 51 * 7805);
  // Clients that say hello still get in and chat.
  auto a = mesh.Connect("alice", 0);
  auto b = mesh.Connect("bob", 0);
  StillChatting(a, b, "bob", "still here");
  strangers.clear();  // once they go, nothing of theirs stays counted
  for (int i = 0; i < 50 && buffered > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    buffered = Metric(mesh.Scrape("gw1"), "meshchat_gateway_unauth_buffered_bytes");
  }
  CHECK(buffered == 0);
}
