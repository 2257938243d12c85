#include "codec/history_messages.h"

namespace meshchat::codec {

const char* RetentionName(ChatRetention r) {
  return r == ChatRetention::kPermanent ? "permanent" : "temporary";
}

bool ParseRetention(std::string_view s, ChatRetention& out) {
  if (s == "temporary") {
    out = ChatRetention::kTemporary;
    return true;
  }
  if (s == "permanent") {
    out = ChatRetention::kPermanent;
    return true;
  }
  return false;
}

// [from, dev, seq, cid, ts, body, sys, group, media | nil, exp]; readers also take the first
// 8 or 9 (before media and timers existed).
void PutMessages(Writer& w, const std::vector<Push>& messages) {
  w.Array(static_cast<uint32_t>(messages.size()));
  for (const auto& p : messages) {
    w.Array(10)
        .Str(p.from)
        .Str(p.from_device)
        .Uint(p.seq)
        .Uint(p.cid)
        .Uint(p.ts)
        .Bin(p.body)
        .Bool(p.system)
        .Str(p.group);
    if (p.media)
      Put(w, *p.media);
    else
      w.Nil();
    w.Uint(p.exp);
  }
}

DecodeStatus ReadMessages(const msgpack::object* o, std::vector<Push>& out) {
  out.clear();
  if (!o || o->type != msgpack::type::ARRAY) return DecodeStatus::kMalformed;
  for (uint32_t i = 0; i < o->via.array.size; ++i) {
    const msgpack::object& e = o->via.array.ptr[i];
    if (e.type != msgpack::type::ARRAY || e.via.array.size < 8 || e.via.array.size > 10)
      return DecodeStatus::kMalformed;
    const msgpack::object* f = e.via.array.ptr;
    Push p;
    MC_DECODE_TRY(ReadStr(&f[0], p.from, kMaxIdBytes));
    MC_DECODE_TRY(ReadStr(&f[1], p.from_device, kMaxIdBytes));
    MC_DECODE_TRY(ReadUint(&f[2], p.seq));
    MC_DECODE_TRY(ReadUint(&f[3], p.cid));
    MC_DECODE_TRY(ReadUint(&f[4], p.ts));
    MC_DECODE_TRY(ReadBytes(&f[5], p.body, kMaxBodyBytes));
    MC_DECODE_TRY(ReadBool(&f[6], p.system));
    MC_DECODE_TRY(ReadStr(&f[7], p.group, kMaxIdBytes));
    if (e.via.array.size >= 9 && f[8].type != msgpack::type::NIL)
      MC_DECODE_TRY(ReadMediaRef(&f[8], p.media.emplace()));
    if (e.via.array.size == 10) MC_DECODE_TRY(ReadUint(&f[9], p.exp));
    out.push_back(std::move(p));
  }
  return DecodeStatus::kOk;
}

std::string Encode(const ChatMode& m) {
  std::string s;
  Writer(s)
      .Map(4)
      .Key("to")
      .Str(m.to)
      .Key("cid")
      .Uint(m.cid)
      .Key("mode")
      .Str(m.mode)
      .Key("timer")
      .Uint(m.timer);
  return s;
}

DecodeStatus Decode(std::string_view body, ChatMode& out) {
  return DecodeMap(body, [&](const MapView& m) {
    MC_DECODE_TRY(ReadStr(m.Find("to"), out.to, kMaxIdBytes));
    MC_DECODE_TRY(ReadUint(m.Find("cid"), out.cid));
    MC_DECODE_TRY(ReadStr(m.Find("mode"), out.mode, 16));
    out.timer = 0;
    if (m.Find("timer")) MC_DECODE_TRY(ReadUint(m.Find("timer"), out.timer));
    return DecodeStatus::kOk;
  });
}

std::string Encode(const History& m) {
  std::string s;
  Writer w(s);
  w.Map(m.after ? 5 : 4).Key("rid").Uint(m.rid).Key("chat").Str(m.chat);
  w.Key("before").Uint(m.before);
  if (m.after) w.Key("after").Uint(*m.after);
  w.Key("limit").Uint(m.limit);
  return s;
}

DecodeStatus Decode(std::string_view body, History& out) {
  return DecodeMap(body, [&](const MapView& m) {
    MC_DECODE_TRY(ReadUint(m.Find("rid"), out.rid));
    MC_DECODE_TRY(ReadStr(m.Find("chat"), out.chat, kMaxIdBytes));
    out.before = out.limit = 0;
    out.after.reset();
    if (m.Find("before")) MC_DECODE_TRY(ReadUint(m.Find("before"), out.before));
    if (m.Find("after")) MC_DECODE_TRY(ReadUint(m.Find("after"), out.after.emplace()));
    if (m.Find("limit")) MC_DECODE_TRY(ReadUint(m.Find("limit"), out.limit));
    return DecodeStatus::kOk;
  });
}

std::string Encode(const HistoryPage& m) {
  std::string s;
  Writer w(s);
  w.Map(6).Key("rid").Uint(m.rid).Key("chat").Str(m.chat).Key("mode").Str(m.mode);
  w.Key("timer").Uint(m.timer).Key("more").Bool(m.more);
  PutMessages(w.Key("messages"), m.messages);
  return s;
}

DecodeStatus Decode(std::string_view body, HistoryPage& out) {
  UnpackLimits limits;
  limits.array = kMaxHistoryPage;
  limits.depth = 5;  // page > messages > message > media reference
  return DecodeMap(
      body,
      [&](const MapView& m) {
        MC_DECODE_TRY(ReadUint(m.Find("rid"), out.rid));
        MC_DECODE_TRY(ReadStr(m.Find("chat"), out.chat, kMaxIdBytes));
        MC_DECODE_TRY(ReadStr(m.Find("mode"), out.mode, 16));
        MC_DECODE_TRY(ReadUint(m.Find("timer"), out.timer));
        MC_DECODE_TRY(ReadBool(m.Find("more"), out.more));
        MC_DECODE_TRY(ReadMessages(m.Find("messages"), out.messages));
        for (auto& p : out.messages) p.chat = out.chat;
        return DecodeStatus::kOk;
      },
      limits);
}

}  // namespace meshchat::codec
