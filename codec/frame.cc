#include "codec/frame.h"

namespace meshchat::codec {

bool IsClientToServer(uint8_t type) {
  switch (static_cast<FrameType>(type)) {
    case FrameType::kHello:
    case FrameType::kSend:
    case FrameType::kAck:
    case FrameType::kPing:
    case FrameType::kBye:
    case FrameType::kRead:
    case FrameType::kGroup:
    case FrameType::kGroupSend:
    case FrameType::kPresenceQuery:
    case FrameType::kPresenceWatch:
    case FrameType::kTyping:
    case FrameType::kPrivacy:
    case FrameType::kUploadBegin:
    case FrameType::kUploadChunk:
    case FrameType::kUploadStatus:
    case FrameType::kFetch:
    case FrameType::kMediaLinkReq:
    case FrameType::kChatMode:
    case FrameType::kHistory: return true;
    default: return false;
  }
}

bool IsMediaFrame(uint8_t type) {
  return type >= static_cast<uint8_t>(FrameType::kUploadBegin) &&
         type <= static_cast<uint8_t>(FrameType::kMediaLink);
}

const char* FrameTypeName(uint8_t type) {
  switch (static_cast<FrameType>(type)) {
    case FrameType::kHello: return "hello";
    case FrameType::kUploadBegin: return "upload_begin";
    case FrameType::kUploadState: return "upload_state";
    case FrameType::kUploadChunk: return "upload_chunk";
    case FrameType::kUploadStatus: return "upload_status";
    case FrameType::kFetch: return "fetch";
    case FrameType::kMediaData: return "media_data";
    case FrameType::kMediaLinkReq: return "media_link_req";
    case FrameType::kMediaLink: return "media_link";
    case FrameType::kChatMode: return "chat_mode";
    case FrameType::kHistory: return "history";
    case FrameType::kHistoryPage: return "history_page";
    case FrameType::kWelcome: return "welcome";
    case FrameType::kSend: return "send";
    case FrameType::kSent: return "sent";
    case FrameType::kPush: return "push";
    case FrameType::kAck: return "ack";
    case FrameType::kPing: return "ping";
    case FrameType::kPong: return "pong";
    case FrameType::kBye: return "bye";
    case FrameType::kReceipt: return "receipt";
    case FrameType::kRead: return "read";
    case FrameType::kGroup: return "group";
    case FrameType::kGroupResult: return "group_result";
    case FrameType::kGroupSend: return "group_send";
    case FrameType::kGroupHint: return "group_hint";
    case FrameType::kPresenceQuery: return "presence_query";
    case FrameType::kPresence: return "presence";
    case FrameType::kPresenceWatch: return "presence_watch";
    case FrameType::kTyping: return "typing";
    case FrameType::kTypingNotice: return "typing_notice";
    case FrameType::kPrivacy: return "privacy";
    case FrameType::kReconnect: return "reconnect";
    case FrameType::kError: return "error";
  }
  return "unknown";
}

const char* DecodeStatusName(DecodeStatus s) {
  switch (s) {
    case DecodeStatus::kOk: return "ok";
    case DecodeStatus::kNeedMore: return "need more";
    case DecodeStatus::kTooLarge: return "too large";
    case DecodeStatus::kMalformed: return "malformed";
  }
  return "?";
}

DecodeStatus DecodeHeader(std::string_view in, FrameHeader& out, uint32_t max_length) {
  // The length alone decides a bad frame: judged as soon as its 4 bytes are in, without
  // waiting for the type byte (a client that sent a zero length hears at once).
  if (in.size() < 4) return DecodeStatus::kNeedMore;
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  uint32_t len = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
  if (len == 0) return DecodeStatus::kMalformed;
  if (len > max_length) return DecodeStatus::kTooLarge;
  if (in.size() < kHeaderSize) return DecodeStatus::kNeedMore;
  out.length = len;
  out.type = p[4];
  return DecodeStatus::kOk;
}

DecodeStatus DecodeFrame(std::string_view in, FrameView& out, size_t& consumed,
                         uint32_t max_length) {
  FrameHeader h;
  DecodeStatus s = DecodeHeader(in, h, max_length);
  if (s != DecodeStatus::kOk) return s;
  if (in.size() < h.frame_size()) return DecodeStatus::kNeedMore;
  out.type = h.type;
  out.body = in.substr(kHeaderSize, h.body_size());
  consumed = h.frame_size();
  return DecodeStatus::kOk;
}

void AppendFrame(std::string& out, uint8_t type, std::string_view body) {
  const uint32_t len = static_cast<uint32_t>(body.size() + 1);
  const char hdr[kHeaderSize] = {static_cast<char>(len >> 24), static_cast<char>(len >> 16),
                                 static_cast<char>(len >> 8), static_cast<char>(len),
                                 static_cast<char>(type)};
  out.append(hdr, kHeaderSize);
  out.append(body);
}

}  // namespace meshchat::codec
