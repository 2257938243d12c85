#include "codec/msgpack_view.h"

#include <exception>

namespace meshchat::codec {
namespace {
// Strings and bins reference the input buffer instead of being copied into the zone.
bool ReferenceAll(msgpack::type::object_type, std::size_t, void*) {
  return true;
}
}  // namespace

DecodeStatus BoundedUnpack(std::string_view in, msgpack::zone& zone, msgpack::object& out,
                           const UnpackLimits& l) {
  if (in.empty()) return DecodeStatus::kMalformed;
  std::size_t off = 0;
  const msgpack::unpack_limit limit(l.array, l.map, l.str, l.bin, /*ext=*/0, l.depth);
  try {
    out = msgpack::unpack(zone, in.data(), in.size(), off, ReferenceAll, nullptr, limit);
  } catch (const msgpack::depth_size_overflow&) {
    // Nested deeper than any schema here: not a body of the schema at all (malformed), not a
    // field over a size limit.
    return DecodeStatus::kMalformed;
  } catch (const msgpack::size_overflow&) {  // a string, bin, array or map over its limit
    return DecodeStatus::kTooLarge;
  } catch (const std::exception&) {
    // parse_error, insufficient_bytes, type errors, bad_alloc from a hostile size: all mean
    // "this body is not a valid object"; the caller answers with an error frame.
    return DecodeStatus::kMalformed;
  }
  if (off != in.size()) return DecodeStatus::kMalformed;  // trailing bytes
  return DecodeStatus::kOk;
}

std::optional<MapView> MapView::Of(const msgpack::object& o) {
  if (o.type != msgpack::type::MAP) return std::nullopt;
  return MapView(o.via.map);
}

const msgpack::object* MapView::Find(std::string_view key) const {
  for (uint32_t i = 0; i < m_.size; ++i) {
    const msgpack::object& k = m_.ptr[i].key;
    if (k.type == msgpack::type::STR && std::string_view(k.via.str.ptr, k.via.str.size) == key)
      return &m_.ptr[i].val;
  }
  return nullptr;
}

DecodeStatus ReadUint(const msgpack::object* o, uint64_t& out) {
  if (!o || o->type != msgpack::type::POSITIVE_INTEGER) return DecodeStatus::kMalformed;
  out = o->via.u64;
  return DecodeStatus::kOk;
}

DecodeStatus ReadBool(const msgpack::object* o, bool& out) {
  if (!o || o->type != msgpack::type::BOOLEAN) return DecodeStatus::kMalformed;
  out = o->via.boolean;
  return DecodeStatus::kOk;
}

DecodeStatus ReadStr(const msgpack::object* o, std::string& out, size_t max) {
  if (!o || o->type != msgpack::type::STR) return DecodeStatus::kMalformed;
  if (o->via.str.size > max) return DecodeStatus::kTooLarge;
  out.assign(o->via.str.ptr, o->via.str.size);
  return DecodeStatus::kOk;
}

DecodeStatus ReadBytes(const msgpack::object* o, std::string& out, size_t max) {
  if (o && o->type == msgpack::type::BIN) {
    if (o->via.bin.size > max) return DecodeStatus::kTooLarge;
    out.assign(o->via.bin.ptr, o->via.bin.size);
    return DecodeStatus::kOk;
  }
  return ReadStr(o, out, max);
}
Writer& Writer::Str(std::string_view s) {
  pk_.pack_str(static_cast<uint32_t>(s.size()));
  pk_.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
  return *this;
}

Writer& Writer::Bin(std::string_view s) {
  pk_.pack_bin(static_cast<uint32_t>(s.size()));
  pk_.pack_bin_body(s.data(), static_cast<uint32_t>(s.size()));
  return *this;
}

}  // namespace meshchat::codec
