#include "codec/media_messages.h"

#include "codec/msgpack_view.h"
#include "codec/token.h"

namespace meshchat::codec {
namespace {

std::string Be64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) s[static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
  return s;
}

DecodeStatus ReadFixed(const msgpack::object* o, std::string& out, size_t len) {
  MC_DECODE_TRY(ReadBytes(o, out, len));
  return out.size() == len ? DecodeStatus::kOk : DecodeStatus::kMalformed;
}

}  // namespace

bool HasMediaIdPrefix(uint8_t type) {
  switch (static_cast<FrameType>(type)) {
    case FrameType::kUploadChunk:
    case FrameType::kUploadStatus:
    case FrameType::kFetch:
    case FrameType::kMediaLinkReq: return true;
    default: return false;
  }
}

bool SplitMediaId(std::string_view body, std::string_view& id, std::string_view& rest) {
  if (body.size() < kMediaIdBytes) return false;
  id = body.substr(0, kMediaIdBytes);
  rest = body.substr(kMediaIdBytes);
  return true;
}

std::string HexOf(std::string_view raw) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    s.push_back(kDigits[c >> 4]);
    s.push_back(kDigits[c & 15]);
  }
  return s;
}

bool UnHex(std::string_view hex, std::string& raw, size_t raw_len) {
  if (hex.size() != raw_len * 2) return false;
  auto nibble = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  raw.assign(raw_len, '\0');
  for (size_t i = 0; i < raw_len; ++i) {
    const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    raw[i] = static_cast<char>(hi << 4 | lo);
  }
  return true;
}

std::string MediaTicket(const MediaRef& ref, std::string_view secret) {
  return HmacSha256(secret,
                    "media-ticket-v1|" + ref.id + Be64(ref.size) + ref.type + '|' + ref.sha256);
}

bool VerifyMediaTicket(const MediaRef& ref, std::string_view secret) {
  return SameMac(MediaTicket(ref, secret), ref.ticket);
}

std::string UrlSignature(std::string_view id_hex, std::string_view user, uint64_t exp,
                         uint64_t size, std::string_view type, std::string_view secret) {
  std::string data = "media-url-v1|";
  data.append(id_hex).append("|").append(user).append("|").append(Be64(exp)).append(Be64(size));
  data.append(type);
  return HexOf(HmacSha256(secret, data));
}

// ---- encoders ----

std::string Encode(const UploadBegin& m) {
  std::string s;
  Writer(s)
      .Map(4)
      .Key("ref")
      .Uint(m.ref)
      .Key("size")
      .Uint(m.size)
      .Key("type")
      .Str(m.type)
      .Key("sha256")
      .Bin(m.sha256);
  return s;
}

std::string Encode(const UploadState& m) {
  std::string s;
  Writer w(s);
  w.Map(m.done ? 9 : 8).Key("ref").Uint(m.ref).Key("id").Bin(m.id).Key("size").Uint(m.size);
  w.Key("next").Uint(m.next).Key("chunk").Uint(m.chunk).Key("done").Bool(m.done);
  w.Key("type").Str(m.type).Key("sha256").Bin(m.sha256);
  if (m.done) w.Key("ticket").Bin(m.ticket);
  return s;
}

std::string Encode(const UploadChunk& m) {
  std::string s;
  Writer(s).Map(2).Key("off").Uint(m.off).Key("data").Bin(m.data);
  return s;
}

std::string Encode(const UploadStatus&) {
  std::string s;
  Writer(s).Map(0);
  return s;
}

std::string Encode(const Fetch& m) {
  std::string s;
  Writer(s).Map(3).Key("ticket").Bin(m.ticket).Key("off").Uint(m.off).Key("len").Uint(m.len);
  return s;
}

std::string Encode(const MediaData& m) {
  std::string s;
  Writer w(s);
  w.Map(5).Key("id").Bin(m.id).Key("off").Uint(m.off).Key("size").Uint(m.size);
  w.Key("type").Str(m.type).Key("data").Bin(m.data);
  return s;
}

std::string Encode(const MediaLinkReq& m) {
  std::string s;
  Writer(s).Map(2).Key("ticket").Bin(m.ticket).Key("ttl").Uint(m.ttl);
  return s;
}

std::string Encode(const MediaLink& m) {
  std::string s;
  Writer(s).Map(3).Key("id").Bin(m.id).Key("url").Str(m.url).Key("exp").Uint(m.exp);
  return s;
}

// ---- decoders ----

DecodeStatus Decode(std::string_view body, UploadBegin& out) {
  return DecodeMap(body, [&](const MapView& m) {
    MC_DECODE_TRY(ReadUint(m.Find("ref"), out.ref));
    MC_DECODE_TRY(ReadUint(m.Find("size"), out.size));
    MC_DECODE_TRY(ReadStr(m.Find("type"), out.type, kMaxMediaTypeBytes));
    return ReadFixed(m.Find("sha256"), out.sha256, kSha256Bytes);
  });
}

DecodeStatus Decode(std::string_view body, UploadState& out) {
  return DecodeMap(body, [&](const MapView& m) {
    MC_DECODE_TRY(ReadUint(m.Find("ref"), out.ref));
    MC_DECODE_TRY(ReadFixed(m.Find("id"), out.id, kMediaIdBytes));
    MC_DECODE_TRY(ReadUint(m.Find("size"), out.size));
    MC_DECODE_TRY(ReadUint(m.Find("next"), out.next));
    MC_DECODE_TRY(ReadUint(m.Find("chunk"), out.chunk));
    MC_DECODE_TRY(ReadBool(m.Find("done"), out.done));
    MC_DECODE_TRY(ReadStr(m.Find("type"), out.type, kMaxMediaTypeBytes));
    MC_DECODE_TRY(ReadFixed(m.Find("sha256"), out.sha256, kSha256Bytes));
    out.ticket.clear();
    if (out.done) MC_DECODE_TRY(ReadFixed(m.Find("ticket"), out.ticket, kSha256Bytes));
    return DecodeStatus::kOk;
  });
}

DecodeStatus Decode(std::string_view body, UploadChunk& out) {
  return DecodeMap(body, [&](const MapView& m) {
    MC_DECODE_TRY(ReadUint(m.Find("off"), out.off));
    return ReadBytes(m.Find("data"), out.data, kMaxChunkBytes);
  });
}

DecodeStatus Decode(std::string_view body, UploadStatus&) {
  return DecodeMap(body, [](const MapView&) { return DecodeStatus::kOk; });
}

DecodeStatus Decode(std::string_view body, Fetch& out) {
  return DecodeMap(body, [&](const MapView& m) {
    MC_DECODE_TRY(ReadFixed(m.Find("ticket"), out.ticket, kSha256Bytes));
    MC_DECODE_TRY(ReadUint(m.Find("off"), out.off));
    return ReadUint(m.Find("len"), out.len);
  });
}

DecodeStatus Decode(std::string_view body, MediaData& out) {
  return DecodeMap(body, [&](const MapView& m) {
    MC_DECODE_TRY(ReadFixed(m.Find("id"), out.id, kMediaIdBytes));
    MC_DECODE_TRY(ReadUint(m.Find("off"), out.off));
    MC_DECODE_TRY(ReadUint(m.Find("size"), out.size));
    MC_DECODE_TRY(ReadStr(m.Find("type"), out.type, kMaxMediaTypeBytes));
    return ReadBytes(m.Find("data"), out.data, kMaxChunkBytes);
  });
}

DecodeStatus Decode(std::string_view body, MediaLinkReq& out) {
  return DecodeMap(body, [&](const MapView& m) {
    MC_DECODE_TRY(ReadFixed(m.Find("ticket"), out.ticket, kSha256Bytes));
    out.ttl = 0;
    if (m.Find("ttl")) MC_DECODE_TRY(ReadUint(m.Find("ttl"), out.ttl));
    return DecodeStatus::kOk;
  });
}

DecodeStatus Decode(std::string_view body, MediaLink& out) {
  return DecodeMap(body, [&](const MapView& m) {
    MC_DECODE_TRY(ReadFixed(m.Find("id"), out.id, kMediaIdBytes));
    MC_DECODE_TRY(ReadStr(m.Find("url"), out.url, kMaxUrlBytes));
    return ReadUint(m.Find("exp"), out.exp);
  });
}

}  // namespace meshchat::codec
