#include "nodes/session/deferred_reads.h"

#include <vector>

#include "nodes/shard/records.h"

namespace meshchat::nodes {
namespace {

std::string KeyOf(const std::string& user, const codec::Read& r) {
  std::string k = user;
  k += '\0';
  k += r.group ? 'g' : 'u';  // a group and a user may share an id
  k += r.chat;
  return k;
}

}  // namespace

Status DeferredReads::Put(const std::string& user, const codec::Read& read) {
  const std::string key = KeyOf(user, read);
  uint64_t seq = read.seq;
  bool app = read.app;
  auto old = kv_.Get(kTable, key);
  if (old.ok()) {
    std::vector<uint64_t> v;
    if (DecodeUints(*old, v, 2) && v[0] >= seq) {
      seq = v[0];
      app = app && v[1] != 0;  // one read by the user makes the batch user activity
    }
  } else if (old.status().code() != Code::kNotFound) {
    return old.status();
  }
  return kv_.Put(kTable, key, EncodeUints({seq, app ? 1u : 0u}));
}

Result<size_t> DeferredReads::Take(size_t max, const SendFn& send) {
  std::vector<std::pair<std::string, std::string>> rows;
  Status s = kv_.Scan(kTable, "", [&](std::string_view k, std::string_view v) {
    rows.emplace_back(k, v);
    return rows.size() < max;
  });
  if (!s.ok()) return s;
  for (const auto& [key, value] : rows) {
    if (Status d = kv_.Del(kTable, key); !d.ok()) return d;
    const size_t nul = key.find('\0');
    std::vector<uint64_t> v;
    // A row that does not parse is dropped: it is a hint's bookkeeping, not a message.
    if (nul == std::string::npos || nul + 2 > key.size() || !DecodeUints(value, v, 2)) continue;
    codec::Read r;
    r.group = key[nul + 1] == 'g';
    r.chat = key.substr(nul + 2);
    r.seq = v[0];
    r.app = v[1] != 0;
    if (Status st = send(key.substr(0, nul), r); !st.ok()) return st;
  }
  return rows.size();
}

}  // namespace meshchat::nodes
