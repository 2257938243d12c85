#include "codec/conn_sync.h"

#include "codec/client_messages.h"
#include "codec/msgpack_view.h"

namespace meshchat::codec {

uint64_t ConnDigestOf(uint64_t conn) {  // splitmix64's finaliser
  uint64_t z = conn + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

namespace {

template <typename T, typename Put>
void PutArray(Writer& w, const T& v, Put put) {
  w.Array(static_cast<uint32_t>(v.size()));
  for (const auto& x : v) put(x);
}

DecodeStatus ReadUints(const msgpack::object* o, std::vector<uint64_t>& out, size_t max) {
  if (!o || o->type != msgpack::type::ARRAY) return DecodeStatus::kMalformed;
  if (o->via.array.size > max) return DecodeStatus::kTooLarge;
  out.resize(o->via.array.size);
  for (uint32_t i = 0; i < o->via.array.size; ++i)
    MC_DECODE_TRY(ReadUint(&o->via.array.ptr[i], out[i]));
  return DecodeStatus::kOk;
}

}  // namespace

std::string Encode(const ConnDigest& d) {
  std::string s;
  Writer w(s);
  w.Map(2).Key("count");
  PutArray(w, d.count, [&](uint64_t x) { w.Uint(x); });
  w.Key("xor");
  PutArray(w, d.xor_, [&](uint64_t x) { w.Uint(x); });
  return s;
}

DecodeStatus Decode(std::string_view body, ConnDigest& out) {
  UnpackLimits limits;
  limits.array = kConnSyncBuckets;
  limits.str = 16;
  limits.bin = 0;
  limits.depth = 2;
  return DecodeMap(
      body,
      [&](const MapView& m) {
        std::vector<uint64_t> count, x;
        MC_DECODE_TRY(ReadUints(m.Find("count"), count, kConnSyncBuckets));
        MC_DECODE_TRY(ReadUints(m.Find("xor"), x, kConnSyncBuckets));
        if (count.size() != kConnSyncBuckets || x.size() != kConnSyncBuckets)
          return DecodeStatus::kMalformed;
        std::copy(count.begin(), count.end(), out.count.begin());
        std::copy(x.begin(), x.end(), out.xor_.begin());
        return DecodeStatus::kOk;
      },
      limits);
}

std::string Encode(const ConnList& l) {
  std::string s;
  Writer w(s);
  w.Map(3).Key("buckets");
  PutArray(w, l.buckets, [&](uint64_t x) { w.Uint(x); });
  w.Key("conns");
  PutArray(w, l.conns, [&](uint64_t x) { w.Uint(x); });
  w.Key("users");
  PutArray(w, l.users, [&](const std::string& u) { w.Str(u); });
  return s;
}

DecodeStatus Decode(std::string_view body, ConnList& out) {
  if (body.size() > kMaxConnListBytes + 4096) return DecodeStatus::kTooLarge;
  UnpackLimits limits;
  limits.array = kMaxConnListEntries;
  limits.str = kMaxIdBytes;
  limits.bin = 0;
  limits.depth = 2;
  return DecodeMap(
      body,
      [&](const MapView& m) {
        MC_DECODE_TRY(ReadUints(m.Find("buckets"), out.buckets, kConnSyncBuckets));
        for (uint64_t b : out.buckets)
          if (b >= kConnSyncBuckets) return DecodeStatus::kMalformed;
        MC_DECODE_TRY(ReadUints(m.Find("conns"), out.conns, kMaxConnListEntries));
        const msgpack::object* u = m.Find("users");
        if (!u || u->type != msgpack::type::ARRAY || u->via.array.size != out.conns.size())
          return DecodeStatus::kMalformed;
        out.users.resize(out.conns.size());
        for (uint32_t i = 0; i < u->via.array.size; ++i)
          MC_DECODE_TRY(ReadStr(&u->via.array.ptr[i], out.users[i], kMaxIdBytes));
        uint64_t listed = 0;  // a connection outside the buckets answered for is malformed
        for (uint64_t b : out.buckets) listed |= uint64_t{1} << b;
        for (uint64_t c : out.conns)
          if (!(listed & (uint64_t{1} << ConnBucketOf(c)))) return DecodeStatus::kMalformed;
        return DecodeStatus::kOk;
      },
      limits);
}

}  // namespace meshchat::codec
