#include <catch2/catch.hpp>

#include "codec/group_messages.h"
#include "codec/history_messages.h"
#include "codec/media_messages.h"
#include "codec/msgpack_view.h"
#include "tests/codec/round_trip.h"

using namespace meshchat::codec;
using meshchat::test::RoundTrip;

namespace {
const std::string kId(kMediaIdBytes, '\x2a');
const std::string kSha(kSha256Bytes, 's');
}  // namespace

TEST_CASE("media frames round-trip", "[codec][media]") {
  RoundTrip(UploadBegin{3, 1000, "image/jpeg", kSha});
  RoundTrip(UploadState{3, kId, 1000, 512, 262144, false, "image/jpeg", kSha, ""});
  RoundTrip(UploadState{0, kId, 1000, 1000, 262144, true, "image/jpeg", kSha, kSha});
  RoundTrip(UploadChunk{512, "bytes"});
  RoundTrip(UploadStatus{});
  RoundTrip(Fetch{kSha, 10, 20});
  RoundTrip(MediaData{kId, 10, 1000, "image/jpeg", "0123456789"});
  RoundTrip(MediaLinkReq{kSha, 60});
  RoundTrip(MediaLink{kId, "http://h:1/media/x?u=a", 99});
  const MediaRef ref{kId, 1000, "image/jpeg", kSha, kSha};
  RoundTrip(ref);
  RoundTrip(Send{"bob", 1, "look", false, ref});
  RoundTrip(Push{4, "alice", "alice", "phone", 2, 1, 3, "look", "", false, ref});
  Error e{ErrorCode::kHashMismatch, "no", std::nullopt, false};
  e.media = kId;
  RoundTrip(e);
}

TEST_CASE("media frames reject wrong sizes and oversize data", "[codec][media]") {
  UploadBegin b;
  CHECK(Decode(Encode(UploadBegin{1, 10, "image/png", "short"}), b) == DecodeStatus::kMalformed);
  CHECK(Decode(Encode(UploadBegin{1, 10, std::string(65, 'x'), kSha}), b) ==
        DecodeStatus::kTooLarge);
  UploadChunk c;
  CHECK(Decode(Encode(UploadChunk{0, std::string(kMaxChunkBytes + 1, 'x')}), c) ==
        DecodeStatus::kTooLarge);
  CHECK(Decode(Encode(UploadChunk{0, std::string(kMaxChunkBytes, 'x')}), c) == DecodeStatus::kOk);
  Send s;  // a media reference with a 15-byte id
  CHECK(
      Decode(Encode(Send{"bob", 1, "x", false, MediaRef{std::string(15, 'i'), 1, "t", kSha, kSha}}),
             s) == DecodeStatus::kMalformed);
  CHECK(
      Decode(Encode(Send{"bob", 1, "x", false, MediaRef{std::string(17, 'i'), 1, "t", kSha, kSha}}),
             s) == DecodeStatus::kTooLarge);
  Fetch f;
  CHECK(Decode("\x80", f) == DecodeStatus::kMalformed);  // {} has no ticket
}

TEST_CASE("media id prefix, hex, tickets", "[codec][media]") {
  std::string_view id, rest;
  CHECK_FALSE(SplitMediaId(std::string(15, 'x'), id, rest));
  const std::string body = kId + "\x80";
  REQUIRE(SplitMediaId(body, id, rest));
  CHECK(id == kId);
  CHECK(rest == "\x80");
  CHECK(HasMediaIdPrefix(static_cast<uint8_t>(FrameType::kFetch)));
  CHECK_FALSE(HasMediaIdPrefix(static_cast<uint8_t>(FrameType::kUploadBegin)));
  CHECK(IsMediaFrame(static_cast<uint8_t>(FrameType::kUploadBegin)));
  CHECK_FALSE(IsMediaFrame(static_cast<uint8_t>(FrameType::kSend)));
  std::string raw;
  REQUIRE(UnHex(HexOf(kId), raw, kMediaIdBytes));
  CHECK(raw == kId);
  CHECK(HexOf(std::string("\x00\xff", 2)) == "00ff");
  CHECK_FALSE(UnHex("00FF", raw, 2));  // lowercase only
  CHECK_FALSE(UnHex("00f", raw, 2));
  MediaRef ref{kId, 1000, "image/jpeg", kSha, ""};
  ref.ticket = MediaTicket(ref, "secret-secret-secret");
  CHECK(VerifyMediaTicket(ref, "secret-secret-secret"));
  CHECK_FALSE(VerifyMediaTicket(ref, "another-secret-here"));
  for (auto change : {+[](MediaRef& r) { r.size++; }, +[](MediaRef& r) { r.type = "image/png"; },
                      +[](MediaRef& r) { r.sha256[0] ^= 1; }, +[](MediaRef& r) { r.id[3] ^= 1; }}) {
    MediaRef other = ref;
    change(other);
    CHECK_FALSE(VerifyMediaTicket(other, "secret-secret-secret"));
  }
}

TEST_CASE("retention frames round-trip and keep older message arrays readable",
          "[codec][retention]") {
  RoundTrip(ChatMode{"bob", 3, "permanent", 86400});
  RoundTrip(History{1, "bob", 10, 0, 20});
  HistoryPage page{2, "bob", "temporary", 60, {}, true};
  Push p{0, "bob", "alice", "phone", 1, 1, 3, "hi", "", false};
  p.exp = 99;
  p.media = MediaRef{kId, 1, "image/png", kSha, kSha};
  page.messages.push_back(p);
  RoundTrip(page);
  Push q{5, "bob", "alice", "phone", 1, 1, 3, "hi", "", false};
  q.exp = 1234;
  RoundTrip(q);
  GroupRequest mode{"mode", 1, "crew", {}, "", 0, 0};
  mode.mode = "permanent";
  mode.timer = 60;
  RoundTrip(mode);
  // An 8-element message array (before media and timers) still decodes.
  std::string s;
  Writer w(s);
  w.Map(6).Key("rid").Uint(1).Key("chat").Str("bob").Key("mode").Str("permanent");
  w.Key("timer").Uint(0).Key("more").Bool(false).Key("messages").Array(1).Array(8);
  w.Str("alice").Str("phone").Uint(1).Uint(1).Uint(3).Bin("hi").Bool(false).Str("");
  HistoryPage old;
  REQUIRE(Decode(s, old) == DecodeStatus::kOk);
  REQUIRE(old.messages.size() == 1);
  CHECK(old.messages[0].body == "hi");
  CHECK(old.messages[0].chat == "bob");
  ChatMode bad;
  CHECK(Decode(Encode(History{}), bad) == DecodeStatus::kMalformed);
}
