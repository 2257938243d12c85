// docs/PROTOCOL.md is the contract an independent client is written from. Its hex test vectors
// are checked here byte for byte: each decodes to the expected message and re-encodes to the
// same bytes, so the document cannot drift from the code.
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "codec/client_messages.h"
#include "codec/group_messages.h"
#include "codec/history_messages.h"
#include "codec/media_messages.h"
#include "codec/presence_messages.h"

using namespace meshchat::codec;

namespace {

std::map<std::string, std::string> VectorsFromDoc() {
  std::ifstream in(std::string(MESHCHAT_SOURCE_DIR) + "/docs/PROTOCOL.md");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  std::map<std::string, std::string> out;
  std::regex block(R"(<!-- vector: ([a-z_]+) -->\s*```hex\n([0-9a-f \n]+)```)");
  for (std::sregex_iterator it(doc.begin(), doc.end(), block), end; it != end; ++it) {
    std::string hex = (*it)[2], bytes;
    std::string digits;
    for (char c : hex)
      if (isxdigit(static_cast<unsigned char>(c))) digits.push_back(c);
    for (size_t i = 0; i + 1 < digits.size(); i += 2)
      bytes.push_back(static_cast<char>(std::stoi(digits.substr(i, 2), nullptr, 16)));
    out[(*it)[1]] = bytes;
  }
  return out;
}

std::string Hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string o;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) o.push_back(i % 16 ? ' ' : '\n');
    o.push_back(d[static_cast<unsigned char>(s[i]) >> 4]);
    o.push_back(d[static_cast<unsigned char>(s[i]) & 15]);
  }
  return o;
}

template <typename M>
void Check(const std::map<std::string, std::string>& vectors, const std::string& name,
           const M& expected, uint8_t type) {
  INFO("vector " << name << "; the code encodes it as:\n"
                 << Hex(EncodeFrame(type, Encode(expected))));
  auto it = vectors.find(name);
  REQUIRE(it != vectors.end());
  FrameView f;
  size_t used = 0;
  REQUIRE(DecodeFrame(it->second, f, used) == DecodeStatus::kOk);
  CHECK(used == it->second.size());
  CHECK(f.type == type);
  M got;
  REQUIRE(Decode(f.body, got) == DecodeStatus::kOk);
  CHECK(got == expected);
  CHECK(EncodeFrame(type, Encode(got)) == it->second);
}

// Frames about one media item: the 16-byte id, then the map.
template <typename M>
void CheckPrefixed(const std::map<std::string, std::string>& vectors, const std::string& name,
                   const std::string& id, const M& expected, uint8_t type) {
  INFO("vector " << name << "; the code encodes it as:\n" << Hex(EncodeMediaFrame(id, expected)));
  auto it = vectors.find(name);
  REQUIRE(it != vectors.end());
  FrameView f;
  size_t used = 0;
  REQUIRE(DecodeFrame(it->second, f, used) == DecodeStatus::kOk);
  CHECK(f.type == type);
  std::string_view got_id, rest;
  REQUIRE(SplitMediaId(f.body, got_id, rest));
  CHECK(got_id == id);
  M got;
  REQUIRE(Decode(rest, got) == DecodeStatus::kOk);
  CHECK(got == expected);
  CHECK(EncodeMediaFrame(id, got) == it->second);
}

}  // namespace

TEST_CASE("PROTOCOL.md test vectors decode and re-encode exactly", "[codec][protocol]") {
  const auto v = VectorsFromDoc();
  REQUIRE(v.size() >= 22);
  Check(v, "hello", Hello{1, "mc1.eyJ1IjoiYWxpY2UifQ.c2ln"}, 0x01);
  Check(v, "welcome", Welcome{"alice", "phone", 1, "gw1", 1700000000000}, 0x02);
  Check(v, "send", Send{"bob", 1, "hi"}, 0x03);
  Check(v, "sent", Sent{1, "bob", 1, 1700000000000}, 0x04);
  Check(v, "push", Push{3, "alice", "alice", "phone", 1, 1, 1700000000000, "hi", "", false}, 0x05);
  Check(v, "ack", Ack{3}, 0x06);
  Check(v, "receipt", Receipt{4, "bob", ReceiptKind::kDelivered, 1}, 0x0A);
  Check(v, "read", Read{"alice", 1}, 0x0B);
  Check(v, "ping", Ping{7}, 0x07);
  Check(v, "pong", Ping{7}, 0x08);
  Check(v, "bye", Bye{"shutting_down"}, 0x09);
  Check(v, "error_fatal", Error{ErrorCode::kBadToken, "invalid token", std::nullopt, true}, 0x0F);
  Check(v, "group_create", GroupRequest{"create", 1, "crew", {"bob"}, "Crew", 0, 0}, 0x0C);
  Check(v, "group_send", GroupSend{"crew", 1, "hi"}, 0x0E);
  Check(v, "group_hint", GroupHint{"crew", 9}, 0x10);
  Check(v, "group_push",
        Push{5, "crew", "alice", "phone", 2, 1, 1700000000000, "hi", "crew", false}, 0x05);
  Check(v, "presence_watch", PresenceUsers{{"bob"}}, 0x13);
  Check(v, "presence", Presence{"bob", true, 1700000000000}, 0x12);
  Check(v, "typing", Typing{"bob", false, true}, 0x14);
  Check(v, "typing_notice", TypingNotice{"alice", "alice", true, 5000}, 0x15);
  Check(v, "privacy", Privacy{PrivacyMode::kContacts}, 0x16);
  Check(v, "error_send", Error{ErrorCode::kServiceUnavailable, "could not store; retry", 1, false},
        0x0F);

  std::string id;
  for (int i = 0; i < 16; ++i) id.push_back(static_cast<char>(i));
  const std::string sha(32, '\xaa'), ticket(32, '\xbb');
  Check(v, "upload_begin", UploadBegin{1, 5, "image/png", sha}, 0x18);
  Check(v, "upload_state", UploadState{1, id, 5, 5, 262144, true, "image/png", sha, ticket}, 0x19);
  Check(v, "media_data", MediaData{id, 0, 5, "image/png", "hello"}, 0x1D);
  Check(v, "send_media", Send{"bob", 2, "pic", false, MediaRef{id, 5, "image/png", sha, ticket}},
        0x03);
  CheckPrefixed(v, "upload_chunk", id, UploadChunk{0, "hello"}, 0x1A);
  Check(v, "chat_mode", ChatMode{"bob", 3, "permanent", 86400}, 0x20);
  Check(v, "history", History{1, "bob", 0, 0, 20}, 0x21);
  HistoryPage page{1, "bob", "permanent", 0, {}, false};
  page.messages.push_back(Push{0, "bob", "alice", "phone", 1, 1, 1700000000000, "hi", "", false});
  Check(v, "history_page", page, 0x22);
  CheckPrefixed(v, "fetch", id, Fetch{ticket, 0, 5}, 0x1C);
}
