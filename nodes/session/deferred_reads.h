// Read receipts put off while a session shard is at load level 2 or above
// (nodes/runtime/load_levels.h): the read position is stored, not sent, and sent later in batches.
// Stored (table "readlater", key user\0 kind chat, value [seq, app]), so a restart or a key
// hand-over loses none of them; several reads of one chat while waiting collapse into one
// receipt up to the highest position.
#pragma once

#include <functional>
#include <string>

#include "base/status.h"
#include "codec/client_messages.h"
#include "store/kv_store.h"

namespace meshchat::nodes {

class DeferredReads {
 public:
  static constexpr std::string_view kTable = "readlater";
  using SendFn = std::function<Status(const std::string& user, const codec::Read& read)>;

  explicit DeferredReads(store::KvStore& kv) : kv_(kv) {}
  // Keeps the highest position per (user, chat).
  Status Put(const std::string& user, const codec::Read& read);
  // Takes up to `max` reads out of the store (deleted in the same batch) and hands each to
  // `send`. Returns how many it took. (An empty table costs one B-tree seek: no "maybe
  // waiting" flag to go stale after a failed commit or rows moved in by a hand-over.)
  Result<size_t> Take(size_t max, const SendFn& send);

 private:
  store::KvStore& kv_;
};

}  // namespace meshchat::nodes
