#include <catch2/catch.hpp>

#include "codec/frame.h"

using namespace meshchat::codec;

TEST_CASE("frame header round trip", "[codec]") {
  std::string f = EncodeFrame(0x03, "abc");
  REQUIRE(f.size() == 8);
  CHECK(f.substr(0, 5) == std::string("\x00\x00\x00\x04\x03", 5));
  FrameView v;
  size_t used = 0;
  REQUIRE(DecodeFrame(f, v, used) == DecodeStatus::kOk);
  CHECK(used == 8);
  CHECK(v.type == 0x03);
  CHECK(v.body == "abc");
}

TEST_CASE("frame decoder asks for more on every prefix", "[codec]") {
  std::string f = EncodeFrame(0x05, std::string(300, 'x'));
  for (size_t n = 0; n < f.size(); ++n) {
    FrameView v;
    size_t used = 0;
    CHECK(DecodeFrame(std::string_view(f).substr(0, n), v, used) == DecodeStatus::kNeedMore);
  }
}

TEST_CASE("frame decoder rejects zero and oversize lengths before buffering", "[codec]") {
  FrameView v;
  size_t used = 0;
  CHECK(DecodeFrame(std::string("\0\0\0\0\x01", 5), v, used) == DecodeStatus::kMalformed);
  // The length alone decides: no need to wait for the type byte.
  CHECK(DecodeFrame(std::string("\0\0\0\0", 4), v, used) == DecodeStatus::kMalformed);
  CHECK(DecodeFrame(std::string("\xff\xff\xff\xff", 4), v, used) == DecodeStatus::kTooLarge);
  CHECK(DecodeFrame(std::string("\0\0\0\x02", 4), v, used) == DecodeStatus::kNeedMore);
  // 0xFFFFFFFF declared, only the header present: too large at once, no need for the body.
  CHECK(DecodeFrame(std::string("\xff\xff\xff\xff\x01", 5), v, used) == DecodeStatus::kTooLarge);
  const uint32_t over = kMaxFrameLength + 1;
  std::string h = {char(over >> 24), char(over >> 16), char(over >> 8), char(over), 1};
  CHECK(DecodeFrame(h, v, used) == DecodeStatus::kTooLarge);
  FrameHeader hdr;
  const uint32_t max = kMaxFrameLength;
  std::string ok = {char(max >> 24), char(max >> 16), char(max >> 8), char(max), 1};
  CHECK(DecodeHeader(ok, hdr) == DecodeStatus::kOk);
  CHECK(hdr.body_size() == kMaxFrameLength - 1);
}

TEST_CASE("several frames in one buffer split cleanly", "[codec]") {
  std::string buf = EncodeFrame(1, "a") + EncodeFrame(2, "") + EncodeFrame(3, "ccc");
  std::string_view in = buf;
  std::vector<std::pair<int, std::string>> got;
  while (!in.empty()) {
    FrameView v;
    size_t used = 0;
    REQUIRE(DecodeFrame(in, v, used) == DecodeStatus::kOk);
    got.emplace_back(v.type, std::string(v.body));
    in.remove_prefix(used);
  }
  CHECK(got == std::vector<std::pair<int, std::string>>{{1, "a"}, {2, ""}, {3, "ccc"}});
}

TEST_CASE("client-to-server type table", "[codec]") {
  for (auto t :
       {FrameType::kHello, FrameType::kSend, FrameType::kAck, FrameType::kPing, FrameType::kBye})
    CHECK(IsClientToServer(static_cast<uint8_t>(t)));
  for (auto t : {FrameType::kWelcome, FrameType::kSent, FrameType::kPush, FrameType::kPong,
                 FrameType::kError})
    CHECK_FALSE(IsClientToServer(static_cast<uint8_t>(t)));
  CHECK_FALSE(IsClientToServer(0x00));
  CHECK_FALSE(IsClientToServer(0xEE));
}
