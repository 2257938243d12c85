// An in-memory blob store for unit tests, with failure injection (the media node's "RADOS is
// down" and "disk failed" paths are tested through it; the real stores share its test suite).
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "store/blob_store.h"

namespace meshchat::store {

class MemBlobStore : public BlobStore {
 public:
  Status Write(std::string_view id, uint64_t offset, std::string_view data) override {
    std::lock_guard lock(mu_);
    if (!fail_.ok()) return fail_;
    if (write_budget_ == 0) return Status(Code::kUnavailable, "injected: store went down");
    if (write_budget_ > 0) --write_budget_;
    std::string& b = blobs_[std::string(id)];
    if (b.size() < offset + data.size()) b.resize(offset + data.size());
    b.replace(offset, data.size(), data);
    return Status::Ok();
  }
  Result<size_t> Read(std::string_view id, uint64_t offset, std::span<char> out) override {
    std::lock_guard lock(mu_);
    if (!fail_.ok()) return fail_;
    auto it = blobs_.find(std::string(id));
    if (it == blobs_.end()) return Status(Code::kNotFound, "no blob");
    if (offset >= it->second.size()) return size_t{0};
    return it->second.copy(out.data(), out.size(), offset);
  }
  Status Remove(std::string_view id, uint64_t) override {
    std::lock_guard lock(mu_);
    if (!fail_.ok()) return fail_;
    blobs_.erase(std::string(id));
    return Status::Ok();
  }
  const char* Kind() const override { return "mem"; }
  bool Shared() const override { return shared; }
  bool shared = false;  // act like one store seen by every node (tests)

  // Every call fails with `s` until FailWith(Status::Ok()).
  void FailWith(Status s) {
    std::lock_guard lock(mu_);
    fail_ = std::move(s);
  }
  // Writes succeed `n` more times, then fail as unavailable (-1: no limit).
  void WritesLeft(int64_t n) {
    std::lock_guard lock(mu_);
    write_budget_ = n;
  }
  size_t count() {
    std::lock_guard lock(mu_);
    return blobs_.size();
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> blobs_;
  Status fail_;
  int64_t write_budget_ = -1;
};

}  // namespace meshchat::store
