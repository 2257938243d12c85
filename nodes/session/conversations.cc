#include "nodes/session/conversations.h"

#include <algorithm>

#include "codec/history_messages.h"
#include "codec/media_messages.h"
#include "nodes/shard/records.h"

namespace meshchat::nodes {
namespace {
constexpr std::string_view kConvTable = "conv";
constexpr std::string_view kDedupTable = "dedup";
// be64(bucket end) + conversation: one mark per conversation per time bucket (1/32 of the
// retention) rather than one index entry per message.
constexpr std::string_view kDedupExpiryTable = "dedup_exp";
// Permanent chats' history: conversation + '\0' + be64(seq) -> InboxEntry, and the
// disappearing ones' expiry index: be64(vanish time) + that key -> "".
constexpr std::string_view kLogTable = "clog";
constexpr std::string_view kLogExpiryTable = "clog_exp";

}  // namespace

Result<Conversations::Settings> Conversations::LoadSettings(const std::string& conv) {
  Settings st;
  auto c = ctx_.kv.Get(kConvTable, conv);
  if (!c.ok()) {
    if (c.status().code() != Code::kNotFound) return c.status();
    return st;
  }
  std::vector<uint64_t> v;
  if (DecodeUints(*c, v, 3)) {
    st = Settings{v[0], v[1] == 1, v[2]};
  } else if (DecodeUints(*c, v, 1)) {  // written before chats had modes
    st.next_seq = v[0];
  } else {
    return Status(Code::kInvalid, "corrupt conversation " + conv);
  }
  return st;
}

Status Conversations::OnDeliver(const std::string& from, const codec::Envelope& env, Effects& fx) {
  // A message (send) or a mode change (chat_mode): both take the chat's next sequence.
  codec::Send send;
  codec::ChatMode mode;
  const bool is_mode = env.ftype == static_cast<uint8_t>(codec::FrameType::kChatMode);
  if (is_mode ? codec::Decode(env.body, mode) != codec::DecodeStatus::kOk
              : codec::Decode(env.body, send) != codec::DecodeStatus::kOk)
    return Status::Ok();  // the sender's shard validated it; a corrupt one is dropped
  const std::string& to = is_mode ? mode.to : send.to;
  const uint64_t cid = is_mode ? mode.cid : send.cid;
  const std::string& sender = env.stamp.user;
  const std::string dedup_key = env.key + '\0' + sender + '\0' + store::BigEndian64(cid);
  auto reply = [&](uint64_t seq, uint64_t ts) {
    codec::Envelope r;
    r.type = codec::MeshType::kDeliverResult;
    r.req = env.req;
    r.key = sender;
    r.stamp = env.stamp;
    r.body = codec::Encode(codec::Sent{cid, to, seq, ts});
    fx.mesh.push_back({from, std::move(r), 0});
  };

  // A retry of a message we already have: same sequence, no second delivery.
  std::vector<uint64_t> v;
  if (auto d = ctx_.kv.Get(kDedupTable, dedup_key); d.ok() && DecodeUints(*d, v, 2)) {
    reply(v[0], v[1]);
    return Status::Ok();
  } else if (!d.ok() && d.status().code() != Code::kNotFound) {
    return d.status();
  }

  auto st = LoadSettings(env.key);
  if (!st.ok()) return st.status();
  const uint64_t seq = st->next_seq;
  const uint64_t ts = static_cast<uint64_t>(ctx_.clock.WallMs());
  st->next_seq = seq + 1;
  if (is_mode) {  // applies from this message on
    codec::ChatRetention r = codec::ChatRetention::kTemporary;
    codec::ParseRetention(mode.mode, r);
    st->permanent = r == codec::ChatRetention::kPermanent;
    st->timer_s = mode.timer;
  }
  if (Status s = ctx_.kv.Put(kConvTable, env.key,
                             EncodeUints({st->next_seq, st->permanent ? 1u : 0u, st->timer_s}));
      !s.ok())
    return s;
  if (seq == 1)  // a new chat: each is now the other's contact (presence privacy)
    for (const auto& [user, peer] : {std::pair{sender, to}, std::pair{to, sender}}) {
      const std::string& node = ctx_.presence_owner(user);
      if (node.empty()) continue;
      if (Status s = ctx_.channel.Append(
              node, EncodeRecord(PresenceSetting{user, PresenceSetting::kNoMode, peer}), fx);
          !s.ok())
        return s;
    }
  if (Status s = ctx_.kv.Put(kDedupTable, dedup_key, EncodeUints({seq, ts})); !s.ok()) return s;
  const uint64_t forget_at = ts + static_cast<uint64_t>(ctx_.cfg.inbox_ttl_ms);
  const std::string mark =
      store::BigEndian64(ExpiryBucketEnd(forget_at, ctx_.cfg.inbox_ttl_ms)) + env.key;
  if (Status s = store::PutMarkOnce(ctx_.kv, kDedupExpiryTable, mark); !s.ok()) return s;

  InboxEntry e;
  e.kind = InboxEntry::Kind::kMessage;
  e.from = sender;
  e.from_device = env.stamp.device;
  e.seq = seq;
  e.cid = cid;
  e.ts = ts;
  e.expires_ms = ts + static_cast<uint64_t>(ctx_.cfg.inbox_ttl_ms);
  if (st->timer_s > 0 && !is_mode) {  // disappearing: gone everywhere after the timer
    // (announcements of the chat's settings stay, so everyone can see a timer is on)
    e.vanish_ms = ts + st->timer_s * 1000;
    e.expires_ms = std::min(e.expires_ms, e.vanish_ms);
  }
  if (is_mode) {
    e.system = true;
    e.body = sender + " made this chat " + (st->permanent ? "permanent" : "temporary") +
             (st->timer_s ? "; messages disappear after " + std::to_string(st->timer_s) + " s"
                          : "; disappearing messages off");
  } else {
    e.body = std::move(send.body);
    if (send.media) {
      e.media = codec::Encode(*send.media);
      // The media's owner keeps it for as long as this message may be seen, reliably.
      const std::string& node = ctx_.media_owner(codec::HexOf(send.media->id));
      if (!node.empty())
        if (Status s = ctx_.channel.Append(
                node,
                EncodeRecord(MediaRefRecord{
                    send.media->id, env.key,
                    e.vanish_ms ? e.vanish_ms
                                : (st->permanent ? MediaRefRecord::kKeptForever : 0)}),
                fx);
            !s.ok())
          return s;
    }
  }
  if (st->permanent)  // the chat keeps its history: log it here, where the sequence is
    if (Status s = Log(env.key, e); !s.ok()) return s;
  // The recipient's copy, then the sender's own (its other devices see what it sent).
  InboxAppend to_recipient{{to}, e};
  to_recipient.entry.chat = sender;
  if (Status s = ctx_.channel.Append(ctx_.owner(to), EncodeRecord(to_recipient), fx); !s.ok())
    return s;
  if (to != sender) {
    InboxAppend own{{sender}, std::move(e)};
    own.entry.chat = to;
    if (Status s = ctx_.channel.Append(ctx_.owner(sender), EncodeRecord(own), fx); !s.ok())
      return s;
  }
  reply(seq, ts);
  return Status::Ok();
}

Status Conversations::Log(const std::string& conv, const InboxEntry& e) {
  const std::string key = conv + '\0' + store::BigEndian64(e.seq);
  if (Status s = ctx_.kv.Put(kLogTable, key, EncodeRecord(e)); !s.ok()) return s;
  if (e.vanish_ms == 0) return Status::Ok();
  return ctx_.kv.Put(kLogExpiryTable, store::BigEndian64(e.vanish_ms) + key, "");
}

Status Conversations::ExpireLog(size_t max) {
  const uint64_t now = static_cast<uint64_t>(ctx_.clock.WallMs());
  auto due = store::DueKeys(ctx_.kv, kLogExpiryTable, now, max);
  if (!due.ok()) return due.status();
  for (const auto& mark : *due) {
    if (Status st = ctx_.kv.Del(kLogTable, mark.substr(8)); !st.ok()) return st;
    if (Status st = ctx_.kv.Del(kLogExpiryTable, mark); !st.ok()) return st;
  }
  return Status::Ok();
}

Status Conversations::OnHistory(const codec::Envelope& env, Effects& fx) {
  codec::History h;
  if (codec::Decode(env.body, h) != codec::DecodeStatus::kOk) return Status::Ok();
  const std::string& user = env.stamp.user;
  // Only the two participants: "a|b" is this conversation exactly when it is theirs.
  if (ConversationId(user, h.chat) != env.key) return Status::Ok();
  auto st = LoadSettings(env.key);
  if (!st.ok()) return st.status();
  codec::HistoryPage page;
  page.rid = h.rid;
  page.chat = h.chat;
  page.mode = st->permanent ? "permanent" : "temporary";
  page.timer = st->timer_s;
  const uint64_t limit = codec::HistoryPageSize(h.limit);
  const std::string prefix = env.key + '\0';
  const uint64_t now = static_cast<uint64_t>(ctx_.clock.WallMs());
  Status bad = Status::Ok();
  // Entries in [lo, hi), oldest first, skipping disappeared ones not yet collected.
  auto scan = [&](uint64_t lo, uint64_t hi, std::vector<InboxEntry>& out, size_t max) {
    return ctx_.kv.Scan(kLogTable, prefix + store::BigEndian64(lo),
                        [&](std::string_view k, std::string_view v) {
                          if (k.substr(0, prefix.size()) != prefix) return false;
                          if (store::ReadBigEndian64(k.substr(prefix.size())) >= hi) return false;
                          InboxEntry e;
                          if (!DecodeRecord(v, e)) {
                            bad = Status(Code::kInvalid, "corrupt chat log");
                            return false;
                          }
                          if (e.vanish_ms == 0 || e.vanish_ms > now) out.push_back(std::move(e));
                          return out.size() < max;
                        });
  };
  std::vector<InboxEntry> got;
  if (h.after) {  // forwards from `after` (0: from the oldest)
    if (Status s = scan(*h.after + 1, st->next_seq, got, limit + 1); !s.ok()) return s;
    page.more = got.size() > limit;
    if (page.more) got.pop_back();
  } else {  // backwards from `before`: windows of `limit` sequences until the page is full
    uint64_t hi = h.before == 0 || h.before > st->next_seq ? st->next_seq : h.before;
    for (int window = 0; window < 16 && hi > 1 && got.size() < limit; ++window) {
      const uint64_t lo = hi > limit ? hi - limit : 1;
      std::vector<InboxEntry> part;
      if (Status s = scan(lo, hi, part, limit); !s.ok()) return s;
      part.insert(part.end(), std::make_move_iterator(got.begin()),
                  std::make_move_iterator(got.end()));
      got = std::move(part);
      hi = lo;
    }
    if (got.size() > limit) got.erase(got.begin(), got.end() - static_cast<ptrdiff_t>(limit));
    page.more = !got.empty() ? got.front().seq > 1 : hi > 1;
    if (page.more && !got.empty()) {  // anything logged before the oldest on this page?
      std::vector<InboxEntry> older;
      if (Status s = scan(1, got.front().seq, older, 1); !s.ok()) return s;
      page.more = !older.empty();
    }
  }
  if (!bad.ok()) return bad;
  for (auto& e : got) {
    e.chat = h.chat;
    page.messages.push_back(PushOf(0, e));
  }
  ctx_.ToClient(env.stamp, static_cast<uint8_t>(codec::FrameType::kHistoryPage),
                codec::Encode(page), fx);
  return Status::Ok();
}

Status Conversations::ExpireDedup(size_t max) {
  const uint64_t now = static_cast<uint64_t>(ctx_.clock.WallMs());
  const uint64_t ttl = static_cast<uint64_t>(ctx_.cfg.inbox_ttl_ms);
  auto marks = store::DueKeys(ctx_.kv, kDedupExpiryTable, now, max);
  if (!marks.ok()) return marks.status();
  for (const auto& mark : *marks) {
    const std::string prefix = mark.substr(8) + '\0';  // every sender in the conversation
    std::vector<std::string> old;
    Status s = ctx_.kv.Scan(kDedupTable, prefix, [&](std::string_view k, std::string_view v) {
      if (k.substr(0, prefix.size()) != prefix) return false;
      std::vector<uint64_t> rec;
      if (!DecodeUints(v, rec, 2) || rec[1] + ttl <= now) old.emplace_back(k);
      return true;
    });
    if (!s.ok()) return s;
    for (const auto& k : old)
      if (Status st = ctx_.kv.Del(kDedupTable, k); !st.ok()) return st;
    if (Status st = ctx_.kv.Del(kDedupExpiryTable, mark); !st.ok()) return st;
  }
  return Status::Ok();
}

}  // namespace meshchat::nodes
