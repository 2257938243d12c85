// GroupCore's retention: a group's mode (temporary / permanent) and disappearing timer, the
// history kept while it is permanent, and the expiry of disappearing messages.
//
// The group log (`glog`) is what large groups pull from, whatever the mode; like an inbox it
// keeps an entry for the retention (30 days), so it does not grow without bound. History is a
// separate table (`ghist`), written only while the group is permanent, so a mode change
// applies from its own message on, in both directions, as for one-to-one chats.
#include "codec/history_messages.h"
#include "nodes/group/group_core.h"

namespace meshchat::nodes {

namespace {
constexpr std::string_view kModeTable = "gmode";      // group -> [permanent, timer_s]
constexpr std::string_view kHistTable = "ghist";      // group \0 be64(seq) -> InboxEntry
constexpr std::string_view kVanishTable = "gvanish";  // be64(vanish) group \0 be64(seq) -> ""
// be64(bucket end) + group: the log holds entries that reach the retention in that bucket.
constexpr std::string_view kLogExpiryTable = "glog_exp";
}  // namespace

Result<GroupCore::Mode> GroupCore::LoadMode(const std::string& group) {
  // Read on every message (timer, history): cached like the member lists, and dropped with
  // them when a batch is lost.
  if (auto it = modes_.find(group); it != modes_.end()) return it->second;
  Mode m;
  if (auto v = kv_.Get(kModeTable, group); v.ok()) {
    std::vector<uint64_t> u;
    if (!DecodeUints(*v, u, 2)) return Status(Code::kInvalid, "corrupt group mode");
    m = Mode{u[0] == 1, u[1]};
  } else if (v.status().code() != Code::kNotFound) {
    return v.status();
  }
  return modes_[group] = m;
}

Status GroupCore::SetMode(const codec::GroupRequest& req, const codec::Stamp& who, Meta& meta,
                          const std::vector<std::string>& audience, Effects& fx,
                          codec::GroupResult& refused) {
  codec::ChatRetention r;
  if (!codec::ParseRetention(req.mode, r) ||
      (req.timer != 0 && (req.timer < codec::kMinTimerS || req.timer > codec::kMaxTimerS))) {
    refused.ok = false;
    refused.code = codec::ErrorCode::kBadRequest;
    refused.msg = "mode must be temporary or permanent, timer 0 (off) or 1 s .. 90 days";
    return Status::Ok();
  }
  const Mode m{r == codec::ChatRetention::kPermanent, req.timer};
  if (Status s = kv_.Put(kModeTable, req.group, EncodeUints({m.permanent ? 1u : 0u, m.timer_s}));
      !s.ok())
    return s;
  modes_[req.group] = m;
  return System(req.group, meta, who,
                who.user + " made this group " + (m.permanent ? "permanent" : "temporary") +
                    (m.timer_s ? "; messages disappear after " + std::to_string(m.timer_s) + " s"
                               : "; disappearing messages off"),
                "", false, audience, fx);
}

Status GroupCore::Keep(const std::string& group, const InboxEntry& e) {
  auto mode = LoadMode(group);
  if (!mode.ok()) return mode.status();
  const std::string key = group + '\0' + store::BigEndian64(e.seq);
  const std::string mark = store::BigEndian64(ExpiryBucketEnd(e.expires_ms, cfg_.ttl_ms)) + group;
  if (Status s = store::PutMarkOnce(kv_, kLogExpiryTable, mark); !s.ok()) return s;
  if (mode->permanent)
    if (Status s = kv_.Put(kHistTable, key, EncodeRecord(e)); !s.ok()) return s;
  if (e.vanish_ms == 0) return Status::Ok();
  return kv_.Put(kVanishTable, store::BigEndian64(e.vanish_ms) + key, "");
}

Status GroupCore::History(const codec::GroupRequest& req, uint64_t joined_seq, uint64_t next_seq,
                          codec::GroupResult& r) {
  auto mode = LoadMode(req.group);
  if (!mode.ok()) return mode.status();
  r.mode = mode->permanent ? "permanent" : "temporary";
  r.timer = mode->timer_s;
  const uint64_t limit = codec::HistoryPageSize(req.limit);
  // A member sees history only from when it joined.
  const uint64_t floor = std::max<uint64_t>(joined_seq, 1);
  uint64_t hi = req.seq == 0 || req.seq > next_seq ? next_seq : req.seq;
  uint64_t lo = hi > floor + limit ? hi - limit : floor;
  if (req.after) {  // forwards: the `limit` sequences after `after`
    lo = std::max(*req.after + 1, floor);
    hi = std::min(lo + limit, next_seq);
  }
  const std::string prefix = req.group + '\0';
  const uint64_t now = static_cast<uint64_t>(clock_.WallMs());
  Status bad = Status::Ok();
  Status s = kv_.Scan(kHistTable, prefix + store::BigEndian64(lo),
                      [&](std::string_view k, std::string_view v) {
                        if (k.substr(0, prefix.size()) != prefix) return false;
                        if (store::ReadBigEndian64(k.substr(prefix.size())) >= hi) return false;
                        InboxEntry e;
                        if (!DecodeRecord(v, e)) {
                          bad = Status(Code::kInvalid, "corrupt group history");
                          return false;
                        }
                        if (e.vanish_ms == 0 || e.vanish_ms > now)
                          r.messages.push_back(PushOf(0, e));
                        return true;
                      });
  if (!s.ok()) return s;
  if (!bad.ok()) return bad;
  r.more = req.after ? hi < next_seq : lo > floor;
  return Status::Ok();
}

Result<uint64_t> GroupCore::PastOwn(const std::string& group, const std::string& user,
                                    uint64_t at) {
  const std::string prefix = group + '\0';
  size_t seen = 0;  // bounded per call: a longer run is passed by the next cursor or send
  Status s = kv_.Scan(kLogTable, prefix + store::BigEndian64(at + 1),
                      [&](std::string_view k, std::string_view v) {
                        if (k.substr(0, prefix.size()) != prefix) return false;
                        if (store::ReadBigEndian64(k.substr(prefix.size())) != at + 1) return false;
                        InboxEntry e;
                        if (!DecodeRecord(v, e) || e.system || e.from != user) return false;
                        ++at;
                        return ++seen < 1024;
                      });
  if (!s.ok()) return s;
  return at;
}

Status GroupCore::MoveCursor(const std::string& group, const std::string& user, uint64_t delivered,
                             uint64_t read, uint64_t just_sent) {
  const std::string key = group + '\0' + user;
  std::vector<uint64_t> cur{0, 0};
  if (auto v = kv_.Get(kCursorTable, key); v.ok()) {
    if (!DecodeUints(*v, cur, 2)) cur = {0, 0};
  } else if (v.status().code() != Code::kNotFound) {
    return v.status();
  }
  // A cursor never rests just before one of the user's own messages, so right after a send the
  // only own message that can follow it is the one just sent: no need to read the log.
  auto past = [&](uint64_t at) -> Result<uint64_t> {
    if (just_sent != 0) return at + 1 == just_sent ? just_sent : at;
    return PastOwn(group, user, at);
  };
  // Cursors only move forward; read implies delivered.
  auto r = past(std::max(cur[1], read));
  if (!r.ok()) return r.status();
  auto d = past(std::max({cur[0], delivered, *r}));
  if (!d.ok()) return d.status();
  if (*d == cur[0] && *r == cur[1]) return Status::Ok();
  if (Status s = kv_.Put(kCursorTable, key, EncodeUints({*d, *r})); !s.ok()) return s;
  // Trimming reads every member's cursor: once per group per tick, not once per ack.
  if (*d > cur[0]) trim_due_.insert(group);
  return Status::Ok();
}

Status GroupCore::TrimDelivered(const std::string& group) {
  auto mode = LoadMode(group);
  if (!mode.ok()) return mode.status();
  auto members = MembersOf(group);
  if (!members.ok()) return members.status();
  // Large groups pull from the log: it stays for the retention. A temporary group's log is
  // otherwise a mailbox: what every member has received is deleted.
  if (mode->permanent || (*members)->empty() || (*members)->size() > cfg_.large_group)
    return Status::Ok();
  uint64_t upto = UINT64_MAX;
  for (const auto& [user, m] : **members) {
    std::vector<uint64_t> cur{0, 0};
    if (auto v = kv_.Get(kCursorTable, group + '\0' + user); v.ok()) {
      if (!DecodeUints(*v, cur, 2)) cur = {0, 0};
    } else if (v.status().code() != Code::kNotFound) {
      return v.status();
    }
    // What came before a member joined is not waiting for it.
    upto = std::min(upto, std::max(cur[0], m.joined_seq > 0 ? m.joined_seq - 1 : 0));
  }
  const std::string prefix = group + '\0';
  std::vector<std::string> done;
  Status s = kv_.Scan(kLogTable, prefix, [&](std::string_view k, std::string_view) {
    if (k.substr(0, prefix.size()) != prefix) return false;
    if (store::ReadBigEndian64(k.substr(prefix.size())) > upto) return false;
    done.emplace_back(k);
    return done.size() < 4096;
  });
  if (!s.ok()) return s;
  for (const auto& k : done)
    if (Status st = kv_.Del(kLogTable, k); !st.ok()) return st;
  return Status::Ok();
}

Status GroupCore::ExpireLog(size_t max) {
  const uint64_t now = static_cast<uint64_t>(clock_.WallMs());
  auto due = store::DueKeys(kv_, kLogExpiryTable, now, max);
  if (!due.ok()) return due.status();
  for (const auto& mark : *due) {
    const std::string prefix = mark.substr(8) + '\0';
    std::vector<std::string> old;
    bool more = false;
    // Sequence order is time order: stop at the first entry still within the retention.
    Status s = kv_.Scan(kLogTable, prefix, [&](std::string_view k, std::string_view v) {
      if (k.substr(0, prefix.size()) != prefix) return false;
      InboxEntry e;
      if (DecodeRecord(v, e) && e.expires_ms > now) return false;
      old.emplace_back(k);
      more = old.size() >= max;
      return !more;
    });
    if (!s.ok()) return s;
    for (const auto& k : old)
      if (Status st = kv_.Del(kLogTable, k); !st.ok()) return st;
    if (!more)
      if (Status st = kv_.Del(kLogExpiryTable, mark); !st.ok()) return st;
  }
  return Status::Ok();
}

Status GroupCore::ExpireVanished(size_t max) {
  const uint64_t now = static_cast<uint64_t>(clock_.WallMs());
  auto due = store::DueKeys(kv_, kVanishTable, now, max);
  if (!due.ok()) return due.status();
  for (const auto& mark : *due) {
    const std::string key = mark.substr(8);
    for (auto table : {kLogTable, kHistTable})
      if (Status st = kv_.Del(table, key); !st.ok()) return st;
    if (Status st = kv_.Del(kVanishTable, mark); !st.ok()) return st;
  }
  return Status::Ok();
}

}  // namespace meshchat::nodes
