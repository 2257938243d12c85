#include "nodes/runtime/load_levels.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace meshchat::nodes {

namespace {

double Number(const std::string& key, const std::string& text) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || v < 0)
    throw std::runtime_error("--opt " + key + ": '" + text + "' is not a number >= 0");
  return v;
}

std::array<double, 3> Three(const std::string& key, const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, ',');) parts.push_back(part);
  if (parts.size() != 3 || text.back() == ',')
    throw std::runtime_error("--opt " + key + " wants three thresholds L1,L2,L3, got '" + text +
                             "'");
  std::array<double, 3> out{};
  for (size_t i = 0; i < 3; ++i) out[i] = Number(key, parts[i]);
  for (size_t k = 1; k < 3; ++k)
    if (out[k] != 0 && out[k] < out[k - 1])
      throw std::runtime_error("--opt " + key + ": thresholds must not fall, got '" + text + "'");
  return out;
}

}  // namespace

LoadConfig LoadConfig::FromOptions(const NodeOptions& options, LoadConfig cfg) {
  if (options.Has("load_levels")) cfg.enabled = options.Text("load_levels") == "on";
  auto three = [&](const char* key, std::array<double, 3>& out) {
    if (options.Has(key)) out = Three(key, options.Text(key));
  };
  three("load_lag_ms", cfg.lag_ms);
  three("load_queue", cfg.queue);
  three("load_commit_ms", cfg.commit_ms);
  three("load_busy_pct", cfg.busy_pct);
  three("load_delay_ms", cfg.delay_ms);
  cfg.hard_queue = options.Real("load_hard_queue", cfg.hard_queue);
  cfg.calm_ms = options.Int("load_calm_ms", cfg.calm_ms);
  return cfg;
}

int LoadMonitor::LevelOf(const LoadSample& s, double scale) const {
  int level = 0;
  auto check = [&](double value, const std::array<double, 3>& t) {
    for (int i = 2; i >= 0; --i)
      if (t[i] > 0 && value >= t[i] * scale) {
        level = std::max(level, i + 1);
        return;
      }
  };
  check(s.lag_ms, cfg_.lag_ms);
  check(s.queue, cfg_.queue);
  check(s.commit_ms, cfg_.commit_ms);
  check(s.busy_pct, cfg_.busy_pct);
  check(s.delay_ms, cfg_.delay_ms);
  return level;
}

bool LoadMonitor::Observe(const LoadSample& s) {
  last_ = s;
  const LoadState before = state_;
  state_.full = cfg_.hard_queue > 0 && s.queue >= cfg_.hard_queue;
  if (!cfg_.enabled) {
    state_.level = LoadLevel::kNormal;
  } else {
    const int level = static_cast<int>(state_.level);
    const int64_t now = clock_.MonoMs();
    const int up = LevelOf(s, 1);
    if (up > level) {
      calm_since_ms_ = -1;
      // One level at a time: each step gets to take effect before the next, so hints are
      // always shed before any send is refused. The hard cap (`full`) is the fast brake.
      if (++rising_ >= cfg_.rise_samples) {
        state_.level = static_cast<LoadLevel>(level + 1);
        rising_ = 0;
      }
    } else {
      rising_ = 0;
      // Leaving a level needs every signal well under its thresholds, for a while: a load
      // hovering at a threshold does not flap.
      if (LevelOf(s, cfg_.down_fraction) < level) {
        if (calm_since_ms_ < 0) calm_since_ms_ = now;
        if (now - calm_since_ms_ >= cfg_.calm_ms) {
          state_.level = static_cast<LoadLevel>(level - 1);
          calm_since_ms_ = now;  // the next step down waits as long again
        }
      } else {
        calm_since_ms_ = -1;
      }
    }
  }
  const bool changed = state_.level != before.level || state_.full != before.full;
  if (changed) ++changes_;
  return changed;
}

void HeavySenders::Count(const std::string& user, int64_t now_ms) {
  if (window_start_ms_ < 0) window_start_ms_ = now_ms;
  if (now_ms - window_start_ms_ >= 1000) Roll(now_ms);
  ++total_;
  if (auto it = counts_.find(user); it != counts_.end()) {
    ++it->second;
  } else if (counts_.size() < max_users_) {
    counts_.emplace(user, 1);
  }
}

void HeavySenders::Roll(int64_t now_ms) {
  heavy_.clear();
  // A window that ended long ago says nothing about now.
  if (now_ms - window_start_ms_ < 2000) {
    std::vector<std::pair<uint64_t, const std::string*>> by_count;
    by_count.reserve(counts_.size());
    for (const auto& [user, n] : counts_)
      if (n >= min_count_) by_count.emplace_back(n, &user);
    // Heaviest first; equal counts in a fixed order, so the same half is picked each time
    // and the other half is never refused.
    std::sort(by_count.begin(), by_count.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : *a.second < *b.second;
    });
    uint64_t sum = 0;
    for (const auto& [n, user] : by_count) {
      if (2 * sum >= total_) break;
      heavy_.insert(*user);
      sum += n;
    }
  }
  counts_.clear();
  total_ = 0;
  window_start_ms_ = now_ms;
}

std::optional<codec::Error> RefuseSend(const LoadState& load, HeavySenders& heavy,
                                       ShedCounters& shed, const std::string& user, int64_t now_ms,
                                       std::optional<uint64_t> cid) {
  if (load.full) {
    ++shed.sends_refused_full;
    return codec::Error{codec::ErrorCode::kServiceUnavailable, "server overloaded; retry", cid,
                        false, 1000};
  }
  if (!load.AtLeast(LoadLevel::kRefuseHeavy)) return std::nullopt;
  heavy.Count(user, now_ms);
  if (!heavy.IsHeavy(user)) return std::nullopt;
  ++shed.sends_refused;
  return codec::Error{codec::ErrorCode::kRateLimited, "server busy; retry", cid, false, 1000};
}

void WriteShedMetrics(MetricsText& m, const ShedCounters& s) {
  const char* name = "meshchat_load_shed_total";
  const char* help = "work shed or put off by load level (hints, receipts) or refused (sends)";
  m.Counter(name, help, s.typing, "kind=\"typing\"");
  m.Counter(name, help, s.presence, "kind=\"presence\"");
  m.Counter(name, help, s.receipts_delayed, "kind=\"read_receipt_delayed\"");
  m.Counter(name, help, s.sends_refused, "kind=\"send_refused_heavy\"");
  m.Counter(name, help, s.sends_refused_full, "kind=\"send_refused_full\"");
}

}  // namespace meshchat::nodes
