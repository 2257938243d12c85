#include "nodes/presence/presence_core.h"

#include <spdlog/spdlog.h>

#include "nodes/shard/records.h"

namespace meshchat::nodes {
namespace {
constexpr std::string_view kLastSeenTable = "plast";  // user -> [ms]
constexpr std::string_view kPrivacyTable = "ppriv";   // user -> [mode]
constexpr std::string_view kContactTable = "pcont";   // user \0 peer -> ""
std::vector<HandoverTable> PresenceTables() {
  return {{kLastSeenTable}, {kPrivacyTable}, {kContactTable}};
}
}  // namespace

using codec::MeshType;
using codec::PrivacyMode;

PresenceCore::PresenceCore(PresenceConfig cfg, const Clock& clock, store::KvStore& kv,
                           OwnerFn owner, PeerUpFn peer_up, ChannelConfig channel_cfg)
    : cfg_(std::move(cfg)),
      clock_(clock),
      kv_(kv),
      owner_(std::move(owner)),
      channel_(
          channel_cfg, kv, clock,
          peer_up ? std::move(peer_up) : [](const std::string&) { return true; }),
      handover_(cfg_.node_id, PresenceTables(), kv, channel_) {}

Status PresenceCore::Load() {
  if (Status s = channel_.Load(); !s.ok()) return s;
  return handover_.Load();
}

bool PresenceCore::Ours(const std::string& key, uint64_t epoch) const {
  if (epoch > cfg_.epoch) return false;  // routed with a newer map than ours
  if (owner_ && owner_(key) != cfg_.node_id) return false;
  return handover_.Ready(key);
}

PresenceCore::User& PresenceCore::Get(const std::string& user) {
  User& u = users_[user];
  if (!u.loaded) {
    u.loaded = true;
    std::vector<uint64_t> v;
    if (auto r = kv_.Get(kLastSeenTable, user); r.ok() && DecodeUints(*r, v, 1))
      u.last_seen = std::max(u.last_seen, v[0]);
    u.published_seen = u.last_seen;
  }
  return u;
}

codec::PrivacyMode PresenceCore::ModeOf(const std::string& user) {
  std::vector<uint64_t> v;
  if (auto r = kv_.Get(kPrivacyTable, user); r.ok() && DecodeUints(*r, v, 1) && v[0] <= 2)
    return static_cast<PrivacyMode>(v[0]);
  return PrivacyMode::kEveryone;
}

bool PresenceCore::IsContact(const std::string& user, const std::string& peer) {
  return kv_.Get(kContactTable, user + '\0' + peer).ok();
}

bool PresenceCore::Visible(const std::string& target, const std::string& asker, bool asker_hides) {
  if (asker == target) return true;
  if (asker_hides) return false;  // who hides their own last seen sees no one's
  switch (ModeOf(target)) {
    case PrivacyMode::kEveryone: return true;
    case PrivacyMode::kContacts: return IsContact(target, asker);
    case PrivacyMode::kNobody: return false;
  }
  return false;
}

codec::Presence PresenceCore::StateOf(const std::string& user) {
  User& u = Get(user);
  const uint64_t now = static_cast<uint64_t>(clock_.WallMs());
  const bool online = u.devices > 0 && u.last_seen + static_cast<uint64_t>(cfg_.online_ms) >= now;
  return codec::Presence{user, online, u.last_seen};
}

void PresenceCore::MaybePublish(const std::string& user, User& u, std::vector<Publication>& pub) {
  const int64_t mono = clock_.MonoMs();
  // Nobody watches: nothing to fan out. (Users that just moved here were watched at their old
  // owner, which we cannot know: they count as watched for a while.)
  if (u.watched_until_mono < mono && !(mono < moved_in_watch_until_ && handover_.MovedIn(user)))
    return;
  const codec::Presence now = StateOf(user);
  if (now.online == u.published_online && now.last_seen == u.published_seen) return;
  // Throttled: going online is news, a moving "last seen" while online is not.
  if (now.online == u.published_online && now.online) return;
  // Under load (level 1 and up) a user's changes go out at most every 10 s: the ones between
  // are shed, the newest state always follows (OnTick).
  const int64_t throttle = load_.AtLeast(LoadLevel::kShedHints)
                               ? std::max<int64_t>(cfg_.throttle_ms, 10'000)
                               : cfg_.throttle_ms;
  if (mono - u.last_publish_mono < throttle) {
    if (!u.held) ++shed_.presence;
    u.held = true;
    return;  // OnTick publishes it later
  }
  u.held = false;
  u.published_online = now.online;
  u.published_seen = now.last_seen;
  u.last_publish_mono = mono;
  pub.push_back({user, codec::Encode(now)});
}

void PresenceCore::Answer(const codec::Envelope& env, Effects& fx) {
  codec::Presence p = StateOf(env.key);
  if (!Visible(env.key, env.stamp.user, env.arg != 0))
    p = codec::Presence{env.key, false, 0};  // looks exactly like a user never seen
  fx.ToClient(env.stamp, static_cast<uint8_t>(codec::FrameType::kPresence), codec::Encode(p));
}

void PresenceCore::OnEnvelope(const std::string& from, codec::Envelope&& env, Effects& fx) {
  OnEnvelope(from, std::move(env), fx, pending_pub_);
}

void PresenceCore::OnEnvelope(const std::string& from, codec::Envelope&& env, Effects& fx,
                              std::vector<Publication>& pub) {
  switch (env.type) {
    case MeshType::kChanMsg:
      Fail(channel_.OnMessage(from, env, [&](const std::string& f, std::string_view p) {
        return HandleChannel(f, p);
      }));
      return StepHandover(fx);
    case MeshType::kChanAck: return Fail(channel_.OnAck(from, env, fx));
    default: break;
  }
  if (!Ours(env.key, env.epoch)) {
    // Another node's user, or one moving here: a query is told to retry; updates are dropped
    // (activity is soft state the next report restores; settings come over channels).
    if (env.type == MeshType::kPresenceQuery || env.type == MeshType::kPresenceWatch)
      fx.ToClient(env.stamp, static_cast<uint8_t>(codec::FrameType::kError),
                  codec::Encode(codec::Error{codec::ErrorCode::kServiceUnavailable,
                                             "presence moving to another node; retry", std::nullopt,
                                             false}));
    return;
  }
  switch (env.type) {
    case MeshType::kActivity: {
      User& u = Get(env.key);
      std::vector<uint64_t> devices;
      if (DecodeUints(env.body, devices, 1)) u.devices = static_cast<int>(devices[0]);
      if (env.arg > u.last_seen) {
        u.last_seen = env.arg;
        u.dirty = true;
      }
      MaybePublish(env.key, u, pub);
      return;
    }
    case MeshType::kPresenceQuery: return Answer(env, fx);
    case MeshType::kPresenceWatch: {
      Answer(env, fx);
      if (!Visible(env.key, env.stamp.user, env.arg != 0)) return;  // no watch: nothing leaks
      User& u = Get(env.key);
      u.watched_until_mono = clock_.MonoMs() + cfg_.watch_ttl_ms;
      const codec::Presence now = StateOf(env.key);
      u.published_online = now.online;  // the watcher was just told the current state
      u.published_seen = now.last_seen;
      codec::Envelope ok;
      ok.type = MeshType::kWatchOk;
      ok.req = env.req;
      ok.key = env.key;
      ok.stamp = env.stamp;
      fx.mesh.push_back({env.stamp.gateway, std::move(ok), 0});
      return;
    }
    case MeshType::kPrivacy:  // from session nodes of an older version (now: channels)
      return Fail(ApplySetting(EncodeRecord(PresenceSetting{env.key, env.arg, ""})));
    case MeshType::kContact:
      return Fail(ApplySetting(EncodeRecord(PresenceSetting{env.key, 255, env.body})));
    default: return;
  }
}

Status PresenceCore::ApplySetting(std::string_view payload) {
  PresenceSetting p;
  if (!DecodeRecord(payload, p)) {
    spdlog::error("undecodable presence setting skipped");
    return Status::Ok();
  }
  if (p.mode <= 2)
    if (Status s = kv_.Put(kPrivacyTable, p.user, EncodeUints({p.mode})); !s.ok()) return s;
  if (codec::IsValidId(p.contact)) return kv_.Put(kContactTable, p.user + '\0' + p.contact, "");
  return Status::Ok();
}

Status PresenceCore::HandleChannel(const std::string& from, std::string_view payload) {
  auto handled = handover_.OnPayload(from, payload);
  if (!handled.ok() || *handled) return handled.status();
  PresenceSetting p;  // a user whose rows are not here (yet) waits: see Handover::ApplyNow
  if (DecodeRecord(payload, p) &&
      !handover_.ApplyNow(p.user, !owner_ || owner_(p.user) == cfg_.node_id))
    return handover_.Stash(payload);
  return ApplySetting(payload);
}

void PresenceCore::StepHandover(Effects& fx) {
  if (!handover_.active()) return;
  auto ended = handover_.Step([&](std::string_view p) { return ApplySetting(p); }, fx);
  if (!ended.ok()) return Fail(ended.status());
  if (*ended) moved_in_watch_until_ = clock_.MonoMs() + cfg_.watch_ttl_ms;
}

Status PresenceCore::OnMapChanged(const MapChange& change, Effects& fx) {
  cfg_.epoch = change.epoch;
  auto began = handover_.TakeMap(change, fx);
  if (!began.ok() || !*began) return began.status();
  // Users moving away: their last seen goes with their rows (written now, shipped later),
  // and what we know of them in memory is theirs to rebuild.
  for (auto it = users_.begin(); it != users_.end();) {
    if (!handover_.MovingOut(it->first)) {
      ++it;
      continue;
    }
    if (it->second.dirty)
      if (Status s = kv_.Put(kLastSeenTable, it->first, EncodeUints({it->second.last_seen}));
          !s.ok())
        return s;
    it = users_.erase(it);
  }
  StepHandover(fx);
  return Status::Ok();
}

void PresenceCore::OnPeerUp(const std::string& node, bool, Effects& fx) {
  Fail(channel_.OnPeerUp(node, fx));
}

void PresenceCore::OnTick(Effects& fx) {
  Fail(channel_.OnTick(fx));
  StepHandover(fx);
  OnTick(pending_pub_);
  if (++ticks_ % 4 == 0) Fail(WriteLastSeen());  // once a second, one batch for all
}

Status PresenceCore::EndBatch(Effects& fx) {
  Status s = channel_.CommitBatch(batch_error_, fx);
  if (!s.ok()) OnStoreLost(fx);
  return s;
}

void PresenceCore::OnStoreLost(Effects& fx) {
  fx.Clear();
  channel_.OnCommitFailed();
  handover_.Reload();
  for (auto& [user, u] : users_) u.dirty = u.last_seen != 0;  // written again next time
}

void PresenceCore::OnTick(std::vector<Publication>& pub) {
  const int64_t mono = clock_.MonoMs();
  for (auto& [user, u] : users_)
    if (u.watched_until_mono >= mono) MaybePublish(user, u, pub);
}

Status PresenceCore::WriteLastSeen() {
  for (auto& [user, u] : users_) {
    if (!u.dirty) continue;
    if (Status s = kv_.Put(kLastSeenTable, user, EncodeUints({u.last_seen})); !s.ok()) return s;
    u.dirty = false;
  }
  return Status::Ok();
}

Status PresenceCore::Flush() {
  Status s = WriteLastSeen();
  if (s.ok()) s = kv_.Commit();
  if (!s.ok()) {  // try again at the next flush
    kv_.Rollback();
    for (auto& [user, u] : users_) u.dirty = u.last_seen != 0;
  }
  return s;
}

}  // namespace meshchat::nodes
