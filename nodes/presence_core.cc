#include "nodes/presence_core.h"

#include "nodes/records.h"

namespace meshchat::nodes {
namespace {
constexpr std::string_view kLastSeenTable = "plast";  // user -> [ms]
constexpr std::string_view kPrivacyTable = "ppriv";   // user -> [mode]
constexpr std::string_view kContactTable = "pcont";   // user \0 peer -> ""
}  // namespace

using codec::MeshType;
using codec::PrivacyMode;

PresenceCore::PresenceCore(PresenceConfig cfg, const Clock& clock, store::KvStore& kv)
    : cfg_(std::move(cfg)), clock_(clock), kv_(kv) {}

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
  if (u.watched_until_mono < mono) return;  // nobody watches: nothing to fan out
  const codec::Presence now = StateOf(user);
  if (now.online == u.published_online && now.last_seen == u.published_seen) return;
  // Throttled: going online is news, a moving "last seen" while online is not.
  if (now.online == u.published_online && now.online) return;
  if (mono - u.last_publish_mono < cfg_.throttle_ms) return;  // OnTick publishes it later
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

void PresenceCore::OnEnvelope(const std::string& /*from*/, codec::Envelope&& env, Effects& fx,
                              std::vector<Publication>& pub) {
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
    case MeshType::kPrivacy:
      if (env.arg <= 2) (void)kv_.Put(kPrivacyTable, env.key, EncodeUints({env.arg}));
      return;
    case MeshType::kContact:
      if (codec::IsValidId(env.body)) (void)kv_.Put(kContactTable, env.key + '\0' + env.body, "");
      return;
    default: return;
  }
}

void PresenceCore::OnTick(std::vector<Publication>& pub) {
  const int64_t mono = clock_.MonoMs();
  for (auto& [user, u] : users_)
    if (u.watched_until_mono >= mono) MaybePublish(user, u, pub);
}

Status PresenceCore::Flush() {
  std::vector<User*> written;
  Status s = Status::Ok();
  for (auto& [user, u] : users_) {
    if (!u.dirty) continue;
    s = kv_.Put(kLastSeenTable, user, EncodeUints({u.last_seen}));
    if (!s.ok()) break;
    u.dirty = false;
    written.push_back(&u);
  }
  if (s.ok()) s = kv_.Commit();
  if (!s.ok()) {  // try again at the next flush
    kv_.Rollback();
    for (User* u : written) u->dirty = true;
  }
  return s;
}

}  // namespace meshchat::nodes
