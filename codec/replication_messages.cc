#include "codec/replication_messages.h"

#include "codec/msgpack_view.h"

namespace meshchat::codec {

size_t EncodedSize(const ReplWrite& w) {
  return 16 + w.table.size() + w.key.size() + w.value.size();  // headers: at most 1+1+5+5+...
}

std::string Encode(const ReplBatch& b) {
  std::string s;
  Writer w(s);
  w.Map(6).Key("term").Uint(b.term).Key("seq").Uint(b.seq).Key("part").Uint(b.part);
  w.Key("last").Bool(b.last).Key("copy").Bool(b.copy).Key("writes");
  w.Array(static_cast<uint32_t>(b.writes.size()));
  for (const auto& x : b.writes) {
    const bool put = x.kind == ReplWrite::Kind::kPut;
    w.Array(put ? 4 : 3).Uint(static_cast<uint64_t>(x.kind)).Str(x.table).Bin(x.key);
    if (put) w.Bin(x.value);
  }
  return s;
}

namespace {

DecodeStatus ReadWrite(const msgpack::object& o, ReplWrite& out) {
  if (o.type != msgpack::type::ARRAY || o.via.array.size < 3 || o.via.array.size > 4)
    return DecodeStatus::kMalformed;
  const msgpack::object* f = o.via.array.ptr;
  uint64_t kind = 0;
  MC_DECODE_TRY(ReadUint(&f[0], kind));
  if (kind < 1 || kind > 3) return DecodeStatus::kMalformed;
  out.kind = static_cast<ReplWrite::Kind>(kind);
  const bool put = out.kind == ReplWrite::Kind::kPut;
  if (o.via.array.size != (put ? 4u : 3u)) return DecodeStatus::kMalformed;
  MC_DECODE_TRY(ReadStr(&f[1], out.table, kMaxReplTableBytes));
  MC_DECODE_TRY(ReadBytes(&f[2], out.key, kMaxReplKeyBytes));
  if (out.kind == ReplWrite::Kind::kClear && !(out.table.empty() && out.key.empty()))
    return DecodeStatus::kMalformed;
  if (out.kind != ReplWrite::Kind::kClear && out.table.empty()) return DecodeStatus::kMalformed;
  if (out.table.find('\0') != std::string::npos) return DecodeStatus::kMalformed;
  out.value.clear();
  if (put) MC_DECODE_TRY(ReadBytes(&f[3], out.value, kMaxEnvelopeBody));
  return DecodeStatus::kOk;
}

}  // namespace

DecodeStatus Decode(std::string_view body, ReplBatch& out) {
  if (body.size() > kMaxEnvelopeBody) return DecodeStatus::kTooLarge;
  UnpackLimits limits;
  limits.array = kMaxReplWrites;
  limits.map = 8;
  limits.str = kMaxReplTableBytes;
  limits.bin = kMaxEnvelopeBody;
  limits.depth = 3;
  return DecodeMap(
      body,
      [&](const MapView& m) {
        MC_DECODE_TRY(ReadUint(m.Find("term"), out.term));
        MC_DECODE_TRY(ReadUint(m.Find("seq"), out.seq));
        MC_DECODE_TRY(ReadUint(m.Find("part"), out.part));
        MC_DECODE_TRY(ReadBool(m.Find("last"), out.last));
        MC_DECODE_TRY(ReadBool(m.Find("copy"), out.copy));
        if (out.term == 0 || (!out.copy && out.seq == 0)) return DecodeStatus::kMalformed;
        const msgpack::object* ws = m.Find("writes");
        if (!ws || ws->type != msgpack::type::ARRAY) return DecodeStatus::kMalformed;
        if (ws->via.array.size > kMaxReplWrites) return DecodeStatus::kTooLarge;
        out.writes.resize(ws->via.array.size);
        for (uint32_t i = 0; i < ws->via.array.size; ++i)
          MC_DECODE_TRY(ReadWrite(ws->via.array.ptr[i], out.writes[i]));
        return DecodeStatus::kOk;
      },
      limits);
}

}  // namespace meshchat::codec
