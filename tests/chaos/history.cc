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
                             {'P', 6, false}, {'F', 0, false}, {'E', 2, false}, {'C', 2, false},
                             {'D', 1, false}, {'O', 1, false}};

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
    int64_t acked_at = 0;
    int64_t seq = 0;  // from its `sent`
  };
  std::map<std::string, Msg> msgs;                                    // body -> message
  std::map<std::pair<std::string, std::string>, std::string> by_cid;  // (from, cid) -> body
  std::map<std::pair<std::string, std::string>, int> seen;            // (user, body) -> times
  std::set<std::pair<std::string, std::string>> seen_late;  // shown after the final reconnect
  std::map<std::pair<std::string, std::string>, int64_t> last_seq;       // (user, chat) -> seq
  std::map<std::pair<std::string, std::string>, std::string> pushed_at;  // (user, body) -> n
  std::vector<int64_t> lat_before, lat_during, lat_after;
  std::vector<int64_t> ack_times;
  std::set<std::string> offline;
  bool final_phase = false;
  auto example = [&](const std::string& s) {
    if (r.examples.size() < 10) r.examples.push_back(s);
  };
  // Whether `user` may be shown `m` under `chat` (the sender for 1:1, the group otherwise).
  auto recipient = [&](const Msg& m, const std::string& user, const std::string& chat) {
    if (user == m.from) return false;
    if (!m.group) return user == m.to && chat == m.from;
    const auto& members = groups[m.to];
    return chat == m.to && std::find(members.begin(), members.end(), user) != members.end();
  };
  for (const auto& e : events) {
    switch (e.kind) {
      case 'M': groups[e.f[0]].assign(e.f.begin() + 1, e.f.end()); break;
      case 'S': {
        Msg m{e.f[0], e.f[1], e.f[2] == "g", e.t, false, 0, 0};
        msgs[e.f[4]] = m;
        by_cid[{e.f[0], e.f[3]}] = e.f[4];
        ++r.written;
        break;
      }
      case 'A': {
        auto it = by_cid.find({e.f[0], e.f[1]});
        if (it == by_cid.end()) break;  // an ack for nothing we wrote: ignored
        Msg& m = msgs[it->second];
        int64_t seq = 0;
        ToInt(e.f[2], seq);
        if (!m.acked) {
          m.acked = true;
          m.acked_at = e.t;
          m.seq = seq;
          ++r.acked;
          ack_times.push_back(e.t);
        } else if (seq != m.seq) {  // a resend answered with another sequence: stored twice
          ++r.seq_mismatch;
          example("acknowledged twice with seqs " + std::to_string(m.seq) + " and " + e.f[2] +
                  ": " + it->second);
        }
        break;
      }
      case 'P': {  // what the server pushed: one message is one inbox position per user
        const std::string &user = e.f[0], &n = e.f[1], &body = e.f[5];
        auto [it, fresh] = pushed_at.try_emplace({user, body}, n);
        if (!fresh && it->second != n) {
          ++r.stored_twice;
          example("pushed to " + user + " at n=" + it->second + " and n=" + n + ": " + body);
          it->second = n;
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
        const Msg& m = it->second;
        if (!recipient(m, user, chat)) {
          ++r.misdelivered;
          example("misdelivered to " + user + " in " + chat + ": " + body);
          break;
        }
        if (++seen[{user, body}] > 1) {
          ++r.duplicates;
          example("shown twice to " + user + ": " + body);
          break;
        }
        if (final_phase) seen_late.insert({user, body});
        int64_t seq = 0;
        ToInt(e.f[3], seq);
        if (m.acked && seq != m.seq) {
          ++r.seq_mismatch;
          example("delivered to " + user + " as seq " + e.f[3] + ", acked as " +
                  std::to_string(m.seq) + ": " + body);
        }
        auto& ls = last_seq[{user, chat}];
        if (seq <= ls) {
          ++r.order_violations;
          example("out of order for " + user + " in " + chat + ": " + body);
        }
        ls = std::max(ls, seq);
        if (offline.count(user) || final_phase) break;  // it waited for the user, not the mesh
        const int64_t lat = e.t - m.written;
        const int64_t w = m.written;
        if (phases.fault && w >= phases.fault && (!phases.heal || w < phases.heal))
          lat_during.push_back(lat);
        else if (phases.heal && w >= phases.heal)
          lat_after.push_back(lat);
        else
          lat_before.push_back(lat);
        break;
      }
      case 'F': final_phase = true; break;
      case 'O': offline.insert(e.f[0]); break;
      case 'E': ++r.errors; break;
      case 'D':
        if (!final_phase) ++r.reconnects;
        break;
      default: break;
    }
  }
  // Causal order: a message written after the `sent` of another in the same chat (same
  // sender) must have a higher seq.
  std::map<std::pair<std::string, std::string>, std::vector<const Msg*>> by_chat;
  for (const auto& [body, m] : msgs)
    if (m.acked)
      by_chat[{m.from, m.group ? m.to : std::min(m.from, m.to) + "/" + std::max(m.from, m.to)}]
          .push_back(&m);
  for (auto& [chat, list] : by_chat) {
    std::sort(list.begin(), list.end(),
              [](const Msg* a, const Msg* b) { return a->written < b->written; });
    int64_t acked_seq = 0;  // highest seq acked before the current write
    size_t j = 0;
    std::vector<const Msg*> by_ack(list);
    std::sort(by_ack.begin(), by_ack.end(),
              [](const Msg* a, const Msg* b) { return a->acked_at < b->acked_at; });
    for (const Msg* m : list) {
      while (j < by_ack.size() && by_ack[j]->acked_at < m->written)
        acked_seq = std::max(acked_seq, by_ack[j++]->seq);
      if (m->seq <= acked_seq) {
        ++r.order_violations;
        example("written after a later-sequenced message was acked, in " + chat.second + ": seq " +
                std::to_string(m->seq));
      }
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
      if (!seen.count({u, body})) {
        ++r.acked_not_delivered;
        example("acknowledged, never delivered to " + u + ": " + body);
      } else if (seen_late.count({u, body})) {
        ++r.after_reconnect;
        example("acknowledged, delivered to " + u + " only after reconnecting: " + body);
      } else {
        ++r.delivered;
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
  char buf[2048];
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
      "delivered only after reconnecting (stalled): %llu (must be 0)\n"
      "duplicates shown to a user: %llu (must be 0)\n"
      "pushed at two inbox positions (stored twice): %llu (must be 0)\n"
      "misdelivered (not a recipient, or the wrong chat): %llu (must be 0)\n"
      "delivered with another seq than acknowledged: %llu (must be 0)\n"
      "order violations: %llu (must be 0)\n"
      "delivered but never written: %llu (must be 0)\n"
      "errors seen by clients: %llu, reconnects: %llu\n"
      "recovery after heal: %s\n",
      r.ok() ? "PASS" : "FAIL", static_cast<unsigned long long>(r.written),
      static_cast<unsigned long long>(r.acked), static_cast<unsigned long long>(r.never_acked),
      static_cast<unsigned long long>(r.expected_deliveries),
      static_cast<unsigned long long>(r.delivered),
      static_cast<unsigned long long>(r.acked_not_delivered),
      static_cast<unsigned long long>(r.after_reconnect),
      static_cast<unsigned long long>(r.duplicates),
      static_cast<unsigned long long>(r.stored_twice),
      static_cast<unsigned long long>(r.misdelivered),
      static_cast<unsigned long long>(r.seq_mismatch),
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
