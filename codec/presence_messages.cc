#include "codec/presence_messages.h"

#include "codec/msgpack_view.h"

namespace meshchat::codec {

const char* PrivacyModeName(PrivacyMode m) {
  switch (m) {
    case PrivacyMode::kEveryone: return "everyone";
    case PrivacyMode::kContacts: return "contacts";
    case PrivacyMode::kNobody: return "nobody";
  }
  return "?";
}

std::string Encode(const PresenceUsers& m) {
  std::string s;
  Writer w(s);
  w.Map(1).Key("users").Array(static_cast<uint32_t>(m.users.size()));
  for (const auto& u : m.users) w.Str(u);
  return s;
}

DecodeStatus Decode(std::string_view body, PresenceUsers& out) {
  UnpackLimits l;
  l.array = kMaxPresenceUsers;
  return DecodeMap(
      body,
      [&](const MapView& m) {
        const msgpack::object* o = m.Find("users");
        if (!o || o->type != msgpack::type::ARRAY) return DecodeStatus::kMalformed;
        out.users.clear();
        for (uint32_t i = 0; i < o->via.array.size; ++i) {
          std::string u;
          MC_DECODE_TRY(ReadStr(&o->via.array.ptr[i], u, kMaxIdBytes));
          out.users.push_back(std::move(u));
        }
        return DecodeStatus::kOk;
      },
      l);
}

std::string Encode(const Presence& m) {
  std::string s;
  Writer(s)
      .Map(3)
      .Key("user")
      .Str(m.user)
      .Key("online")
      .Bool(m.online)
      .Key("last_seen")
      .Uint(m.last_seen);
  return s;
}

DecodeStatus Decode(std::string_view body, Presence& out) {
  return DecodeMap(body, [&](const MapView& m) {
    MC_DECODE_TRY(ReadStr(m.Find("user"), out.user, kMaxIdBytes));
    MC_DECODE_TRY(ReadBool(m.Find("online"), out.online));
    MC_DECODE_TRY(ReadUint(m.Find("last_seen"), out.last_seen));
    return DecodeStatus::kOk;
  });
}

std::string Encode(const Typing& m) {
  std::string s;
  Writer(s).Map(3).Key("to").Str(m.to).Key("group").Bool(m.group).Key("on").Bool(m.on);
  return s;
}

DecodeStatus Decode(std::string_view body, Typing& out) {
  return DecodeMap(body, [&](const MapView& m) {
    MC_DECODE_TRY(ReadStr(m.Find("to"), out.to, kMaxIdBytes));
    out.group = false;
    out.on = true;
    if (m.Find("group")) MC_DECODE_TRY(ReadBool(m.Find("group"), out.group));
    if (m.Find("on")) MC_DECODE_TRY(ReadBool(m.Find("on"), out.on));
    return DecodeStatus::kOk;
  });
}

std::string Encode(const TypingNotice& m) {
  std::string s;
  Writer(s)
      .Map(4)
      .Key("from")
      .Str(m.from)
      .Key("chat")
      .Str(m.chat)
      .Key("on")
      .Bool(m.on)
      .Key("ttl")
      .Uint(m.ttl_ms);
  return s;
}

DecodeStatus Decode(std::string_view body, TypingNotice& out) {
  return DecodeMap(body, [&](const MapView& m) {
    MC_DECODE_TRY(ReadStr(m.Find("from"), out.from, kMaxIdBytes));
    MC_DECODE_TRY(ReadStr(m.Find("chat"), out.chat, kMaxIdBytes));
    MC_DECODE_TRY(ReadBool(m.Find("on"), out.on));
    MC_DECODE_TRY(ReadUint(m.Find("ttl"), out.ttl_ms));
    return DecodeStatus::kOk;
  });
}

std::string Encode(const Privacy& m) {
  std::string s;
  Writer(s).Map(1).Key("mode").Str(PrivacyModeName(m.mode));
  return s;
}

DecodeStatus Decode(std::string_view body, Privacy& out) {
  return DecodeMap(body, [&](const MapView& m) {
    std::string mode;
    MC_DECODE_TRY(ReadStr(m.Find("mode"), mode, 16));
    if (mode == "everyone")
      out.mode = PrivacyMode::kEveryone;
    else if (mode == "contacts")
      out.mode = PrivacyMode::kContacts;
    else if (mode == "nobody")
      out.mode = PrivacyMode::kNobody;
    else
      return DecodeStatus::kMalformed;
    return DecodeStatus::kOk;
  });
}

}  // namespace meshchat::codec
