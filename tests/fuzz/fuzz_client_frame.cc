// Client frames: split the input into frames; decode each body as its type's schema; anything
// that decodes must re-encode to something that decodes to the same message.
#include <cstdint>
#include <string>

#include "codec/client_messages.h"
#include "codec/group_messages.h"
#include "codec/history_messages.h"
#include "codec/media_messages.h"
#include "codec/presence_messages.h"
#include "tests/fuzz/fuzz_check.h"

using namespace meshchat::codec;

namespace {
template <typename M>
void RoundTrip(std::string_view body) {
  M m;
  if (Decode(body, m) != DecodeStatus::kOk) return;
  M again;
  FUZZ_CHECK(Decode(Encode(m), again) == DecodeStatus::kOk);
  FUZZ_CHECK(again == m);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  while (!in.empty()) {
    FrameView f;
    size_t used = 0;
    if (DecodeFrame(in, f, used) != DecodeStatus::kOk) break;
    FUZZ_CHECK(used > 0 && used <= in.size());
    switch (static_cast<FrameType>(f.type)) {
      case FrameType::kHello: RoundTrip<Hello>(f.body); break;
      case FrameType::kWelcome: RoundTrip<Welcome>(f.body); break;
      case FrameType::kSend: RoundTrip<Send>(f.body); break;
      case FrameType::kSent: RoundTrip<Sent>(f.body); break;
      case FrameType::kPush: RoundTrip<Push>(f.body); break;
      case FrameType::kAck: RoundTrip<Ack>(f.body); break;
      case FrameType::kPing:
      case FrameType::kPong: RoundTrip<Ping>(f.body); break;
      case FrameType::kBye: RoundTrip<Bye>(f.body); break;
      case FrameType::kReceipt: RoundTrip<Receipt>(f.body); break;
      case FrameType::kRead: RoundTrip<Read>(f.body); break;
      case FrameType::kGroup: RoundTrip<GroupRequest>(f.body); break;
      case FrameType::kGroupResult: RoundTrip<GroupResult>(f.body); break;
      case FrameType::kGroupSend: RoundTrip<GroupSend>(f.body); break;
      case FrameType::kGroupHint: RoundTrip<GroupHint>(f.body); break;
      case FrameType::kPresenceQuery:
      case FrameType::kPresenceWatch: RoundTrip<PresenceUsers>(f.body); break;
      case FrameType::kPresence: RoundTrip<Presence>(f.body); break;
      case FrameType::kTyping: RoundTrip<Typing>(f.body); break;
      case FrameType::kTypingNotice: RoundTrip<TypingNotice>(f.body); break;
      case FrameType::kPrivacy: RoundTrip<Privacy>(f.body); break;
      case FrameType::kError: RoundTrip<Error>(f.body); break;
      case FrameType::kUploadBegin: RoundTrip<UploadBegin>(f.body); break;
      case FrameType::kChatMode: RoundTrip<ChatMode>(f.body); break;
      case FrameType::kHistory: RoundTrip<History>(f.body); break;
      case FrameType::kHistoryPage: RoundTrip<HistoryPage>(f.body); break;
      case FrameType::kUploadState: RoundTrip<UploadState>(f.body); break;
      case FrameType::kMediaData: RoundTrip<MediaData>(f.body); break;
      case FrameType::kMediaLink: RoundTrip<MediaLink>(f.body); break;
      case FrameType::kUploadChunk:
      case FrameType::kUploadStatus:
      case FrameType::kFetch:
      case FrameType::kMediaLinkReq: {  // the id prefix, then the message
        std::string_view id, rest;
        if (!SplitMediaId(f.body, id, rest)) break;
        FUZZ_CHECK(id.size() == kMediaIdBytes);
        if (f.type == static_cast<uint8_t>(FrameType::kUploadChunk)) RoundTrip<UploadChunk>(rest);
        if (f.type == static_cast<uint8_t>(FrameType::kUploadStatus)) RoundTrip<UploadStatus>(rest);
        if (f.type == static_cast<uint8_t>(FrameType::kFetch)) RoundTrip<Fetch>(rest);
        if (f.type == static_cast<uint8_t>(FrameType::kMediaLinkReq)) RoundTrip<MediaLinkReq>(rest);
        break;
      }
      default: RoundTrip<Send>(f.body); break;
    }
    in.remove_prefix(used);
  }
  return 0;
}
