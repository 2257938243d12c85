#include "codec/client_messages.h"

#include "codec/msgpack_view.h"

namespace meshchat::codec {

bool IsValidId(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdBytes) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '@' || c == '-';
    if (!ok) return false;
  }
  return true;
}

const char* ErrorCodeName(ErrorCode c) {
  switch (c) {
    case ErrorCode::kMalformedFrame: return "malformed_frame";
    case ErrorCode::kFrameTooLarge: return "frame_too_large";
    case ErrorCode::kUnknownType: return "unknown_type";
    case ErrorCode::kNotAuthenticated: return "not_authenticated";
    case ErrorCode::kBadToken: return "bad_token";
    case ErrorCode::kTokenExpired: return "token_expired";
    case ErrorCode::kUnsupportedVersion: return "unsupported_version";
    case ErrorCode::kBadRequest: return "bad_request";
    case ErrorCode::kRecipientUnavailable: return "recipient_unavailable";
    case ErrorCode::kServiceUnavailable: return "service_unavailable";
    case ErrorCode::kAlreadyAuthenticated: return "already_authenticated";
    case ErrorCode::kHelloTimeout: return "hello_timeout";
    case ErrorCode::kShuttingDown: return "shutting_down";
    case ErrorCode::kSlowConsumer: return "slow_consumer";
    case ErrorCode::kReplaced: return "replaced";
    case ErrorCode::kTooManyDevices: return "too_many_devices";
    case ErrorCode::kNotMember: return "not_member";
    case ErrorCode::kNotAdmin: return "not_admin";
    case ErrorCode::kGroupExists: return "group_exists";
    case ErrorCode::kGroupFull: return "group_full";
    case ErrorCode::kRateLimited: return "rate_limited";
    case ErrorCode::kMediaNotFound: return "media_not_found";
    case ErrorCode::kMediaTooLarge: return "media_too_large";
    case ErrorCode::kMediaType: return "media_type";
    case ErrorCode::kHashMismatch: return "hash_mismatch";
    case ErrorCode::kBadOffset: return "bad_offset";
    case ErrorCode::kMediaUnavailable: return "media_unavailable";
    case ErrorCode::kMediaIncomplete: return "media_incomplete";
  }
  return "unknown_error";
}

// ---- encoders: key order is fixed so test vectors in docs/PROTOCOL.md are byte-exact ----

std::string Encode(const Hello& m) {
  std::string s;
  Writer(s).Map(2).Key("v").Uint(m.version).Key("token").Str(m.token);
  return s;
}

std::string Encode(const Welcome& m) {
  std::string s;
  Writer(s)
      .Map(5)
      .Key("user")
      .Str(m.user)
      .Key("device")
      .Str(m.device)
      .Key("conn")
      .Uint(m.conn)
      .Key("node")
      .Str(m.node)
      .Key("time")
      .Uint(m.time_ms);
  return s;
}

void Put(Writer& w, const MediaRef& m) {
  w.Map(5).Key("id").Bin(m.id).Key("size").Uint(m.size).Key("type").Str(m.type);
  w.Key("sha256").Bin(m.sha256).Key("ticket").Bin(m.ticket);
}

std::string Encode(const MediaRef& m) {
  std::string s;
  Writer w(s);
  Put(w, m);
  return s;
}

DecodeStatus ReadMediaRef(const msgpack::object* o, MediaRef& out) {
  if (!o) return DecodeStatus::kMalformed;
  auto m = MapView::Of(*o);
  if (!m) return DecodeStatus::kMalformed;
  MC_DECODE_TRY(ReadBytes(m->Find("id"), out.id, kMediaIdBytes));
  MC_DECODE_TRY(ReadUint(m->Find("size"), out.size));
  MC_DECODE_TRY(ReadStr(m->Find("type"), out.type, kMaxMediaTypeBytes));
  MC_DECODE_TRY(ReadBytes(m->Find("sha256"), out.sha256, kSha256Bytes));
  MC_DECODE_TRY(ReadBytes(m->Find("ticket"), out.ticket, kSha256Bytes));
  if (out.id.size() != kMediaIdBytes || out.sha256.size() != kSha256Bytes ||
      out.ticket.size() != kSha256Bytes)
    return DecodeStatus::kMalformed;
  return DecodeStatus::kOk;
}

DecodeStatus Decode(std::string_view body, MediaRef& out) {
  msgpack::zone zone;
  msgpack::object obj;
  MC_DECODE_TRY(BoundedUnpack(body, zone, obj, {}));
  return ReadMediaRef(&obj, out);
}

std::string Encode(const Send& m) {
  std::string s;
  Writer w(s);
  w.Map(3 + (m.app ? 1 : 0) + (m.media ? 1 : 0));
  w.Key("to").Str(m.to).Key("cid").Uint(m.cid).Key("body").Bin(m.body);
  if (m.app) w.Key("app").Bool(true);
  if (m.media) Put(w.Key("media"), *m.media);
  return s;
}

const char* ReceiptKindName(ReceiptKind k) {
  switch (k) {
    case ReceiptKind::kDelivered: return "delivered";
    case ReceiptKind::kRead: return "read";
    case ReceiptKind::kExpired: return "expired";
  }
  return "?";
}

std::string Encode(const Sent& m) {
  std::string s;
  Writer(s).Map(4).Key("cid").Uint(m.cid).Key("to").Str(m.to).Key("seq").Uint(m.seq).Key("ts").Uint(
      m.ts);
  return s;
}

std::string Encode(const Push& m) {
  std::string s;
  Writer w(s);
  const uint32_t extra =
      (m.group.empty() ? 0 : 1) + (m.system ? 1 : 0) + (m.media ? 1 : 0) + (m.exp ? 1 : 0);
  w.Map(8 + extra)
      .Key("n")
      .Uint(m.n)
      .Key("chat")
      .Str(m.chat)
      .Key("from")
      .Str(m.from)
      .Key("dev")
      .Str(m.from_device)
      .Key("seq")
      .Uint(m.seq)
      .Key("cid")
      .Uint(m.cid)
      .Key("ts")
      .Uint(m.ts)
      .Key("body")
      .Bin(m.body);
  if (!m.group.empty()) w.Key("group").Str(m.group);
  if (m.system) w.Key("sys").Bool(true);
  if (m.media) Put(w.Key("media"), *m.media);
  if (m.exp) w.Key("exp").Uint(m.exp);
  return s;
}

std::string Encode(const Ack& m) {
  std::string s;
  Writer(s).Map(1).Key("n").Uint(m.n);
  return s;
}

std::string Encode(const Receipt& m) {
  std::string s;
  Writer(s)
      .Map(4)
      .Key("n")
      .Uint(m.n)
      .Key("chat")
      .Str(m.chat)
      .Key("kind")
      .Str(ReceiptKindName(m.kind))
      .Key("seq")
      .Uint(m.seq);
  return s;
}

std::string Encode(const Read& m) {
  std::string s;
  Writer w(s);
  w.Map(2 + (m.group ? 1 : 0) + (m.app ? 1 : 0)).Key("chat").Str(m.chat).Key("seq").Uint(m.seq);
  if (m.group) w.Key("group").Bool(true);
  if (m.app) w.Key("app").Bool(true);
  return s;
}

std::string Encode(const Ping& m) {
  std::string s;
  Writer(s).Map(1).Key("t").Uint(m.t);
  return s;
}

std::string Encode(const Bye& m) {
  std::string s;
  Writer(s).Map(1).Key("reason").Str(m.reason);
  return s;
}

std::string Encode(const Error& m) {
  std::string s;
  Writer w(s);
  w.Map(3 + (m.cid ? 1 : 0) + (m.retry_after ? 1 : 0) + (m.media.empty() ? 0 : 1))
      .Key("code")
      .Uint(static_cast<uint64_t>(m.code))
      .Key("msg")
      .Str(m.msg)
      .Key("fatal")
      .Bool(m.fatal);
  if (m.cid) w.Key("cid").Uint(*m.cid);
  if (m.retry_after) w.Key("retry_after").Uint(m.retry_after);
  if (!m.media.empty()) w.Key("media").Bin(m.media);
  return s;
}

// ---- decoders ----

DecodeStatus Decode(std::string_view body, Hello& out) {
  return DecodeMap(body, [&](const MapView& m) {
    MC_DECODE_TRY(ReadUint(m.Find("v"), out.version));
    MC_DECODE_TRY(ReadStr(m.Find("token"), out.token, kMaxTokenBytes));
    return DecodeStatus::kOk;
  });
}

DecodeStatus Decode(std::string_view body, Welcome& out) {
  return DecodeMap(body, [&](const MapView& m) {
    MC_DECODE_TRY(ReadStr(m.Find("user"), out.user, kMaxIdBytes));
    MC_DECODE_TRY(ReadStr(m.Find("device"), out.device, kMaxIdBytes));
    MC_DECODE_TRY(ReadUint(m.Find("conn"), out.conn));
    MC_DECODE_TRY(ReadStr(m.Find("node"), out.node, kMaxIdBytes));
    MC_DECODE_TRY(ReadUint(m.Find("time"), out.time_ms));
    return DecodeStatus::kOk;
  });
}

DecodeStatus Decode(std::string_view body, Send& out) {
  return DecodeMap(body, [&](const MapView& m) {
    MC_DECODE_TRY(ReadStr(m.Find("to"), out.to, kMaxIdBytes));
    MC_DECODE_TRY(ReadUint(m.Find("cid"), out.cid));
    MC_DECODE_TRY(ReadBytes(m.Find("body"), out.body, kMaxBodyBytes));
    out.app = false;
    if (m.Find("app")) MC_DECODE_TRY(ReadBool(m.Find("app"), out.app));
    out.media.reset();
    if (const auto* md = m.Find("media")) MC_DECODE_TRY(ReadMediaRef(md, out.media.emplace()));
    return DecodeStatus::kOk;
  });
}

DecodeStatus Decode(std::string_view body, Sent& out) {
  return DecodeMap(body, [&](const MapView& m) {
    MC_DECODE_TRY(ReadUint(m.Find("cid"), out.cid));
    MC_DECODE_TRY(ReadStr(m.Find("to"), out.to, kMaxIdBytes));
    MC_DECODE_TRY(ReadUint(m.Find("seq"), out.seq));
    MC_DECODE_TRY(ReadUint(m.Find("ts"), out.ts));
    return DecodeStatus::kOk;
  });
}

DecodeStatus Decode(std::string_view body, Push& out) {
  return DecodeMap(body, [&](const MapView& m) {
    MC_DECODE_TRY(ReadUint(m.Find("n"), out.n));
    MC_DECODE_TRY(ReadStr(m.Find("chat"), out.chat, kMaxIdBytes));
    MC_DECODE_TRY(ReadStr(m.Find("from"), out.from, kMaxIdBytes));
    MC_DECODE_TRY(ReadStr(m.Find("dev"), out.from_device, kMaxIdBytes));
    MC_DECODE_TRY(ReadUint(m.Find("seq"), out.seq));
    MC_DECODE_TRY(ReadUint(m.Find("cid"), out.cid));
    MC_DECODE_TRY(ReadUint(m.Find("ts"), out.ts));
    MC_DECODE_TRY(ReadBytes(m.Find("body"), out.body, kMaxBodyBytes));
    out.group.clear();
    out.system = false;
    if (m.Find("group")) MC_DECODE_TRY(ReadStr(m.Find("group"), out.group, kMaxIdBytes));
    if (m.Find("sys")) MC_DECODE_TRY(ReadBool(m.Find("sys"), out.system));
    out.exp = 0;
    if (m.Find("exp")) MC_DECODE_TRY(ReadUint(m.Find("exp"), out.exp));
    out.media.reset();
    if (const auto* md = m.Find("media")) MC_DECODE_TRY(ReadMediaRef(md, out.media.emplace()));
    return DecodeStatus::kOk;
  });
}

DecodeStatus Decode(std::string_view body, Ack& out) {
  return DecodeMap(body, [&](const MapView& m) { return ReadUint(m.Find("n"), out.n); });
}

DecodeStatus Decode(std::string_view body, Receipt& out) {
  return DecodeMap(body, [&](const MapView& m) {
    MC_DECODE_TRY(ReadUint(m.Find("n"), out.n));
    MC_DECODE_TRY(ReadStr(m.Find("chat"), out.chat, kMaxIdBytes));
    std::string kind;
    MC_DECODE_TRY(ReadStr(m.Find("kind"), kind, 16));
    if (kind == "delivered")
      out.kind = ReceiptKind::kDelivered;
    else if (kind == "read")
      out.kind = ReceiptKind::kRead;
    else if (kind == "expired")
      out.kind = ReceiptKind::kExpired;
    else
      return DecodeStatus::kMalformed;
    MC_DECODE_TRY(ReadUint(m.Find("seq"), out.seq));
    return DecodeStatus::kOk;
  });
}

DecodeStatus Decode(std::string_view body, Read& out) {
  return DecodeMap(body, [&](const MapView& m) {
    MC_DECODE_TRY(ReadStr(m.Find("chat"), out.chat, kMaxIdBytes));
    MC_DECODE_TRY(ReadUint(m.Find("seq"), out.seq));
    out.group = out.app = false;
    if (m.Find("group")) MC_DECODE_TRY(ReadBool(m.Find("group"), out.group));
    if (m.Find("app")) MC_DECODE_TRY(ReadBool(m.Find("app"), out.app));
    return DecodeStatus::kOk;
  });
}

DecodeStatus Decode(std::string_view body, Ping& out) {
  return DecodeMap(body, [&](const MapView& m) { return ReadUint(m.Find("t"), out.t); });
}

DecodeStatus Decode(std::string_view body, Bye& out) {
  return DecodeMap(body, [&](const MapView& m) {
    return m.Find("reason") ? ReadStr(m.Find("reason"), out.reason, kMaxErrorTextBytes)
                            : DecodeStatus::kOk;
  });
}

DecodeStatus Decode(std::string_view body, Error& out) {
  return DecodeMap(body, [&](const MapView& m) {
    uint64_t code = 0;
    MC_DECODE_TRY(ReadUint(m.Find("code"), code));
    if (code > 0xFFFF) return DecodeStatus::kMalformed;
    out.code = static_cast<ErrorCode>(code);
    MC_DECODE_TRY(ReadStr(m.Find("msg"), out.msg, kMaxErrorTextBytes));
    MC_DECODE_TRY(ReadBool(m.Find("fatal"), out.fatal));
    out.cid.reset();
    if (const auto* c = m.Find("cid")) {
      uint64_t cid = 0;
      MC_DECODE_TRY(ReadUint(c, cid));
      out.cid = cid;
    }
    out.retry_after = 0;
    if (m.Find("retry_after")) MC_DECODE_TRY(ReadUint(m.Find("retry_after"), out.retry_after));
    out.media.clear();
    if (m.Find("media")) MC_DECODE_TRY(ReadBytes(m.Find("media"), out.media, kMediaIdBytes));
    return DecodeStatus::kOk;
  });
}

}  // namespace meshchat::codec
