#include "nodes/shard/handover.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

namespace meshchat::nodes {
namespace {
constexpr std::string_view kStateTable = "hand";    // "state" -> HandoverState
constexpr std::string_view kMarkTable = "hmark";    // node -> [newest epoch it switched to]
constexpr std::string_view kDoneTable = "hdone";    // node -> [newest epoch it handed over]
constexpr std::string_view kStashTable = "hstash";  // be64(n) -> channel payload
constexpr std::string_view kStateKey = "state";
// Work per Step: rows looked at, bytes shipped per payload, stashed entries replayed. Bounded
// so that one loop turn stays short while traffic for the other keys goes on.
constexpr size_t kExaminePerStep = 8192;
constexpr size_t kPayloadBytes = 256 * 1024;
constexpr size_t kStepBytes = 8 << 20;  // with what row hooks add (media bytes)
constexpr size_t kReplayPerStep = 1024;

Result<uint64_t> ReadEpoch(store::KvStore& kv, std::string_view table, const std::string& node) {
  auto v = kv.Get(table, node);
  if (!v.ok()) return v.status().code() == Code::kNotFound ? Result<uint64_t>(0) : v.status();
  std::vector<uint64_t> e;
  if (!DecodeUints(*v, e, 1)) return Status(Code::kInvalid, "corrupt hand-over mark");
  return e[0];
}

Status RaiseEpoch(store::KvStore& kv, std::string_view table, const std::string& node,
                  uint64_t epoch) {
  auto have = ReadEpoch(kv, table, node);
  if (!have.ok()) return have.status();
  return *have >= epoch ? Status::Ok() : kv.Put(table, node, EncodeUints({epoch}));
}
}  // namespace

MapChange MapChangeFor(const router::ClusterMap& prev, const router::ClusterMap& next,
                       const std::string& self, router::Role role) {
  auto owners = [](const router::ClusterMap& m, router::Role r) {
    auto v = m.IdsWithRole(r);
    std::sort(v.begin(), v.end());
    return v;
  };
  using router::Role;
  MapChange c;
  c.epoch = next.epoch;
  for (Role r : {Role::kSession, Role::kGroup, Role::kPresence, Role::kMedia})
    c.keyed_rings_changed |= owners(prev, r) != owners(next, r);
  for (const auto& n : prev.nodes) {  // leaving nodes too: they run and send until removed
    if (n.id == self || n.role == Role::kGateway) continue;
    if (n.role == Role::kSession || n.role == Role::kGroup) c.senders.push_back(n.id);
    c.marker_to.push_back(n.id);
  }
  c.old_owners = owners(prev, role);
  c.new_owners = owners(next, role);
  c.own_ring_changed = c.old_owners != c.new_owners;
  return c;
}

std::string_view RoutingKeyOf(std::string_view key, size_t time_prefix) {
  if (key.size() < time_prefix) return {};
  key.remove_prefix(time_prefix);
  return key.substr(0, key.find('\0'));
}

Handover::Handover(std::string self, std::vector<HandoverTable> tables, store::KvStore& kv,
                   ReliableChannel& channel)
    : self_(std::move(self)), tables_(std::move(tables)), kv_(kv), channel_(channel) {}

void Handover::Reload() {
  const bool fresh = fresh_;
  if (Status s = Load(); !s.ok()) spdlog::error("hand-over state unreadable: {}", s.ToString());
  fresh_ = fresh;  // what start-up saw
}

Status Handover::Load() {
  fresh_ = false;
  st_ = HandoverState{};
  auto v = kv_.Get(kStateTable, kStateKey);
  if (!v.ok()) {
    if (v.status().code() != Code::kNotFound) return v.status();
    // Nothing is written here: a node joining stores its state when it begins (in the same
    // batch), so a crash before that leaves the store fresh and the join starts over.
    fresh_ = true;
  } else if (!DecodeRecord(*v, st_)) {
    return {Code::kInvalid, "corrupt hand-over state"};
  }
  old_ring_ = router::HashRing(st_.old_ring);
  new_ring_ = router::HashRing(st_.new_ring);
  // The stash's bounds: its first and last keys.
  stash_first_ = stash_next_ = 1;
  Status s = kv_.Scan(kStashTable, "", [&](std::string_view k, std::string_view) {
    if (k.size() == 8) stash_first_ = store::ReadBigEndian64(k);
    return false;
  });
  if (!s.ok()) return s;
  if (auto last = kv_.LastKeyWithPrefix(kStashTable, ""); last.ok() && last->size() == 8)
    stash_next_ = store::ReadBigEndian64(*last) + 1;
  else
    stash_first_ = stash_next_;
  dones_in_ = !st_.active || DonesIn();
  return Status::Ok();
}

Status Handover::Save() {
  return kv_.Put(kStateTable, kStateKey, EncodeRecord(st_));
}

Status Handover::Begin(uint64_t epoch, std::vector<std::string> old_ring,
                       std::vector<std::string> new_ring, std::vector<std::string> senders) {
  if (st_.active)
    return {Code::kInvalid, "hand-over of epoch " + std::to_string(st_.epoch) + " still running"};
  st_ = HandoverState{};
  st_.epoch = epoch;
  st_.active = true;
  st_.old_ring = std::move(old_ring);
  st_.new_ring = std::move(new_ring);
  st_.senders = std::move(senders);
  old_ring_ = router::HashRing(st_.old_ring);
  new_ring_ = router::HashRing(st_.new_ring);
  st_.shipped = !IsOldOwner();  // nothing of ours moves if we owned nothing
  dones_in_ = DonesIn();
  spdlog::info("hand-over to epoch {} begins: {} -> {} owners{}", epoch, st_.old_ring.size(),
               st_.new_ring.size(), IsOldOwner() ? ", shipping our moved keys" : "");
  return Save();
}

Result<bool> Handover::TakeMap(const MapChange& change, Effects& fx) {
  if (change.keyed_rings_changed)
    for (const auto& node : change.marker_to)
      if (Status s = channel_.Append(node, EncodeRecord(HandoverMarker{change.epoch}), fx); !s.ok())
        return s;
  if (!change.own_ring_changed) return false;
  if (Status s = Begin(change.epoch, change.old_owners, change.new_owners, change.senders); !s.ok())
    return s;
  return true;
}

bool Handover::IsOldOwner() const {
  return std::find(st_.old_ring.begin(), st_.old_ring.end(), self_) != st_.old_ring.end();
}

bool Handover::Ready(std::string_view key) const {
  if (!st_.active || (dones_in_ && stash_first_ >= stash_next_)) return true;
  if (new_ring_.empty() || new_ring_.Owner(key) != self_) return true;  // not moving in
  return !old_ring_.empty() && old_ring_.Owner(key) == self_;           // stays with us
}

bool Handover::MovingOut(std::string_view key) const {
  return st_.active && !old_ring_.empty() && old_ring_.Owner(key) == self_ &&
         (new_ring_.empty() || new_ring_.Owner(key) != self_);
}

bool Handover::MarkersIn() const {
  for (const auto& node : st_.senders) {
    auto e = ReadEpoch(kv_, kMarkTable, node);
    if (!e.ok() || *e < st_.epoch) return false;
  }
  return true;
}

bool Handover::DonesIn() const {
  // A node that owns nothing in the new map (leaving) receives nothing: no done to wait for.
  if (std::find(st_.new_ring.begin(), st_.new_ring.end(), self_) == st_.new_ring.end()) return true;
  for (const auto& node : st_.old_ring) {
    if (node == self_) continue;
    auto e = ReadEpoch(kv_, kDoneTable, node);
    if (!e.ok() || *e < st_.epoch) return false;
  }
  return true;
}

Result<bool> Handover::OnPayload(const std::string& from, std::string_view payload) {
  switch (KindOf(payload)) {
    case PayloadKind::kHandoverMarker: {
      HandoverMarker m;
      if (!DecodeRecord(payload, m)) break;
      if (Status s = RaiseEpoch(kv_, kMarkTable, from, m.epoch); !s.ok()) return s;
      return true;
    }
    case PayloadKind::kHandoverDone: {
      HandoverDone d;
      if (!DecodeRecord(payload, d)) break;
      if (Status s = RaiseEpoch(kv_, kDoneTable, from, d.epoch); !s.ok()) return s;
      if (st_.active) dones_in_ = DonesIn();
      spdlog::info("{} handed over its keys (epoch {})", from, d.epoch);
      return true;
    }
    case PayloadKind::kHandoverRows: {
      HandoverRows r;
      if (!DecodeRecord(payload, r)) break;
      auto known = std::find_if(tables_.begin(), tables_.end(),
                                [&](const HandoverTable& t) { return t.name == r.table; });
      if (known == tables_.end()) {
        spdlog::error("hand-over rows for unknown table '{}' from {} skipped", r.table, from);
        return true;
      }
      for (const auto& [k, v] : r.rows) {
        if (Status s = kv_.Put(known->name, k, v); !s.ok()) return s;
        if (hooks_.in)
          if (Status s = hooks_.in(known->name, k, v); !s.ok()) return s;
      }
      return true;
    }
    default: return false;
  }
  // A payload we cannot read would block the channel forever: skip it, loudly.
  spdlog::error("undecodable hand-over payload from {} skipped", from);
  return true;
}

std::string Handover::RoutingKey(const HandoverTable& t, std::string_view key) const {
  return t.key_of ? t.key_of(key) : std::string(RoutingKeyOf(key, t.time_prefix));
}

Status Handover::Stash(std::string_view payload) {
  return kv_.Put(kStashTable, store::BigEndian64(stash_next_++), payload);
}

Status Handover::ShipChunk(Effects& fx, bool& finished) {
  finished = false;
  if (st_.table >= tables_.size()) {
    finished = true;
    return Status::Ok();
  }
  const HandoverTable& t = tables_[st_.table];
  std::map<std::string, std::vector<HandoverRows>> out;  // by new owner
  std::map<std::string, size_t> bytes;
  struct Moved {
    std::string key, value;
    const std::string* dest;
  };
  std::vector<Moved> moved;
  size_t examined = 0, step_bytes = 0;
  bool at_end = true;
  std::string next_from;
  Status s = kv_.Scan(t.name, st_.from, [&](std::string_view k, std::string_view v) {
    if (examined == kExaminePerStep || step_bytes >= kStepBytes) {
      at_end = false;
      next_from.assign(k);
      return false;
    }
    ++examined;
    const std::string rk = RoutingKey(t, k);
    // Rows without a key, and keys that stay ours, stay. (An empty new ring has no owner to
    // ship to: meshctl never removes a role's last node.)
    if (rk.empty() || new_ring_.empty() || new_ring_.Owner(rk) == self_) return true;
    const std::string& dest = new_ring_.Owner(rk);
    step_bytes += k.size() + v.size() + (hooks_.weight ? hooks_.weight(t.name, v) : 0);
    auto& list = out[dest];
    size_t& b = bytes[dest];
    if (list.empty() || list.back().rows.size() == HandoverRows::kMaxRows || b >= kPayloadBytes) {
      list.push_back(HandoverRows{st_.epoch, std::string(t.name), {}});
      b = 0;
    }
    list.back().rows.emplace_back(std::string(k), std::string(v));
    b += k.size() + v.size();
    moved.push_back({std::string(k), std::string(v), &dest});
    return true;
  });
  if (!s.ok()) return s;
  for (auto& [dest, payloads] : out)
    for (auto& p : payloads)
      if (Status st = channel_.Append(dest, EncodeRecord(p), fx); !st.ok()) return st;
  for (const auto& m : moved) {
    if (hooks_.out) {
      auto emit = [&](std::string payload) {
        return channel_.Append(*m.dest, std::move(payload), fx);
      };
      if (Status st = hooks_.out(t.name, m.key, m.value, emit); !st.ok()) return st;
    }
    if (Status st = kv_.Del(t.name, m.key); !st.ok()) return st;
  }
  if (at_end) {
    ++st_.table;
    st_.from.clear();
  } else {
    st_.from = std::move(next_from);
  }
  return Save();
}

Status Handover::ReplayChunk(const ApplyFn& apply, bool& finished) {
  std::vector<std::pair<std::string, std::string>> batch;
  Status s = kv_.Scan(kStashTable, store::BigEndian64(stash_first_),
                      [&](std::string_view k, std::string_view v) {
                        batch.emplace_back(std::string(k), std::string(v));
                        return batch.size() < kReplayPerStep;
                      });
  if (!s.ok()) return s;
  for (const auto& [k, v] : batch) {
    if (Status st = apply(v); !st.ok()) return st;
    if (Status st = kv_.Del(kStashTable, k); !st.ok()) return st;
    stash_first_ = store::ReadBigEndian64(k) + 1;
  }
  if (batch.size() < kReplayPerStep) stash_first_ = stash_next_;  // nothing else stashed
  finished = stash_first_ >= stash_next_;
  return Status::Ok();
}

Result<bool> Handover::Step(const ApplyFn& apply, Effects& fx) {
  if (!st_.active) return false;
  if (!st_.shipped && MarkersIn()) {
    // A few chunks per step: a turn stays bounded, a tick moves a useful amount.
    for (int i = 0; i < 4 && !st_.shipped; ++i) {
      bool finished = false;
      if (Status s = ShipChunk(fx, finished); !s.ok()) return s;
      if (finished) {
        for (const auto& node : st_.new_ring)
          if (node != self_)
            if (Status s = channel_.Append(node, EncodeRecord(HandoverDone{st_.epoch}), fx);
                !s.ok())
              return s;
        st_.shipped = true;
        if (Status s = Save(); !s.ok()) return s;
        spdlog::info("hand-over to epoch {}: every moved row shipped", st_.epoch);
      }
    }
  }
  if (!dones_in_) dones_in_ = DonesIn();
  bool stash_empty = stash_first_ >= stash_next_;
  if (dones_in_ && !stash_empty)
    if (Status s = ReplayChunk(apply, stash_empty); !s.ok()) return s;
  if (!st_.shipped || !dones_in_ || !stash_empty) return false;
  st_.active = false;
  if (Status s = Save(); !s.ok()) return s;
  spdlog::info("hand-over to epoch {} complete", st_.epoch);
  return true;
}

uint64_t Handover::Pending() const {
  if (!st_.active) return 0;
  // Something to show and to wait for: tables left to ship, stashed entries, 1 for waiting.
  uint64_t n = 1 + (stash_next_ - stash_first_);
  if (!st_.shipped) n += tables_.size() - std::min<uint64_t>(st_.table, tables_.size());
  return n;
}

}  // namespace meshchat::nodes
