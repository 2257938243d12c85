#include "codec/group_messages.h"

#include "codec/history_messages.h"
#include "codec/msgpack_view.h"

namespace meshchat::codec {
namespace {

UnpackLimits GroupLimits() {
  UnpackLimits l;
  l.array = kMaxGroupList;
  l.map = 32;
  l.depth = 5;  // result > messages > message > media reference
  return l;
}

DecodeStatus ReadStrList(const msgpack::object* o, std::vector<std::string>& out) {
  out.clear();
  if (!o || o->type != msgpack::type::ARRAY) return DecodeStatus::kMalformed;
  for (uint32_t i = 0; i < o->via.array.size; ++i) {
    std::string s;
    MC_DECODE_TRY(ReadStr(&o->via.array.ptr[i], s, kMaxIdBytes));
    out.push_back(std::move(s));
  }
  return DecodeStatus::kOk;
}

}  // namespace

std::string Encode(const GroupRequest& m) {
  std::string s;
  Writer w(s);
  const bool mode = !m.mode.empty() || m.timer;  // sent together: a decoder may see either
  w.Map((mode ? 9 : 7) + (m.after ? 1 : 0))
      .Key("op")
      .Str(m.op)
      .Key("rid")
      .Uint(m.rid)
      .Key("group")
      .Str(m.group);
  w.Key("users").Array(static_cast<uint32_t>(m.users.size()));
  for (const auto& u : m.users) w.Str(u);
  w.Key("name").Str(m.name).Key("seq").Uint(m.seq).Key("limit").Uint(m.limit);
  if (mode) w.Key("mode").Str(m.mode).Key("timer").Uint(m.timer);
  if (m.after) w.Key("after").Uint(*m.after);
  return s;
}

DecodeStatus Decode(std::string_view body, GroupRequest& out) {
  return DecodeMap(
      body,
      [&](const MapView& m) {
        MC_DECODE_TRY(ReadStr(m.Find("op"), out.op, 16));
        MC_DECODE_TRY(ReadUint(m.Find("rid"), out.rid));
        out.group.clear();
        out.users.clear();
        out.name.clear();
        out.seq = out.limit = 0;
        if (m.Find("group")) MC_DECODE_TRY(ReadStr(m.Find("group"), out.group, kMaxIdBytes));
        if (m.Find("users")) MC_DECODE_TRY(ReadStrList(m.Find("users"), out.users));
        if (m.Find("name")) MC_DECODE_TRY(ReadStr(m.Find("name"), out.name, kMaxErrorTextBytes));
        if (m.Find("seq")) MC_DECODE_TRY(ReadUint(m.Find("seq"), out.seq));
        if (m.Find("limit")) MC_DECODE_TRY(ReadUint(m.Find("limit"), out.limit));
        out.mode.clear();
        out.timer = 0;
        if (m.Find("mode")) MC_DECODE_TRY(ReadStr(m.Find("mode"), out.mode, 16));
        if (m.Find("timer")) MC_DECODE_TRY(ReadUint(m.Find("timer"), out.timer));
        out.after.reset();
        if (m.Find("after")) MC_DECODE_TRY(ReadUint(m.Find("after"), out.after.emplace()));
        return DecodeStatus::kOk;
      },
      GroupLimits());
}

std::string Encode(const GroupResult& m) {
  std::string s;
  Writer w(s);
  const bool retention = !m.mode.empty() || m.timer || m.more;  // info and history answers
  w.Map(retention ? 16 : 13)
      .Key("rid")
      .Uint(m.rid)
      .Key("ok")
      .Bool(m.ok)
      .Key("code")
      .Uint(m.ok ? 0 : static_cast<uint64_t>(m.code))
      .Key("msg")
      .Str(m.msg)
      .Key("group")
      .Str(m.group)
      .Key("name")
      .Str(m.name)
      .Key("seq")
      .Uint(m.seq)
      .Key("total")
      .Uint(m.total)
      .Key("delivered")
      .Uint(m.delivered)
      .Key("read")
      .Uint(m.read);
  w.Key("members").Array(static_cast<uint32_t>(m.members.size()));
  for (const auto& mem : m.members)
    w.Array(4).Str(mem.user).Bool(mem.admin).Uint(mem.delivered).Uint(mem.read);
  w.Key("groups").Array(static_cast<uint32_t>(m.groups.size()));
  for (const auto& g : m.groups) w.Str(g);
  PutMessages(w.Key("messages"), m.messages);
  if (retention) w.Key("mode").Str(m.mode).Key("timer").Uint(m.timer).Key("more").Bool(m.more);
  return s;
}

DecodeStatus Decode(std::string_view body, GroupResult& out) {
  return DecodeMap(
      body,
      [&](const MapView& m) {
        out = GroupResult{};
        uint64_t code = 0;
        MC_DECODE_TRY(ReadUint(m.Find("rid"), out.rid));
        MC_DECODE_TRY(ReadBool(m.Find("ok"), out.ok));
        MC_DECODE_TRY(ReadUint(m.Find("code"), code));
        if (code > 0xFFFF) return DecodeStatus::kMalformed;
        if (!out.ok) out.code = static_cast<ErrorCode>(code);
        MC_DECODE_TRY(ReadStr(m.Find("msg"), out.msg, kMaxErrorTextBytes));
        MC_DECODE_TRY(ReadStr(m.Find("group"), out.group, kMaxIdBytes));
        MC_DECODE_TRY(ReadStr(m.Find("name"), out.name, kMaxErrorTextBytes));
        MC_DECODE_TRY(ReadUint(m.Find("seq"), out.seq));
        MC_DECODE_TRY(ReadUint(m.Find("total"), out.total));
        MC_DECODE_TRY(ReadUint(m.Find("delivered"), out.delivered));
        MC_DECODE_TRY(ReadUint(m.Find("read"), out.read));
        if (m.Find("mode")) MC_DECODE_TRY(ReadStr(m.Find("mode"), out.mode, 16));
        if (m.Find("timer")) MC_DECODE_TRY(ReadUint(m.Find("timer"), out.timer));
        if (m.Find("more")) MC_DECODE_TRY(ReadBool(m.Find("more"), out.more));
        const msgpack::object* mem = m.Find("members");
        if (!mem || mem->type != msgpack::type::ARRAY) return DecodeStatus::kMalformed;
        for (uint32_t i = 0; i < mem->via.array.size; ++i) {
          const msgpack::object& e = mem->via.array.ptr[i];
          if (e.type != msgpack::type::ARRAY || e.via.array.size != 4)
            return DecodeStatus::kMalformed;
          GroupMember gm;
          MC_DECODE_TRY(ReadStr(&e.via.array.ptr[0], gm.user, kMaxIdBytes));
          MC_DECODE_TRY(ReadBool(&e.via.array.ptr[1], gm.admin));
          MC_DECODE_TRY(ReadUint(&e.via.array.ptr[2], gm.delivered));
          MC_DECODE_TRY(ReadUint(&e.via.array.ptr[3], gm.read));
          out.members.push_back(std::move(gm));
        }
        MC_DECODE_TRY(ReadStrList(m.Find("groups"), out.groups));
        MC_DECODE_TRY(ReadMessages(m.Find("messages"), out.messages));
        for (auto& p : out.messages) p.chat = p.group;
        return DecodeStatus::kOk;
      },
      GroupLimits());
}

std::string Encode(const GroupSend& m) {
  std::string s;
  Writer w(s);
  w.Map(m.media ? 4 : 3).Key("group").Str(m.group).Key("cid").Uint(m.cid).Key("body").Bin(m.body);
  if (m.media) Put(w.Key("media"), *m.media);
  return s;
}

DecodeStatus Decode(std::string_view body, GroupSend& out) {
  return DecodeMap(body, [&](const MapView& m) {
    MC_DECODE_TRY(ReadStr(m.Find("group"), out.group, kMaxIdBytes));
    MC_DECODE_TRY(ReadUint(m.Find("cid"), out.cid));
    MC_DECODE_TRY(ReadBytes(m.Find("body"), out.body, kMaxBodyBytes));
    out.media.reset();
    if (const auto* md = m.Find("media")) MC_DECODE_TRY(ReadMediaRef(md, out.media.emplace()));
    return DecodeStatus::kOk;
  });
}

std::string Encode(const GroupHint& m) {
  std::string s;
  Writer(s).Map(2).Key("group").Str(m.group).Key("seq").Uint(m.seq);
  return s;
}

DecodeStatus Decode(std::string_view body, GroupHint& out) {
  return DecodeMap(body, [&](const MapView& m) {
    MC_DECODE_TRY(ReadStr(m.Find("group"), out.group, kMaxIdBytes));
    MC_DECODE_TRY(ReadUint(m.Find("seq"), out.seq));
    return DecodeStatus::kOk;
  });
}

}  // namespace meshchat::codec
