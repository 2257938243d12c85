#include "nodes/shard/shard_election.h"

#include <algorithm>

namespace meshchat::nodes {

std::vector<std::string> SplitIds(const std::string& joined) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= joined.size() && !joined.empty()) {
    const size_t comma = joined.find(',', at);
    const size_t end = comma == std::string::npos ? joined.size() : comma;
    if (end > at) out.push_back(joined.substr(at, end - at));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

std::string JoinIds(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : ",") + id;
  return out;
}

ShardElection::ShardElection(ElectionConfig cfg)
    : cfg_(std::move(cfg)),
      primary_key_(cfg_.prefix + "shard/" + cfg_.shard + "/primary"),
      in_sync_key_(cfg_.prefix + "shard/" + cfg_.shard + "/in-sync") {}

bool ShardElection::Holding(int64_t now_ms) const {
  return held_term_ != 0 && lease_ != 0 &&
         now_ms - lease_ok_ms_ < cfg_.ttl_s * 1000 - cfg_.margin_ms;
}

ElectionView ShardElection::Step(store::EtcdClient& etcd, int64_t now_ms) {
  ElectionView v;
  // The lease: renewed while holding (and now and then otherwise), or granted afresh.
  if (lease_ == 0) {
    auto l = etcd.GrantLease(cfg_.ttl_s);
    if (!l.ok()) return v;
    lease_ = *l;
    lease_ok_ms_ = last_renew_ms_ = now_ms;
  } else if (now_ms - last_renew_ms_ >= cfg_.keepalive_ms) {
    last_renew_ms_ = now_ms;
    auto k = etcd.KeepAlive(lease_);
    if (k.ok()) {
      lease_ok_ms_ = now_ms;
    } else if (k.status().code() == Code::kNotFound) {
      lease_ = 0;  // expired: whatever it held is gone
      held_term_ = 0;
    }
  }
  if (!Holding(now_ms)) held_term_ = 0;  // unconfirmed for too long: no longer primary
  auto key = etcd.Get(primary_key_);
  auto isr = etcd.Get(in_sync_key_);
  if (!key.ok() || !isr.ok()) {
    // etcd unreachable: a holder stays primary while its last renewal keeps it safe (one
    // failed round is no reason to fail over), then not.
    v.self_primary = Holding(now_ms);
    if (v.self_primary) {
      v.primary = cfg_.self;
      v.term = held_term_;
    }
    return v;
  }
  v.reachable = true;
  if (isr->has_value()) v.in_sync = SplitIds((*isr)->value);
  if (key->has_value()) {
    const auto& k = **key;
    v.primary = k.value;
    v.term = k.create_revision;
    last_primary_ = k.value;
    v.self_primary = k.value == cfg_.self && k.lease == lease_ && held_term_ == k.create_revision &&
                     Holding(now_ms);
    return v;
  }
  const bool named = std::find(v.in_sync.begin(), v.in_sync.end(), cfg_.self) != v.in_sync.end();
  const bool eligible = isr->has_value() ? named : cfg_.head;
  if (!eligible || lease_ == 0) return v;
  auto won = etcd.CreateIfAbsent(primary_key_, cfg_.self, lease_);
  if (!won.ok()) return v;
  v.primary = won->second.value;
  v.term = won->second.create_revision;
  if (!won->first) return v;
  held_term_ = v.term;
  // The new in-sync set: the old one without the primary that is gone (it rejoins as a
  // replica and is added back once caught up), with this member.
  std::vector<std::string> next;
  for (const auto& id : v.in_sync)
    if (id != last_primary_ && id != cfg_.self) next.push_back(id);
  next.insert(next.begin(), cfg_.self);
  auto put = etcd.PutIfHeld(in_sync_key_, JoinIds(next), primary_key_, held_term_);
  if (put.ok() && *put) v.in_sync = next;
  last_primary_ = cfg_.self;
  v.self_primary = Holding(now_ms);
  return v;
}

Result<bool> ShardElection::SetInSync(store::EtcdClient& etcd,
                                      const std::vector<std::string>& members) {
  if (held_term_ == 0) return false;
  return etcd.PutIfHeld(in_sync_key_, JoinIds(members), primary_key_, held_term_);
}

void ShardElection::Resign(store::EtcdClient& etcd) {
  if (lease_ != 0) (void)etcd.Revoke(lease_);
  lease_ = 0;
  held_term_ = 0;
}

}  // namespace meshchat::nodes
