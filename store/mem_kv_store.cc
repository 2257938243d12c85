#include "store/mem_kv_store.h"

namespace meshchat::store {

MemKvStore::Table& MemKvStore::Working(std::string_view table) {
  if (!dirty_) working_ = committed_;  // copy-on-first-write: tests keep stores small
  dirty_ = true;
  return working_[std::string(table)];
}

Result<std::string> MemKvStore::Get(std::string_view table, std::string_view key) {
  const auto& tables = dirty_ ? working_ : committed_;
  auto t = tables.find(table);
  if (t == tables.end()) return Status(Code::kNotFound, "no table");
  auto it = t->second.find(key);
  if (it == t->second.end()) return Status(Code::kNotFound, "no key");
  return it->second;
}

Status MemKvStore::Put(std::string_view table, std::string_view key, std::string_view value) {
  Working(table)[std::string(key)] = std::string(value);
  return Status::Ok();
}

Status MemKvStore::Del(std::string_view table, std::string_view key) {
  auto& t = Working(table);
  if (auto it = t.find(key); it != t.end()) t.erase(it);
  return Status::Ok();
}

Status MemKvStore::Scan(std::string_view table, std::string_view from, const ScanFn& fn) {
  const auto& tables = dirty_ ? working_ : committed_;
  auto t = tables.find(table);
  if (t == tables.end()) return Status::Ok();
  for (auto it = t->second.lower_bound(from); it != t->second.end(); ++it)
    if (!fn(it->first, it->second)) break;
  return Status::Ok();
}

Result<std::string> MemKvStore::LastKeyWithPrefix(std::string_view table, std::string_view prefix) {
  const auto& tables = dirty_ ? working_ : committed_;
  auto t = tables.find(table);
  if (t == tables.end()) return Status(Code::kNotFound, "no table");
  std::string last;
  bool found = false;
  for (auto it = t->second.lower_bound(prefix);
       it != t->second.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    last = it->first;
    found = true;
  }
  if (!found) return Status(Code::kNotFound, "no key with prefix");
  return last;
}

Status MemKvStore::ScanRows(std::string_view after_table, std::string_view after_key,
                            const RowFn& fn) {
  const auto& tables = dirty_ ? working_ : committed_;
  const bool from_start = after_table.empty() && after_key.empty();
  for (auto t = tables.lower_bound(after_table); t != tables.end(); ++t) {
    auto it = t->second.begin();
    if (!from_start && t->first == after_table) it = t->second.upper_bound(after_key);
    for (; it != t->second.end(); ++it)
      if (!fn(t->first, it->first, it->second)) return Status::Ok();
  }
  return Status::Ok();
}

Status MemKvStore::Clear() {
  Working("");
  working_.clear();
  return Status::Ok();
}

Status MemKvStore::Commit() {
  if (!dirty_) return Status::Ok();
  if (fail_next_) {
    fail_next_ = false;
    Rollback();
    return {Code::kFull, "injected commit failure"};
  }
  committed_ = std::move(working_);
  working_.clear();
  dirty_ = false;
  ++commits_;
  return Status::Ok();
}

void MemKvStore::Rollback() {
  working_.clear();
  dirty_ = false;
}

Result<size_t> MemKvStore::UsedBytes() {
  size_t n = 0;
  for (const auto& [name, t] : committed_)
    for (const auto& [k, v] : t) n += k.size() + v.size();
  return n;
}

size_t MemKvStore::Count(const std::string& table) const {
  const auto& tables = dirty_ ? working_ : committed_;
  auto t = tables.find(table);
  return t == tables.end() ? 0 : t->second.size();
}

}  // namespace meshchat::store
