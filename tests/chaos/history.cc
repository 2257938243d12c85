#include "tests/chaos/history.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <map>
#include <set>

namespace meshchat::chaos {
namespace {

constexpr size_t kMaxLine = 4096;

// Fields each kind has after the time, and whether more may follow (M lists members).
struct Shape {
  char kind;
  size_t fields;
  bool open;
};
constexpr Shape kShapes[] = {{'M', 1, true},  {'S', 5, false}, {'A', 3, false}, {'R', 5, false},
                             {'E', 2, false}, {'C', 2, false}, {'D', 1, false}, {'O', 1, false}};

bool ToInt(std::string_view s, int64_t& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}

int64_t Percentile(std::vector<int64_t>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

Report::Latency Summary(std::vector<int64_t>& v) {
  Report::Latency l;
  l.n = v.size();
  l.p50 = Percentile(v, 0.50);
  l.p99 = Percentile(v, 0.99);
  l.max = v.empty() ? 0 : *std::max_element(v.begin(), v.end());
  return l;
}

}  // namespace

bool ParseEvent(std::string_view line, Event& out, std::string& why) {
  if (line.size() > kMaxLine) return why = "line over 4 KiB", false;
  std::vector<std::string_view> w;
  size_t pos = 0;
  while (true) {
    const size_t tab = line.find('\t', pos);
    w.push_back(
        line.substr(pos, tab == std::string_view::npos ? std::string_view::npos : tab - pos));
    if (tab == std::string_view::npos) break;
    pos = tab + 1;
  }
  if (w[0].size() != 1) return why = "no event kind", false;
  const Shape* shape = nullptr;
  for (const auto& s : kShapes)
    if (s.kind == w[0][0]) shape = &s;
  if (!shape) return why = "unknown event kind '" + std::string(w[0]) + "'", false;
  out = Event{};
  out.kind = shape->kind;
  size_t first = 1;
  if (out.kind != 'M') {  // M has no time
    if (w.size() < 2 || !ToInt(w[1], out.t)) return why = "bad time", false;
    first = 2;
  }
  const size_t n = w.size() - first;
  if (n < shape->fields || (!shape->open && n != shape->fields))
    return why = std::string("wrong field count for '") + out.kind + "'", false;
  for (size_t i = first; i < w.size(); ++i) out.f.emplace_back(w[i]);
  return true;
}

std::string FormatEvent(char kind, int64_t t, const std::vector<std::string>& fields) {
  std::string s(1, kind);
  if (kind != 'M') s += "\t" + std::to_string(t);
  for (const auto& f : fields) s += "\t" + f;
  return s;
}

bool ParsePhases(std::string_view text, Phases& out, std::string& why) {
  out = Phases{};
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) continue;
    const size_t sp = line.find(' ');
    int64_t t = 0;
    if (sp == std::string_view::npos || !ToInt(line.substr(sp + 1), t))
      return why = "phases: bad line '" + std::string(line) + "'", false;
    if (line.substr(0, sp) == "fault")
      out.fault = t;
    else if (line.substr(0, sp) == "heal")
      out.heal = t;
    else
      return why = "phases: unknown phase '" + std::string(line.substr(0, sp)) + "'", false;
  }
  return true;
}

Report Check(const std::vector<Event>& events, const Phases& phases) {
  Report r;
  std::map<std::string, std::vector<std::string>> groups;  // group -> members
  struct Msg {
    std::string from, to;
    bool group = false;
    int64_t written = 0;
    bool acked = false;
  };
  std::map<std::string, Msg> msgs;                                    // body -> message
  std::map<std::pair<std::string, std::string>, std::string> by_cid;  // (from, cid) -> body
  std::map<std::pair<std::string, std::string>, int> seen;            // (user, body) -> times
  std::map<std::pair<std::string, std::string>, int64_t> last_seq;    // (user, chat) -> seq
  std::map<std::pair<std::string, std::string>, int64_t> last_k;      // (user, sender) -> k
  std::vector<int64_t> lat_before, lat_during, lat_after;
  std::vector<int64_t> ack_times;
  std::set<std::string> offline;
  auto example = [&](const std::string& s) {
    if (r.examples.size() < 10) r.examples.push_back(s);
  };
  for (const auto& e : events) {
    switch (e.kind) {
      case 'M': groups[e.f[0]].assign(e.f.begin() + 1, e.f.end()); break;
      case 'S': {
        Msg m{e.f[0], e.f[1], e.f[2] == "g", e.t, false};
        msgs[e.f[4]] = m;
        by_cid[{e.f[0], e.f[3]}] = e.f[4];
        ++r.written;
        break;
      }
      case 'A': {
        auto it = by_cid.find({e.f[0], e.f[1]});
        if (it == by_cid.end()) break;  // an ack for nothing we wrote: ignored
        Msg& m = msgs[it->second];
        if (!m.acked) {
          m.acked = true;
          ++r.acked;
          ack_times.push_back(e.t);
        }
        break;
      }
      case 'R': {
        const std::string &user = e.f[0], &from = e.f[1], &chat = e.f[2], &body = e.f[4];
        auto it = msgs.find(body);
        if (it == msgs.end() || it->second.from != from) {
          ++r.phantom;
          example("delivered, never written: " + body + " to " + user);
          break;
        }
        if (++seen[{user, body}] > 1) {
          ++r.duplicates;
          example("shown twice to " + user + ": " + body);
          break;
        }
        int64_t seq = 0, k = 0;
        const size_t colon = body.rfind(':');
        ToInt(e.f[3], seq);
        if (colon != std::string::npos) ToInt(std::string_view(body).substr(colon + 1), k);
        auto& ls = last_seq[{user, chat}];
        auto& lk = last_k[{user, from + "/" + chat}];
        if (seq <= ls || k + 1 <= lk) {  // lk holds k + 1: the first k is 0
          ++r.order_violations;
          example("out of order for " + user + " in " + chat + ": " + body);
        }
        ls = std::max(ls, seq);
        lk = std::max(lk, k + 1);
        if (offline.count(user)) break;  // it waited for the user, not for the mesh
        const int64_t lat = e.t - it->second.written;
        const int64_t w = it->second.written;
        if (phases.fault && w >= phases.fault && (!phases.heal || w < phases.heal))
          lat_during.push_back(lat);
        else if (phases.heal && w >= phases.heal)
          lat_after.push_back(lat);
        else
          lat_before.push_back(lat);
        break;
      }
      case 'O': offline.insert(e.f[0]); break;
      case 'E': ++r.errors; break;
      case 'D': ++r.reconnects; break;
      default: break;
    }
  }
  // Every acknowledged message reached each recipient: the other party, or every other member.
  for (const auto& [body, m] : msgs) {
    if (!m.acked) {
      ++r.never_acked;
      example("never acknowledged: " + body);
      continue;
    }
    std::vector<std::string> to;
    if (m.group) {
      for (const auto& u : groups[m.to])
        if (u != m.from) to.push_back(u);
    } else {
      to.push_back(m.to);
    }
    for (const auto& u : to) {
      ++r.expected_deliveries;
      if (seen.count({u, body})) {
        ++r.delivered;
      } else {
        ++r.acked_not_delivered;
        example("acknowledged, never delivered to " + u + ": " + body);
      }
    }
  }
  r.before = Summary(lat_before);
  r.during = Summary(lat_during);
  r.after = Summary(lat_after);
  // Recovery: from the heal to the first second after it with at least half the acks per
  // second of the second before the fault's median.
  if (phases.fault && phases.heal && !ack_times.empty()) {
    std::map<int64_t, int> per_s;
    for (int64_t t : ack_times) ++per_s[t / 1000];
    std::vector<int64_t> pre;
    for (const auto& [s, n] : per_s)
      if ((s + 1) * 1000 <= phases.fault) pre.push_back(n);
    const int64_t base = Percentile(pre, 0.5);
    for (const auto& [s, n] : per_s)
      if (s * 1000 >= phases.heal && n * 2 >= base) {
        r.recovery_ms = s * 1000 - phases.heal;
        break;
      }
    if (r.recovery_ms < 0) r.recovery_ms = 0;  // acks never stopped flowing
  }
  return r;
}

std::string Describe(const Report& r) {
  char buf[1024];
  auto lat = [](const Report::Latency& l) {
    char b[128];
    std::snprintf(b, sizeof b, "n=%llu p50=%lld ms p99=%lld ms max=%lld ms",
                  static_cast<unsigned long long>(l.n), static_cast<long long>(l.p50),
                  static_cast<long long>(l.p99), static_cast<long long>(l.max));
    return std::string(b);
  };
  std::snprintf(
      buf, sizeof buf,
      "verdict: %s\n"
      "written %llu, acknowledged %llu, never acknowledged %llu (must be 0)\n"
      "deliveries expected %llu, delivered %llu\n"
      "acknowledged but never delivered: %llu (must be 0)\n"
      "duplicates shown to a user: %llu (must be 0)\n"
      "order violations: %llu (must be 0)\n"
      "delivered but never written: %llu (must be 0)\n"
      "errors seen by clients: %llu, reconnects: %llu\n"
      "recovery after heal: %s\n",
      r.ok() ? "PASS" : "FAIL", static_cast<unsigned long long>(r.written),
      static_cast<unsigned long long>(r.acked), static_cast<unsigned long long>(r.never_acked),
      static_cast<unsigned long long>(r.expected_deliveries),
      static_cast<unsigned long long>(r.delivered),
      static_cast<unsigned long long>(r.acked_not_delivered),
      static_cast<unsigned long long>(r.duplicates),
      static_cast<unsigned long long>(r.order_violations),
      static_cast<unsigned long long>(r.phantom), static_cast<unsigned long long>(r.errors),
      static_cast<unsigned long long>(r.reconnects),
      r.recovery_ms < 0 ? "-" : (std::to_string(r.recovery_ms) + " ms").c_str());
  std::string s = buf;
  s += "latency written before the fault: " + lat(r.before) + "\n";
  s += "latency written during the fault: " + lat(r.during) + "\n";
  s += "latency written after the heal:   " + lat(r.after) + "\n";
  for (const auto& x : r.examples) s += "  e.g. " + x + "\n";
  return s;
}

}  // namespace meshchat::chaos
