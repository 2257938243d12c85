// Bounded msgpack reading and writing shared by every schema in codec/.
//
// msgpack-cxx's unpack_limit defaults are unlimited: a 40-byte body declaring a huge array
// makes it try to allocate gigabytes. Every decode here goes through BoundedUnpack, which sets
// explicit limits on container sizes, string/bin sizes and nesting depth, requires exactly one
// object with no trailing bytes, and turns msgpack-cxx's exceptions into a status.
#pragma once

#include <msgpack.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "codec/frame.h"

namespace meshchat::codec {

struct UnpackLimits {
  size_t array = 32;
  size_t map = 32;
  size_t str = kMaxFrameLength;
  size_t bin = kMaxFrameLength;
  size_t depth = 4;
};

// Decodes exactly one msgpack object occupying all of `in`. Strings and bins in `out` point
// into `in` (no copy), so `in` must outlive `out`; other allocations live in `zone`.
DecodeStatus BoundedUnpack(std::string_view in, msgpack::zone& zone, msgpack::object& out,
                           const UnpackLimits& limits = {});

// Read-only view of a msgpack map with string keys. Unknown keys are ignored by callers,
// which keeps the protocol forward compatible.
class MapView {
 public:
  static std::optional<MapView> Of(const msgpack::object& o);
  const msgpack::object* Find(std::string_view key) const;

 private:
  explicit MapView(const msgpack::object_map& m) : m_(m) {}
  const msgpack::object_map& m_;
};

// Field readers: kMalformed if the field is absent or of the wrong type, kTooLarge if it is
// over `max` bytes. Optional fields check `Find() != nullptr` first.
DecodeStatus ReadUint(const msgpack::object* o, uint64_t& out);
DecodeStatus ReadBool(const msgpack::object* o, bool& out);
DecodeStatus ReadStr(const msgpack::object* o, std::string& out, size_t max);
// Accepts msgpack bin or str (clients in languages without a bin type send str).
DecodeStatus ReadBytes(const msgpack::object* o, std::string& out, size_t max);

// Decodes `body` as one bounded msgpack map and hands it to `fill`, which reads the fields.
template <typename Fill>
DecodeStatus DecodeMap(std::string_view body, Fill&& fill, const UnpackLimits& limits = {}) {
  msgpack::zone zone;
  msgpack::object obj;
  if (DecodeStatus s = BoundedUnpack(body, zone, obj, limits); s != DecodeStatus::kOk) return s;
  auto m = MapView::Of(obj);
  if (!m) return DecodeStatus::kMalformed;
  return fill(*m);
}

// Returns from the enclosing function unless `expr` yields DecodeStatus::kOk.
#define MC_DECODE_TRY(expr)                                                                      \
  do {                                                                                           \
    if (::meshchat::codec::DecodeStatus s_ = (expr); s_ != ::meshchat::codec::DecodeStatus::kOk) \
      return s_;                                                                                 \
  } while (0)

// A msgpack writer appending to a std::string.
class Writer {
 public:
  explicit Writer(std::string& out) : buf_{out}, pk_(buf_) {}
  Writer& Map(uint32_t n) {
    pk_.pack_map(n);
    return *this;
  }
  Writer& Array(uint32_t n) {
    pk_.pack_array(n);
    return *this;
  }
  Writer& Uint(uint64_t v) {
    pk_.pack_uint64(v);
    return *this;
  }
  Writer& Nil() {
    pk_.pack_nil();
    return *this;
  }
  Writer& Bool(bool v) {
    v ? pk_.pack_true() : pk_.pack_false();
    return *this;
  }
  Writer& Str(std::string_view s);
  Writer& Bin(std::string_view s);
  Writer& Key(std::string_view k) { return Str(k); }

 private:
  struct Sink {
    std::string& s;
    void write(const char* p, size_t n) { s.append(p, n); }
  };
  Sink buf_;
  msgpack::packer<Sink> pk_;
};

// A media reference nested in a larger message (codec/client_messages.h).
struct MediaRef;
void Put(Writer& w, const MediaRef& m);
DecodeStatus ReadMediaRef(const msgpack::object* o, MediaRef& out);

}  // namespace meshchat::codec
