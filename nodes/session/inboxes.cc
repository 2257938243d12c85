#include "nodes/session/inboxes.h"

#include <algorithm>
#include <map>

#include "codec/group_messages.h"

namespace meshchat::nodes {
namespace {
constexpr std::string_view kUserTable = "user";
constexpr std::string_view kChatTable = "chat";
constexpr std::string_view kInboxTable = "inbox";
constexpr std::string_view kExpiryTable = "inbox_exp";
constexpr std::string_view kUserGroupsTable = "ugroups";  // user \0 group -> ""
constexpr size_t kExpiryScanLimit = 4096;  // inbox entries looked at per expiry pass and user

// Expiry is indexed per (time bucket, user), not per entry: one index write per user per
// bucket instead of a write and a delete for every message.
std::string ExpiryKey(uint64_t bucket_end, const std::string& user) {
  return store::BigEndian64(bucket_end) + user;
}

// Parses "user\0<be64 n>" keys; false if the key is not under `prefix` (user + '\0').
bool PositionIn(std::string_view key, std::string_view prefix, uint64_t& n) {
  if (key.size() != prefix.size() + 8 || key.substr(0, prefix.size()) != prefix) return false;
  n = store::ReadBigEndian64(key.substr(prefix.size()));
  return true;
}
}  // namespace

std::string InboxKey(const std::string& user, uint64_t n) {
  return user + '\0' + store::BigEndian64(n);
}

Result<UserState> Inboxes::LoadUser(const std::string& user) {
  auto v = ctx_.kv.Get(kUserTable, user);
  if (!v.ok()) {
    if (v.status().code() == Code::kNotFound) return UserState{};
    return v.status();
  }
  UserState us;
  if (!DecodeRecord(*v, us)) return Status(Code::kInvalid, "corrupt user record " + user);
  return us;
}

Status Inboxes::SaveUser(const std::string& user, const UserState& us) {
  return ctx_.kv.Put(kUserTable, user, EncodeRecord(us));
}

Result<ChatState> Inboxes::LoadChat(const std::string& user, const std::string& peer) {
  auto v = ctx_.kv.Get(kChatTable, user + '\0' + peer);
  if (!v.ok()) {
    if (v.status().code() == Code::kNotFound) return ChatState{};
    return v.status();
  }
  ChatState cs;
  if (!DecodeRecord(*v, cs)) return Status(Code::kInvalid, "corrupt chat record");
  return cs;
}

Status Inboxes::SaveChat(const std::string& user, const std::string& peer, const ChatState& cs) {
  return ctx_.kv.Put(kChatTable, user + '\0' + peer, EncodeRecord(cs));
}

Inboxes::Conn* Inboxes::FindConn(const codec::Stamp& s) {
  auto it = conns_.find(s.user);
  if (it == conns_.end()) return nullptr;
  for (auto& c : it->second)
    if (c.dc.conn == s.conn && c.dc.gateway == s.gateway) return &c;
  return nullptr;
}

size_t Inboxes::connections() const {
  size_t n = 0;
  for (const auto& [u, v] : conns_) n += v.size();
  return n;
}

std::vector<DeviceConn> Inboxes::ConnectionsOf(const std::string& user) const {
  std::vector<DeviceConn> out;
  if (auto it = conns_.find(user); it != conns_.end())
    for (const auto& c : it->second) out.push_back(c.dc);
  return out;
}

Status Inboxes::OnConnOpen(const codec::Stamp& s, Effects& fx) {
  auto reply = [&](codec::ErrorCode refused) {
    codec::Envelope r;
    r.type = codec::MeshType::kConnOpened;
    r.arg = static_cast<uint64_t>(refused);
    r.key = s.user;
    r.stamp = s;
    fx.mesh.push_back({s.gateway, std::move(r), 0});
  };
  auto& conns = conns_[s.user];
  if (Conn* same = FindConn(s)) {  // re-announced after our restart or a lost reply
    same->needs_pump = true;
    reply(codec::ErrorCode{0});
    return Status::Ok();
  }
  // The same device connecting again replaces its old connection.
  for (auto it = conns.begin(); it != conns.end(); ++it) {
    if (it->dc.device != s.device) continue;
    const codec::Stamp old{s.user, s.device, it->dc.conn, it->dc.gateway};
    ctx_.ErrorToClient(old, codec::ErrorCode::kReplaced, "this device connected again elsewhere",
                       std::nullopt, true, fx);
    codec::Envelope close;
    close.type = codec::MeshType::kCloseConn;
    close.key = s.user;
    close.stamp = old;
    fx.mesh.push_back({old.gateway, std::move(close), 0});
    conns.erase(it);
    break;
  }
  if (conns.size() >= ctx_.cfg.max_devices) {
    reply(codec::ErrorCode::kTooManyDevices);
    return Status::Ok();
  }
  auto us = LoadUser(s.user);
  if (!us.ok()) return us.status();
  DeviceState* d = us->Find(s.device);
  if (!d) {
    if (us->devices.size() >= ctx_.cfg.max_devices) {
      // Forget the least recently seen device that is not connected now.
      auto victim = us->devices.end();
      for (auto it = us->devices.begin(); it != us->devices.end(); ++it) {
        bool connected = std::any_of(conns.begin(), conns.end(),
                                     [&](const Conn& c) { return c.dc.device == it->id; });
        if (!connected && (victim == us->devices.end() || it->last_seen_ms < victim->last_seen_ms))
          victim = it;
      }
      if (victim != us->devices.end()) us->devices.erase(victim);
    }
    // A user's first device gets everything still kept; a later new device starts from now.
    const uint64_t cursor = us->devices.empty() ? us->kept_from - 1 : us->next_n - 1;
    us->devices.push_back({s.device, cursor, 0});
    d = &us->devices.back();
  }
  d->last_seen_ms = static_cast<uint64_t>(ctx_.clock.WallMs());
  Conn c;
  c.dc = {s.device, s.gateway, s.conn};
  c.sent_upto = d->cursor;
  c.last_progress_ms = ctx_.clock.MonoMs();
  c.rto_ms = ctx_.cfg.push_rto_initial_ms;
  conns.push_back(std::move(c));
  reply(codec::ErrorCode{0});  // before the pushes: the gateway welcomes, then delivers
  bool dirty = true;
  if (Status st = Collect(s.user, *us); !st.ok()) return st;
  if (Status st = Pump(s.user, conns.back(), *us, dirty, fx); !st.ok()) return st;
  return SaveUser(s.user, *us);
}

void Inboxes::OnConnClose(const codec::Stamp& s) {
  auto it = conns_.find(s.user);
  if (it == conns_.end()) return;
  std::erase_if(it->second,
                [&](const Conn& c) { return c.dc.conn == s.conn && c.dc.gateway == s.gateway; });
  if (it->second.empty()) conns_.erase(it);
}

std::vector<std::string> Inboxes::ForgetGateway(const std::string& gateway) {
  std::vector<std::string> users;
  for (auto it = conns_.begin(); it != conns_.end();) {
    if (std::erase_if(it->second, [&](const Conn& c) { return c.dc.gateway == gateway; }))
      users.push_back(it->first);
    it = it->second.empty() ? conns_.erase(it) : std::next(it);
  }
  return users;
}

std::optional<codec::ConnList> Inboxes::CompareWith(const std::string& gateway,
                                                    const codec::ConnDigest& theirs) const {
  codec::ConnDigest ours;
  for (const auto& [user, conns] : conns_)
    for (const auto& c : conns)
      if (c.dc.gateway == gateway) ours.Add(c.dc.conn);
  if (ours == theirs) return std::nullopt;
  codec::ConnList list;
  size_t entries = 0;
  for (size_t b = 0; b < codec::kConnSyncBuckets; ++b) {
    if (ours.count[b] == theirs.count[b] && ours.xor_[b] == theirs.xor_[b]) continue;
    if (entries + ours.count[b] > codec::kMaxConnListEntries ||
        (entries + ours.count[b]) * (9 + codec::kMaxIdBytes) > codec::kMaxConnListBytes)
      break;
    list.buckets.push_back(b);
    entries += ours.count[b];
  }
  uint64_t answered = 0;
  for (uint64_t b : list.buckets) answered |= uint64_t{1} << b;
  for (const auto& [user, conns] : conns_)
    for (const auto& c : conns)
      if (c.dc.gateway == gateway && (answered & (uint64_t{1} << codec::ConnBucketOf(c.dc.conn)))) {
        list.conns.push_back(c.dc.conn);
        list.users.push_back(user);
      }
  return list;
}

void Inboxes::ForgetUsers(const std::function<bool(const std::string& user)>& moved) {
  std::erase_if(conns_, [&](const auto& kv) { return moved(kv.first); });
}

Status Inboxes::Pump(const std::string& user, Conn& c, UserState& us, bool& dirty, Effects& fx) {
  c.needs_pump = false;
  DeviceState* d = us.Find(c.dc.device);
  if (!d) return Status::Ok();
  c.sent_upto = std::max(c.sent_upto, d->cursor);
  c.cursor = d->cursor;
  while (!c.inflight.empty() && c.inflight.front().first <= d->cursor) {
    c.inflight_bytes -= c.inflight.front().second;
    c.inflight.pop_front();
  }
  const uint64_t limit = std::min(us.next_n - 1, d->cursor + ctx_.cfg.push_window);
  if (c.sent_upto >= limit) return Status::Ok();
  if (c.sent_upto == d->cursor) c.last_progress_ms = ctx_.clock.MonoMs();
  const std::string prefix = user + '\0';
  const codec::Stamp to{user, c.dc.device, c.dc.conn, c.dc.gateway};
  Status bad = Status::Ok();
  Status s = ctx_.kv.Scan(
      kInboxTable, InboxKey(user, c.sent_upto + 1), [&](std::string_view k, std::string_view v) {
        uint64_t n = 0;
        if (!PositionIn(k, prefix, n) || n > limit) return false;
        // Entries missing before n expired: nothing to deliver there.
        if (c.sent_upto == d->cursor && n > d->cursor + 1) {
          d->cursor = n - 1;
          dirty = true;
        }
        InboxEntry e;
        if (!DecodeRecord(v, e)) {
          bad = Status(Code::kInvalid, "corrupt inbox entry");
          return false;
        }
        auto [type, body] = FrameFor(n, e);
        if (!c.inflight.empty() && c.inflight_bytes + body.size() > ctx_.cfg.push_window_bytes)
          return false;  // the byte window is full: more after acks
        c.inflight.emplace_back(n, body.size());
        c.inflight_bytes += body.size();
        ctx_.ToClient(to, type, std::move(body), fx);
        ++stats_.pushed;
        c.sent_upto = n;
        return true;
      });
  if (!s.ok()) return s;
  if (!bad.ok()) return bad;
  if (c.sent_upto < limit && c.sent_upto == d->cursor) {  // the rest expired
    d->cursor = c.sent_upto = limit;
    dirty = true;
  }
  c.cursor = d->cursor;
  return Status::Ok();
}

Status Inboxes::SendReceipt(const std::string& to_user, const std::string& chat,
                            codec::ReceiptKind kind, uint64_t seq, Effects& fx) {
  InboxAppend a;
  a.users = {to_user};
  a.entry.kind = InboxEntry::Kind::kReceipt;
  a.entry.chat = chat;
  a.entry.receipt = kind;
  a.entry.seq = seq;
  a.entry.ts = static_cast<uint64_t>(ctx_.clock.WallMs());
  a.entry.expires_ms = a.entry.ts + static_cast<uint64_t>(ctx_.cfg.inbox_ttl_ms);
  return ctx_.channel.Append(ctx_.owner(to_user), EncodeRecord(a), fx);
}

Status Inboxes::EmitDelivered(const std::string& user, uint64_t from_n, uint64_t to_n,
                              Effects& fx) {
  std::map<std::string, uint64_t> upto;    // peer -> highest sequence now delivered
  std::map<std::string, uint64_t> groups;  // group -> highest sequence now delivered
  const std::string prefix = user + '\0';
  Status bad = Status::Ok();
  Status s = ctx_.kv.Scan(kInboxTable, InboxKey(user, from_n),
                          [&](std::string_view k, std::string_view v) {
                            uint64_t n = 0;
                            if (!PositionIn(k, prefix, n) || n > to_n) return false;
                            InboxEntry e;
                            if (!DecodeRecord(v, e)) {
                              bad = Status(Code::kInvalid, "corrupt inbox entry");
                              return false;
                            }
                            if (e.kind != InboxEntry::Kind::kMessage || e.from == user) return true;
                            if (!e.group.empty()) {
                              if (!e.system) groups[e.group] = std::max(groups[e.group], e.seq);
                            } else {
                              upto[e.from] = std::max(upto[e.from], e.seq);
                            }
                            return true;
                          });
  if (!s.ok()) return s;
  if (!bad.ok()) return bad;
  for (const auto& [peer, seq] : upto) {
    auto cs = LoadChat(user, peer);
    if (!cs.ok()) return cs.status();
    if (seq <= cs->delivered_sent) continue;
    cs->delivered_sent = seq;
    if (Status st = SaveChat(user, peer, *cs); !st.ok()) return st;
    if (Status st = SendReceipt(peer, user, codec::ReceiptKind::kDelivered, seq, fx); !st.ok())
      return st;
  }
  // Group receipts are cursors kept by the group's owner.
  for (const auto& [group, seq] : groups)
    if (Status st = ctx_.channel.Append(ctx_.group_owner(group),
                                        EncodeRecord(GroupCursor{group, user, seq, 0}), fx);
        !st.ok())
      return st;
  return Status::Ok();
}

Status Inboxes::Collect(const std::string& user, UserState& us) {
  const uint64_t upto = us.MinCursor();
  if (us.devices.empty() || upto < us.kept_from) return Status::Ok();
  const std::string prefix = user + '\0';
  std::vector<uint64_t> doomed;
  Status s = ctx_.kv.Scan(kInboxTable, InboxKey(user, us.kept_from),
                          [&](std::string_view k, std::string_view) {
                            uint64_t n = 0;
                            if (!PositionIn(k, prefix, n) || n > upto) return false;
                            doomed.push_back(n);
                            return true;
                          });
  if (!s.ok()) return s;
  for (uint64_t n : doomed)
    if (Status st = ctx_.kv.Del(kInboxTable, InboxKey(user, n)); !st.ok()) return st;
  us.kept_from = upto + 1;
  return Status::Ok();
}

Status Inboxes::OnAck(const codec::Stamp& s, uint64_t n, Effects& fx) {
  Conn* c = FindConn(s);
  if (!c) return Status::Ok();
  ++stats_.acks;
  n = std::min(n, c->sent_upto);  // a device cannot acknowledge what it was not sent
  auto us = LoadUser(s.user);
  if (!us.ok()) return us.status();
  DeviceState* d = us->Find(s.device);
  if (!d || n <= d->cursor) return Status::Ok();
  d->cursor = n;
  d->last_seen_ms = static_cast<uint64_t>(ctx_.clock.WallMs());
  c->last_progress_ms = ctx_.clock.MonoMs();
  c->rto_ms = ctx_.cfg.push_rto_initial_ms;
  if (n > us->max_acked) {
    if (Status st = EmitDelivered(s.user, us->max_acked + 1, n, fx); !st.ok()) return st;
    us->max_acked = n;
  }
  if (Status st = Collect(s.user, *us); !st.ok()) return st;
  bool dirty = true;
  if (Status st = Pump(s.user, *c, *us, dirty, fx); !st.ok()) return st;
  return SaveUser(s.user, *us);
}

void Inboxes::Notify(const std::string& user, uint8_t type, const std::string& body, Effects& fx) {
  auto it = conns_.find(user);
  if (it == conns_.end()) return;
  for (const auto& c : it->second)
    ctx_.ToClient(codec::Stamp{user, c.dc.device, c.dc.conn, c.dc.gateway}, type, body, fx);
}

std::vector<std::string> Inboxes::GroupsOf(const std::string& user) {
  std::vector<std::string> out;
  const std::string prefix = user + '\0';
  (void)ctx_.kv.Scan(kUserGroupsTable, prefix, [&](std::string_view k, std::string_view) {
    if (k.substr(0, prefix.size()) != prefix) return false;
    out.emplace_back(k.substr(prefix.size()));
    return out.size() < codec::kMaxGroupList;
  });
  return out;
}

Status Inboxes::OnRead(const codec::Stamp& s, const codec::Read& r, Effects& fx) {
  if (r.group)  // a group's read cursor lives with the group's owner
    return ctx_.channel.Append(ctx_.group_owner(r.chat),
                               EncodeRecord(GroupCursor{r.chat, s.user, 0, r.seq}), fx);
  auto cs = LoadChat(s.user, r.chat);
  if (!cs.ok()) return cs.status();
  const uint64_t seq = std::min(r.seq, cs->last_in_seq);  // only what the user has received
  if (seq <= cs->read_sent) return Status::Ok();
  cs->read_sent = seq;
  cs->delivered_sent = std::max(cs->delivered_sent, seq);  // read implies delivered
  if (Status st = SaveChat(s.user, r.chat, *cs); !st.ok()) return st;
  return SendReceipt(r.chat, s.user, codec::ReceiptKind::kRead, seq, fx);
}

Status Inboxes::Apply(const InboxAppend& a, Effects& fx) {
  for (const auto& user : a.users)
    if (Status s = ApplyOne(user, a.entry, fx); !s.ok()) return s;
  return Status::Ok();
}

Status Inboxes::ApplyOne(const std::string& user, const InboxEntry& entry, Effects& fx) {
  // Keep the index of the user's groups (for `group list`) in step with membership messages.
  // ("*": everyone it is addressed to, as when a group is created with its first members.)
  if (entry.system && !entry.group.empty() && (entry.member == user || entry.member == "*")) {
    const std::string key = user + '\0' + entry.group;
    if (Status s = entry.joined ? ctx_.kv.Put(kUserGroupsTable, key, "")
                                : ctx_.kv.Del(kUserGroupsTable, key);
        !s.ok())
      return s;
  }
  const InboxAppend a{{user}, entry};
  auto us = LoadUser(user);
  if (!us.ok()) return us.status();
  // The copy of a user's own message is for its other devices: if the sending device is the
  // only one we know, nobody needs it.
  if (a.entry.kind == InboxEntry::Kind::kMessage && !a.entry.system && a.entry.from == user &&
      std::all_of(us->devices.begin(), us->devices.end(),
                  [&](const DeviceState& d) { return d.id == a.entry.from_device; }))
    return Status::Ok();
  const uint64_t n = us->next_n++;
  if (Status s = ctx_.kv.Put(kInboxTable, InboxKey(user, n), EncodeRecord(a.entry)); !s.ok())
    return s;
  if (a.entry.expires_ms) {
    // Buckets are a fraction of the lifetime: a disappearing message with a short timer is
    // collected that much sooner after it is due.
    const int64_t life = a.entry.vanish_ms && a.entry.vanish_ms == a.entry.expires_ms
                             ? static_cast<int64_t>(a.entry.vanish_ms - a.entry.ts)
                             : ctx_.cfg.inbox_ttl_ms;
    const std::string key = ExpiryKey(ExpiryBucketEnd(a.entry.expires_ms, life), user);
    if (Status s = store::PutMarkOnce(ctx_.kv, kExpiryTable, key); !s.ok()) return s;
  }
  if (a.entry.kind == InboxEntry::Kind::kMessage && a.entry.from != user) {
    auto cs = LoadChat(user, a.entry.chat);
    if (!cs.ok()) return cs.status();
    if (a.entry.seq > cs->last_in_seq) {
      cs->last_in_seq = a.entry.seq;
      if (Status s = SaveChat(user, a.entry.chat, *cs); !s.ok()) return s;
    }
  }
  bool dirty = true;
  if (auto it = conns_.find(user); it != conns_.end())
    for (auto& c : it->second)
      if (Status s = Pump(user, c, *us, dirty, fx); !s.ok()) return s;
  return SaveUser(user, *us);
}

Status Inboxes::RestartPushes(const std::string& gateway, Effects& fx) {
  for (auto& [user, conns] : conns_) {
    bool any = false;
    for (auto& c : conns)
      if (c.dc.gateway == gateway) {
        c.Resend(0);  // Pump starts after the stored cursor
        any = true;
      }
    if (!any) continue;
    auto us = LoadUser(user);
    if (!us.ok()) return us.status();
    bool dirty = false;
    for (auto& c : conns)
      if (c.dc.gateway == gateway)
        if (Status s = Pump(user, c, *us, dirty, fx); !s.ok()) return s;
    if (dirty)
      if (Status s = SaveUser(user, *us); !s.ok()) return s;
  }
  return Status::Ok();
}

Status Inboxes::OnTick(Effects& fx) {
  const int64_t now = ctx_.clock.MonoMs();
  for (auto& [user, conns] : conns_) {
    for (auto& c : conns) {
      const bool timed_out = c.sent_upto > c.cursor && now - c.last_progress_ms >= c.rto_ms;
      if (!c.needs_pump && !timed_out) continue;
      auto us = LoadUser(user);
      if (!us.ok()) return us.status();
      DeviceState* d = us->Find(c.dc.device);
      if (!d) continue;
      if (!c.needs_pump && c.sent_upto <= d->cursor) continue;  // nothing outstanding
      if (c.sent_upto > d->cursor) {  // unacknowledged for too long: send again, back off
        stats_.resent += c.sent_upto - d->cursor;
        c.Resend(d->cursor);
        c.rto_ms = std::min(c.rto_ms * 2, ctx_.cfg.push_rto_max_ms);
      }
      bool dirty = false;
      if (Status s = Pump(user, c, *us, dirty, fx); !s.ok()) return s;
      if (dirty)
        if (Status s = SaveUser(user, *us); !s.ok()) return s;
    }
  }
  return Status::Ok();
}

Status Inboxes::ExpireDue(size_t max, Effects& fx) {
  const uint64_t now = static_cast<uint64_t>(ctx_.clock.WallMs());
  auto buckets = store::DueKeys(ctx_.kv, kExpiryTable, now, max);  // (bucket, user) marks
  if (!buckets.ok()) return buckets.status();
  for (const auto& key : *buckets) {
    const std::string user = key.substr(8);
    if (Status st = ctx_.kv.Del(kExpiryTable, key); !st.ok()) return st;
    auto us = LoadUser(user);
    if (!us.ok()) return us.status();
    // Disappearing timers differ per chat, so expiry is not in position order: look at every
    // entry (an inbox holds only what some device has not acknowledged yet), up to a bound;
    // if the bound is hit, the mark is put back for the next pass.
    const std::string prefix = user + '\0';
    size_t seen = 0;
    std::vector<std::pair<uint64_t, InboxEntry>> expired;
    Status bad = Status::Ok();
    Status s = ctx_.kv.Scan(kInboxTable, InboxKey(user, us->kept_from),
                            [&](std::string_view k, std::string_view v) {
                              uint64_t n = 0;
                              if (!PositionIn(k, prefix, n)) return false;
                              InboxEntry e;
                              if (!DecodeRecord(v, e)) {
                                bad = Status(Code::kInvalid, "corrupt inbox entry");
                                return false;
                              }
                              ++seen;
                              if (e.expires_ms != 0 && e.expires_ms <= now)
                                expired.emplace_back(n, std::move(e));
                              return expired.size() < max && seen < kExpiryScanLimit;
                            });
    if (!s.ok()) return s;
    if (!bad.ok()) return bad;
    for (const auto& [n, e] : expired) {
      if (Status st = ctx_.kv.Del(kInboxTable, InboxKey(user, n)); !st.ok()) return st;
      // No device of the recipient ever got it: tell the sender (not for a disappearing
      // message: it vanished as meant to).
      if (e.kind == InboxEntry::Kind::kMessage && e.from != user && n > us->max_acked &&
          e.vanish_ms == 0)
        if (Status st = SendReceipt(e.from, user, codec::ReceiptKind::kExpired, e.seq, fx);
            !st.ok())
          return st;
    }
    if (expired.size() >= max || seen >= kExpiryScanLimit)  // not done: look again next pass
      if (Status st = ctx_.kv.Put(kExpiryTable, key, ""); !st.ok()) return st;
  }
  return Status::Ok();
}

void Inboxes::OnCommitFailed() {
  // Pushes from the failed batch were never sent; resend from each device's stored cursor.
  for (auto& [user, conns] : conns_)
    for (auto& c : conns) {
      c.Resend(0);
      c.needs_pump = true;
    }
}

}  // namespace meshchat::nodes
