// Where media bytes live, injected into the media node so failure paths are testable.
// Two real implementations: a local directory (the embedded default) and Ceph RADOS.
//
// Model: a blob is a byte array named by a server-made id (hex of a random 128-bit media id;
// never a client-supplied string). Write() is durable when it returns ok (fsync, or the OSD's
// ack). Visibility is not the store's business: the media node shows a blob to nobody until its
// metadata says it is complete, so a half-written blob is harmless and Remove() cleans it up.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"

namespace meshchat::store {

class BlobStore {
 public:
  virtual ~BlobStore() = default;
  // Writes `data` at `offset` (any offset; the blob grows as needed).
  virtual Status Write(std::string_view id, uint64_t offset, std::string_view data) = 0;
  // Reads up to out.size() bytes at `offset`; returns how many were read (0 past the end).
  // kNotFound if the blob does not exist.
  virtual Result<size_t> Read(std::string_view id, uint64_t offset, std::span<char> out) = 0;
  // Removes the blob; `size` is the most it can hold (lets striped stores find every
  // piece). Removing a missing blob is ok.
  virtual Status Remove(std::string_view id, uint64_t size) = 0;
  virtual const char* Kind() const = 0;  // "localdir", "rados", ...
  // True if every media node sees the same blobs (one RADOS pool): when media moves to
  // another node, its bytes need not move with it.
  virtual bool Shared() const { return false; }
};

}  // namespace meshchat::store
