#include "nodes/shard/records.h"

#include <algorithm>

#include "codec/group_messages.h"
#include "codec/msgpack_view.h"

namespace meshchat::nodes {

using codec::DecodeStatus;
using codec::Writer;

DeviceState* UserState::Find(const std::string& id) {
  for (auto& d : devices)
    if (d.id == id) return &d;
  return nullptr;
}

uint64_t UserState::MinCursor() const {
  uint64_t m = UINT64_MAX;
  for (const auto& d : devices) m = std::min(m, d.cursor);
  return devices.empty() ? 0 : m;
}

namespace {

constexpr size_t kMaxDevicesStored = 16;

void Put(Writer& w, const InboxEntry& e) {
  w.Array(16)
      .Uint(static_cast<uint64_t>(e.kind))
      .Str(e.chat)
      .Str(e.from)
      .Str(e.from_device)
      .Uint(e.seq)
      .Uint(e.cid)
      .Uint(e.ts)
      .Uint(e.expires_ms)
      .Uint(static_cast<uint64_t>(e.receipt))
      .Bin(e.body)
      .Str(e.group)
      .Bool(e.system)
      .Str(e.member)
      .Bool(e.joined)
      .Bin(e.media)
      .Uint(e.vanish_ms);
}

bool Get(const msgpack::object& o, InboxEntry& e) {
  // 14 or 15 fields: a record written before media references (or timers) existed.
  if (o.type != msgpack::type::ARRAY || o.via.array.size < 14 || o.via.array.size > 16)
    return false;
  const msgpack::object* f = o.via.array.ptr;
  uint64_t kind = 0, receipt = 0;
  bool ok = codec::ReadUint(&f[0], kind) == DecodeStatus::kOk &&
            codec::ReadStr(&f[1], e.chat, codec::kMaxIdBytes) == DecodeStatus::kOk &&
            codec::ReadStr(&f[2], e.from, codec::kMaxIdBytes) == DecodeStatus::kOk &&
            codec::ReadStr(&f[3], e.from_device, codec::kMaxIdBytes) == DecodeStatus::kOk &&
            codec::ReadUint(&f[4], e.seq) == DecodeStatus::kOk &&
            codec::ReadUint(&f[5], e.cid) == DecodeStatus::kOk &&
            codec::ReadUint(&f[6], e.ts) == DecodeStatus::kOk &&
            codec::ReadUint(&f[7], e.expires_ms) == DecodeStatus::kOk &&
            codec::ReadUint(&f[8], receipt) == DecodeStatus::kOk &&
            codec::ReadBytes(&f[9], e.body, codec::kMaxBodyBytes) == DecodeStatus::kOk &&
            codec::ReadStr(&f[10], e.group, codec::kMaxIdBytes) == DecodeStatus::kOk &&
            codec::ReadBool(&f[11], e.system) == DecodeStatus::kOk &&
            codec::ReadStr(&f[12], e.member, codec::kMaxIdBytes) == DecodeStatus::kOk &&
            codec::ReadBool(&f[13], e.joined) == DecodeStatus::kOk;
  e.media.clear();
  e.vanish_ms = 0;
  if (ok && o.via.array.size >= 15)
    ok = codec::ReadBytes(&f[14], e.media, 512) == DecodeStatus::kOk;
  if (ok && o.via.array.size == 16) ok = codec::ReadUint(&f[15], e.vanish_ms) == DecodeStatus::kOk;
  if (!ok || kind < 1 || kind > 2 || receipt < 1 || receipt > 3) return false;
  e.kind = static_cast<InboxEntry::Kind>(kind);
  e.receipt = static_cast<codec::ReceiptKind>(receipt);
  return true;
}

template <typename Fill>
bool Unpack(std::string_view in, Fill&& fill) {
  msgpack::zone zone;
  msgpack::object o;
  codec::UnpackLimits limits;
  limits.array = codec::kMaxGroupList;
  limits.map = 0;
  if (codec::BoundedUnpack(in, zone, o, limits) != DecodeStatus::kOk) return false;
  return fill(o);
}

}  // namespace

std::string EncodeRecord(const InboxEntry& e) {
  std::string s;
  Writer w(s);
  Put(w, e);
  return s;
}

bool DecodeRecord(std::string_view in, InboxEntry& out) {
  return Unpack(in, [&](const msgpack::object& o) { return Get(o, out); });
}

// Channel payloads are [kind, ...]: 1 = [1, [users], entry], 2 = [2, group, user, d, r].
std::string EncodeRecord(const InboxAppend& a) {
  std::string s;
  Writer w(s);
  w.Array(3).Uint(1).Array(static_cast<uint32_t>(a.users.size()));
  for (const auto& u : a.users) w.Str(u);
  Put(w, a.entry);
  return s;
}

bool DecodeRecord(std::string_view in, InboxAppend& out) {
  return Unpack(in, [&](const msgpack::object& o) {
    uint64_t kind = 0;
    if (o.type != msgpack::type::ARRAY || o.via.array.size != 3 ||
        codec::ReadUint(&o.via.array.ptr[0], kind) != DecodeStatus::kOk || kind != 1)
      return false;
    const msgpack::object& users = o.via.array.ptr[1];
    if (users.type != msgpack::type::ARRAY || users.via.array.size == 0) return false;
    out.users.clear();
    for (uint32_t i = 0; i < users.via.array.size; ++i) {
      std::string u;
      if (codec::ReadStr(&users.via.array.ptr[i], u, codec::kMaxIdBytes) != DecodeStatus::kOk)
        return false;
      out.users.push_back(std::move(u));
    }
    return Get(o.via.array.ptr[2], out.entry);
  });
}

std::string EncodeRecord(const MediaRefRecord& r) {
  std::string s;
  Writer(s).Array(4).Uint(3).Bin(r.id).Str(r.chat).Uint(r.until_ms);
  return s;
}

bool DecodeRecord(std::string_view in, MediaRefRecord& out) {
  return Unpack(in, [&](const msgpack::object& o) {
    uint64_t kind = 0;
    if (o.type != msgpack::type::ARRAY || o.via.array.size != 4) return false;
    const msgpack::object* f = o.via.array.ptr;
    return codec::ReadUint(&f[0], kind) == DecodeStatus::kOk && kind == 3 &&
           codec::ReadUint(&f[3], out.until_ms) == DecodeStatus::kOk &&
           codec::ReadBytes(&f[1], out.id, codec::kMediaIdBytes) == DecodeStatus::kOk &&
           out.id.size() == codec::kMediaIdBytes &&
           codec::ReadStr(&f[2], out.chat, codec::kMaxIdBytes * 2 + 1) == DecodeStatus::kOk;
  });
}

std::string EncodeRecord(const GroupCursor& c) {
  std::string s;
  Writer(s).Array(5).Uint(2).Str(c.group).Str(c.user).Uint(c.delivered).Uint(c.read);
  return s;
}

bool DecodeRecord(std::string_view in, GroupCursor& out) {
  return Unpack(in, [&](const msgpack::object& o) {
    uint64_t kind = 0;
    if (o.type != msgpack::type::ARRAY || o.via.array.size != 5) return false;
    const msgpack::object* f = o.via.array.ptr;
    return codec::ReadUint(&f[0], kind) == DecodeStatus::kOk && kind == 2 &&
           codec::ReadStr(&f[1], out.group, codec::kMaxIdBytes) == DecodeStatus::kOk &&
           codec::ReadStr(&f[2], out.user, codec::kMaxIdBytes) == DecodeStatus::kOk &&
           codec::ReadUint(&f[3], out.delivered) == DecodeStatus::kOk &&
           codec::ReadUint(&f[4], out.read) == DecodeStatus::kOk;
  });
}

PayloadKind KindOf(std::string_view payload) {
  // [kind, ...]: a fixarray header byte, then the kind as a positive fixint.
  if (payload.size() < 2) return PayloadKind::kUnknown;
  if (payload[1] == 1) return PayloadKind::kInboxAppend;
  if (payload[1] == 2) return PayloadKind::kGroupCursor;
  if (payload[1] == 3) return PayloadKind::kMediaRef;
  if (payload[1] == 4) return PayloadKind::kHandoverMarker;
  if (payload[1] == 5) return PayloadKind::kHandoverRows;
  if (payload[1] == 6) return PayloadKind::kHandoverDone;
  if (payload[1] == 7) return PayloadKind::kPresenceSetting;
  if (payload[1] == 8) return PayloadKind::kMediaBytes;
  return PayloadKind::kUnknown;
}

std::string EncodeRecord(const UserState& u) {
  std::string s;
  Writer w(s);
  w.Array(4)
      .Uint(u.next_n)
      .Uint(u.max_acked)
      .Uint(u.kept_from)
      .Array(static_cast<uint32_t>(u.devices.size()));
  for (const auto& d : u.devices) w.Array(3).Str(d.id).Uint(d.cursor).Uint(d.last_seen_ms);
  return s;
}

bool DecodeRecord(std::string_view in, UserState& out) {
  return Unpack(in, [&](const msgpack::object& o) {
    if (o.type != msgpack::type::ARRAY || o.via.array.size != 4) return false;
    const msgpack::object* f = o.via.array.ptr;
    if (codec::ReadUint(&f[0], out.next_n) != DecodeStatus::kOk ||
        codec::ReadUint(&f[1], out.max_acked) != DecodeStatus::kOk ||
        codec::ReadUint(&f[2], out.kept_from) != DecodeStatus::kOk ||
        f[3].type != msgpack::type::ARRAY || f[3].via.array.size > kMaxDevicesStored)
      return false;
    out.devices.clear();
    for (uint32_t i = 0; i < f[3].via.array.size; ++i) {
      const msgpack::object& d = f[3].via.array.ptr[i];
      DeviceState ds;
      if (d.type != msgpack::type::ARRAY || d.via.array.size != 3 ||
          codec::ReadStr(&d.via.array.ptr[0], ds.id, codec::kMaxIdBytes) != DecodeStatus::kOk ||
          codec::ReadUint(&d.via.array.ptr[1], ds.cursor) != DecodeStatus::kOk ||
          codec::ReadUint(&d.via.array.ptr[2], ds.last_seen_ms) != DecodeStatus::kOk)
        return false;
      out.devices.push_back(std::move(ds));
    }
    return true;
  });
}

std::string EncodeUints(const std::vector<uint64_t>& v) {
  std::string s;
  Writer w(s);
  w.Array(static_cast<uint32_t>(v.size()));
  for (uint64_t x : v) w.Uint(x);
  return s;
}

bool DecodeUints(std::string_view in, std::vector<uint64_t>& out, size_t expect) {
  return Unpack(in, [&](const msgpack::object& o) {
    if (o.type != msgpack::type::ARRAY || o.via.array.size != expect) return false;
    out.assign(expect, 0);
    for (size_t i = 0; i < expect; ++i)
      if (codec::ReadUint(&o.via.array.ptr[i], out[i]) != DecodeStatus::kOk) return false;
    return true;
  });
}

std::string EncodeRecord(const ChatState& c) {
  return EncodeUints({c.last_in_seq, c.delivered_sent, c.read_sent});
}

bool DecodeRecord(std::string_view in, ChatState& out) {
  std::vector<uint64_t> v;
  if (!DecodeUints(in, v, 3)) return false;
  out = ChatState{v[0], v[1], v[2]};
  return true;
}

codec::Push PushOf(uint64_t n, const InboxEntry& e) {
  codec::Push p{n, e.chat, e.from, e.from_device, e.seq, e.cid, e.ts, e.body, e.group, e.system};
  p.exp = e.vanish_ms;
  // Validated when the message was accepted; a record that no longer decodes loses only it.
  if (!e.media.empty() && codec::Decode(e.media, p.media.emplace()) != codec::DecodeStatus::kOk)
    p.media.reset();
  return p;
}

std::pair<uint8_t, std::string> FrameFor(uint64_t n, const InboxEntry& e) {
  if (e.kind == InboxEntry::Kind::kReceipt)
    return {static_cast<uint8_t>(codec::FrameType::kReceipt),
            codec::Encode(codec::Receipt{n, e.chat, e.receipt, e.seq})};
  return {static_cast<uint8_t>(codec::FrameType::kPush), codec::Encode(PushOf(n, e))};
}

// Hand-over payloads: [4, epoch], [5, epoch, table, [k, v, k, v, ...]], [6, epoch].
namespace {
std::string EpochRecord(uint64_t kind, uint64_t epoch) {
  std::string s;
  Writer(s).Array(2).Uint(kind).Uint(epoch);
  return s;
}
bool DecodeEpochRecord(std::string_view in, uint64_t want_kind, uint64_t& epoch) {
  return Unpack(in, [&](const msgpack::object& o) {
    uint64_t kind = 0;
    return o.type == msgpack::type::ARRAY && o.via.array.size == 2 &&
           codec::ReadUint(&o.via.array.ptr[0], kind) == DecodeStatus::kOk && kind == want_kind &&
           codec::ReadUint(&o.via.array.ptr[1], epoch) == DecodeStatus::kOk;
  });
}
void PutIds(Writer& w, const std::vector<std::string>& ids) {
  w.Array(static_cast<uint32_t>(ids.size()));
  for (const auto& id : ids) w.Str(id);
}
bool GetIds(const msgpack::object& o, std::vector<std::string>& ids) {
  if (o.type != msgpack::type::ARRAY) return false;
  ids.assign(o.via.array.size, {});
  for (uint32_t i = 0; i < o.via.array.size; ++i)
    if (codec::ReadStr(&o.via.array.ptr[i], ids[i], codec::kMaxIdBytes) != DecodeStatus::kOk)
      return false;
  return true;
}
}  // namespace

std::string EncodeRecord(const HandoverMarker& m) {
  return EpochRecord(4, m.epoch);
}
bool DecodeRecord(std::string_view in, HandoverMarker& out) {
  return DecodeEpochRecord(in, 4, out.epoch);
}
std::string EncodeRecord(const HandoverDone& d) {
  return EpochRecord(6, d.epoch);
}
bool DecodeRecord(std::string_view in, HandoverDone& out) {
  return DecodeEpochRecord(in, 6, out.epoch);
}

std::string EncodeRecord(const HandoverRows& r) {
  std::string s;
  Writer w(s);
  w.Array(4).Uint(5).Uint(r.epoch).Str(r.table).Array(static_cast<uint32_t>(r.rows.size() * 2));
  for (const auto& [k, v] : r.rows) w.Bin(k).Bin(v);
  return s;
}

bool DecodeRecord(std::string_view in, HandoverRows& out) {
  return Unpack(in, [&](const msgpack::object& o) {
    uint64_t kind = 0;
    if (o.type != msgpack::type::ARRAY || o.via.array.size != 4) return false;
    const msgpack::object* f = o.via.array.ptr;
    if (codec::ReadUint(&f[0], kind) != DecodeStatus::kOk || kind != 5 ||
        codec::ReadUint(&f[1], out.epoch) != DecodeStatus::kOk ||
        codec::ReadStr(&f[2], out.table, codec::kMaxIdBytes) != DecodeStatus::kOk ||
        f[3].type != msgpack::type::ARRAY || f[3].via.array.size % 2 != 0)
      return false;
    const uint32_t n = f[3].via.array.size / 2;
    out.rows.assign(n, {});
    for (uint32_t i = 0; i < n; ++i)
      if (codec::ReadBytes(&f[3].via.array.ptr[2 * i], out.rows[i].first, codec::kMaxFrameLength) !=
              DecodeStatus::kOk ||
          codec::ReadBytes(&f[3].via.array.ptr[2 * i + 1], out.rows[i].second,
                           codec::kMaxFrameLength) != DecodeStatus::kOk)
        return false;
    return true;
  });
}

std::string EncodeRecord(const HandoverState& st) {
  std::string s;
  Writer w(s);
  w.Array(8).Uint(st.epoch).Bool(st.active);
  PutIds(w, st.old_ring);
  PutIds(w, st.new_ring);
  PutIds(w, st.senders);
  w.Uint(st.table).Bin(st.from).Bool(st.shipped);
  return s;
}

bool DecodeRecord(std::string_view in, HandoverState& out) {
  return Unpack(in, [&](const msgpack::object& o) {
    if (o.type != msgpack::type::ARRAY || o.via.array.size != 8) return false;
    const msgpack::object* f = o.via.array.ptr;
    return codec::ReadUint(&f[0], out.epoch) == DecodeStatus::kOk &&
           codec::ReadBool(&f[1], out.active) == DecodeStatus::kOk && GetIds(f[2], out.old_ring) &&
           GetIds(f[3], out.new_ring) && GetIds(f[4], out.senders) &&
           codec::ReadUint(&f[5], out.table) == DecodeStatus::kOk &&
           codec::ReadBytes(&f[6], out.from, codec::kMaxFrameLength) == DecodeStatus::kOk &&
           codec::ReadBool(&f[7], out.shipped) == DecodeStatus::kOk;
  });
}

std::string EncodeRecord(const PresenceSetting& p) {
  std::string s;
  Writer(s).Array(4).Uint(7).Str(p.user).Uint(p.mode).Str(p.contact);
  return s;
}

bool DecodeRecord(std::string_view in, PresenceSetting& out) {
  return Unpack(in, [&](const msgpack::object& o) {
    uint64_t kind = 0;
    if (o.type != msgpack::type::ARRAY || o.via.array.size != 4) return false;
    const msgpack::object* f = o.via.array.ptr;
    return codec::ReadUint(&f[0], kind) == DecodeStatus::kOk && kind == 7 &&
           codec::ReadStr(&f[1], out.user, codec::kMaxIdBytes) == DecodeStatus::kOk &&
           codec::ReadUint(&f[2], out.mode) == DecodeStatus::kOk &&
           codec::ReadStr(&f[3], out.contact, codec::kMaxIdBytes) == DecodeStatus::kOk;
  });
}

std::string EncodeRecord(const MediaBytes& b) {
  std::string s;
  Writer(s).Array(4).Uint(8).Bin(b.id).Uint(b.offset).Bin(b.data);
  return s;
}

bool DecodeRecord(std::string_view in, MediaBytes& out) {
  return Unpack(in, [&](const msgpack::object& o) {
    uint64_t kind = 0;
    if (o.type != msgpack::type::ARRAY || o.via.array.size != 4) return false;
    const msgpack::object* f = o.via.array.ptr;
    return codec::ReadUint(&f[0], kind) == DecodeStatus::kOk && kind == 8 &&
           codec::ReadBytes(&f[1], out.id, codec::kMediaIdBytes) == DecodeStatus::kOk &&
           out.id.size() == codec::kMediaIdBytes &&
           codec::ReadUint(&f[2], out.offset) == DecodeStatus::kOk &&
           codec::ReadBytes(&f[3], out.data, codec::kMaxFrameLength) == DecodeStatus::kOk;
  });
}

}  // namespace meshchat::nodes
