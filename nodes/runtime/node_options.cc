#include "nodes/runtime/node_options.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

namespace meshchat::nodes {
namespace {

enum class Kind { kInt, kReal, kText };

struct Spec {
  std::string_view key;
  Kind kind;
  double min = 0, max = 0;       // numbers: the range, inclusive
  std::string_view one_of = {};  // text: the allowed values, '|'-separated ("" = any)
};

constexpr double kDay = 86'400;
constexpr double kHuge = 1e12;

// Every setting of every role. Defaults live with the code that uses them.
constexpr Spec kSpecs[] = {
    // gateway: the client front end
    {"max_out_bytes", Kind::kInt, 65'536, 1 << 30},
    {"frame_deadline_ms", Kind::kInt, 100, 3'600'000},
    {"max_unauth_buffered", Kind::kInt, 8'192, 1 << 30},
    {"frame_rate", Kind::kReal, 0, kHuge},
    {"frame_burst", Kind::kReal, 0, kHuge},
    {"max_token_ttl_s", Kind::kInt, 1, 3650 * kDay},
    {"connect_rate", Kind::kReal, 0, kHuge},
    {"connect_burst", Kind::kReal, 0, kHuge},
    {"auth_fail_rate", Kind::kReal, 0, kHuge},
    {"auth_fail_burst", Kind::kReal, 0, kHuge},
    {"client_tls", Kind::kText, 0, 0, "on|off"},
    {"tls_cert", Kind::kText},
    {"tls_key", Kind::kText},
    {"tls_reload_ms", Kind::kInt, 100, 1000 * kDay},
    // session
    {"inbox_ttl_s", Kind::kInt, 1, 3650 * kDay},  // and group
    {"send_rate", Kind::kReal, 0, kHuge},
    {"send_burst", Kind::kReal, 0, kHuge},
    {"push_rto_ms", Kind::kInt, 10, 3'600'000},
    {"push_window_bytes", Kind::kInt, 1'024, 1 << 30},
    // group
    {"group_member_cap", Kind::kInt, 1, 1 << 24},
    {"large_group", Kind::kInt, 1, 1 << 24},
    {"group_fanout_rate", Kind::kReal, 0, kHuge},
    {"group_fanout_burst", Kind::kReal, 0, kHuge},
    // presence
    {"online_ms", Kind::kInt, 100, 1000 * kDay},
    {"presence_throttle_ms", Kind::kInt, 0, 3'600'000},
    // media
    {"media", Kind::kText, 0, 0, "localdir|rados"},
    {"ceph_conf", Kind::kText},
    {"ceph_pool", Kind::kText},
    {"ceph_user", Kind::kText},
    {"ceph_timeout_s", Kind::kInt, 1, 3'600},
    {"max_mb", Kind::kInt, 1, 1 << 20},
    {"http_base", Kind::kText},
    {"http_listen", Kind::kText},
    {"media_types", Kind::kText},
    {"upload_grace_s", Kind::kInt, 1, 3650 * kDay},
    {"retention_s", Kind::kInt, 1, 36500 * kDay},
    // durable workers (session, group, presence, media): the store
    {"lmdb_writemap", Kind::kInt, 0, 1},
    {"lmdb_map_mb", Kind::kInt, 1, 1 << 24},
    {"sync_interval_us", Kind::kInt, 0, 10'000'000},
    // replicated shards (nodes/shard/replication.h)
    {"repl_min_in_sync", Kind::kInt, 1, 16},
    {"repl_timeout_ms", Kind::kInt, 100, 600'000},
    {"repl_log_mb", Kind::kInt, 1, 1 << 16},
    // every node: load levels (the thresholds are lists, checked by LoadConfig::FromOptions)
    {"load_levels", Kind::kText, 0, 0, "on|off"},
    {"load_lag_ms", Kind::kText},
    {"load_queue", Kind::kText},
    {"load_commit_ms", Kind::kText},
    {"load_busy_pct", Kind::kText},
    {"load_delay_ms", Kind::kText},
    {"load_hard_queue", Kind::kReal, 0, kHuge},
    {"load_calm_ms", Kind::kInt, 0, 3'600'000},
};

const Spec* Find(std::string_view key) {
  for (const auto& s : kSpecs)
    if (s.key == key) return &s;
  return nullptr;
}

const Spec& Declared(std::string_view key, Kind kind) {
  const Spec* s = Find(key);
  if (!s || s->kind != kind)
    throw std::logic_error("option '" + std::string(key) + "' is not declared as asked");
  return *s;
}

// The number in `text` (all of it), or a start-up error naming the key and its range.
double Number(const Spec& s, const std::string& text) {
  auto bad = [&](const std::string& why) {
    char range[96];
    std::snprintf(range, sizeof range, "%s from %.15g to %.15g",
                  s.kind == Kind::kInt ? "a whole number" : "a number", s.min, s.max);
    return std::invalid_argument("--opt " + std::string(s.key) + "=" + text + ": " + why +
                                 " (wants " + range + ")");
  };
  double v = 0;
  if (s.kind == Kind::kInt) {
    int64_t i = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), i);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty())
      throw bad("not a whole number");
    v = static_cast<double>(i);
  } else {
    char* end = nullptr;
    v = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v))
      throw bad("not a number");
  }
  if (v < s.min || v > s.max) throw bad("out of range");
  return v;
}

void Check(const Spec& s, const std::string& value) {
  if (s.kind != Kind::kText) {
    (void)Number(s, value);
    return;
  }
  if (s.one_of.empty()) return;
  std::string_view rest = s.one_of;
  while (!rest.empty()) {
    const size_t bar = rest.find('|');
    if (rest.substr(0, bar) == value) return;
    rest = bar == std::string_view::npos ? std::string_view() : rest.substr(bar + 1);
  }
  throw std::invalid_argument("--opt " + std::string(s.key) + " wants one of " +
                              std::string(s.one_of) + ", got '" + value + "'");
}

}  // namespace

NodeOptions NodeOptions::Parse(const std::vector<std::string>& key_values) {
  NodeOptions o;
  for (const auto& kv : key_values) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      throw std::invalid_argument("--opt wants KEY=VALUE, got '" + kv + "'");
    const std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
    const Spec* s = Find(key);
    if (!s)
      throw std::invalid_argument("--opt " + key +
                                  ": no such setting for any node (docs/OPERATIONS.md lists them)");
    Check(*s, value);
    o.values_[key] = value;
  }
  return o;
}

int64_t NodeOptions::Int(std::string_view key, int64_t fallback) const {
  const Spec& s = Declared(key, Kind::kInt);
  auto it = values_.find(key);
  return it == values_.end() ? fallback : static_cast<int64_t>(Number(s, it->second));
}

double NodeOptions::Real(std::string_view key, double fallback) const {
  const Spec& s = Declared(key, Kind::kReal);
  auto it = values_.find(key);
  return it == values_.end() ? fallback : Number(s, it->second);
}

std::string NodeOptions::Text(std::string_view key, const std::string& fallback) const {
  (void)Declared(key, Kind::kText);
  auto it = values_.find(key);
  return it == values_.end() ? fallback : it->second;
}

}  // namespace meshchat::nodes
