// The embedded default blob store: one file per blob under a directory (var/<node>/media).
// Writes are pwrite + fdatasync; reads are pread. Safe to call from several threads.
#pragma once

#include <string>

#include "store/blob_store.h"

namespace meshchat::store {

class LocalDirBlobStore : public BlobStore {
 public:
  // Creates `dir` if needed; throws (start-up only) if it cannot.
  explicit LocalDirBlobStore(std::string dir);
  Status Write(std::string_view id, uint64_t offset, std::string_view data) override;
  Result<size_t> Read(std::string_view id, uint64_t offset, std::span<char> out) override;
  Status Remove(std::string_view id, uint64_t size) override;
  const char* Kind() const override { return "localdir"; }

 private:
  Result<std::string> PathOf(std::string_view id) const;
  std::string dir_;
};

// Ids are made by the media node, but the store checks anyway: only [0-9a-f], 1..64 chars,
// so an id can never name a path outside the store or an unrelated object.
bool ValidBlobId(std::string_view id);

}  // namespace meshchat::store
