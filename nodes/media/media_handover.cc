// MediaCore: items moving between media nodes when the media ring changes (nodes/shard/handover.h).
// The metadata rows move like any keyed rows (routed by the hex of the binary id). The bytes
// move too when the blob store is the node's own (a local directory): each shipped item's
// stored bytes follow its row as MediaBytes payloads, and the old node removes its copy a
// while after the move is committed. With a shared store (one RADOS pool) they stay put.
#include <spdlog/spdlog.h>

#include "nodes/media/media_core.h"
#include "nodes/shard/records.h"

namespace meshchat::nodes {
namespace {
constexpr uint64_t kMovedBlobKeepMs = 10'000;  // the move's batch is durable long before
}  // namespace

std::vector<HandoverTable> MediaCore::Tables() {
  auto hex = [](size_t skip) {
    return [skip](std::string_view key) {
      return key.size() == skip + codec::kMediaIdBytes ? codec::HexOf(key.substr(skip))
                                                       : std::string();
    };
  };
  // Not the open-upload counts: they are per user, and the hooks move the counts instead.
  return {{kMediaTable, 0, hex(0)}, {kGcTable, 8, hex(8)}};
}

void MediaCore::SetHandoverHooks() {
  Handover::RowHooks h;
  h.weight = [this](std::string_view table, std::string_view value) -> size_t {
    MediaMeta m;
    return table == kMediaTable && !blobs_.Shared() && DecodeMeta(value, m) ? m.next : 0;
  };
  h.out = [this](std::string_view table, std::string_view key, std::string_view value,
                 const Handover::EmitFn& emit) -> Status {
    MediaMeta m;
    if (table != kMediaTable || !DecodeMeta(value, m)) return Status::Ok();
    const std::string id(key);
    if (!m.done)
      if (Status s = AddOpenUploads(m.owner, -1); !s.ok()) return s;
    if (blobs_.Shared() || m.next == 0) return Status::Ok();
    std::string buf(cfg_.chunk_bytes, '\0');
    for (uint64_t off = 0; off < m.next;) {
      buf.resize(std::min<uint64_t>(cfg_.chunk_bytes, m.next - off));
      auto n = blobs_.Read(codec::HexOf(id), off, std::span<char>(buf.data(), buf.size()));
      if (!n.ok() && n.status().code() == Code::kNotFound) {
        spdlog::error("media {}: no bytes to move (its record says {})", codec::HexOf(id), m.next);
        break;
      }
      if (!n.ok()) return n.status();  // the store is down: the step is tried again
      if (*n == 0) break;
      if (Status s = emit(EncodeRecord(MediaBytes{id, off, buf.substr(0, *n)})); !s.ok()) return s;
      off += *n;
    }
    return kv_.Put(kMovedTable, store::BigEndian64(static_cast<uint64_t>(clock_.WallMs())) + id,
                   EncodeUints({m.size}));
  };
  h.in = [this](std::string_view table, std::string_view, std::string_view value) -> Status {
    MediaMeta m;
    if (table != kMediaTable || !DecodeMeta(value, m) || m.done) return Status::Ok();
    return AddOpenUploads(m.owner, 1);
  };
  handover_.SetRowHooks(std::move(h));
}

Status MediaCore::HandleChannel(const std::string& from, std::string_view payload) {
  auto handled = handover_.OnPayload(from, payload);
  if (!handled.ok() || *handled) return handled.status();
  if (KindOf(payload) == PayloadKind::kMediaBytes) {
    MediaBytes b;
    if (!DecodeRecord(payload, b)) {
      spdlog::error("undecodable media bytes from {} skipped", from);
      return Status::Ok();
    }
    // Outside the store batch, but idempotent: a resent payload writes the same bytes.
    return blobs_.Write(codec::HexOf(b.id), b.offset, b.data);
  }
  MediaRefRecord r;  // an item whose row is not here (yet) waits: see Handover::ApplyNow
  if (DecodeRecord(payload, r)) {
    const std::string key = codec::HexOf(r.id);
    if (!handover_.ApplyNow(key, media_owner_(key) == cfg_.node_id))
      return handover_.Stash(payload);
  }
  return ApplyRef(payload);
}

void MediaCore::StepHandover(Effects& fx) {
  if (!handover_.active()) return;
  auto ended = handover_.Step([&](std::string_view p) { return ApplyRef(p); }, fx);
  if (!ended.ok()) Fail(ended.status());
}

Status MediaCore::OnMapChanged(const MapChange& change, Effects& fx) {
  cfg_.epoch = change.epoch;
  auto began = handover_.TakeMap(change, fx);
  if (!began.ok() || !*began) return began.status();
  StepHandover(fx);
  return Status::Ok();
}

Status MediaCore::RemoveMovedBlobs() {
  const uint64_t now = static_cast<uint64_t>(clock_.WallMs());
  auto due = store::DueKeys(kv_, kMovedTable, now < kMovedBlobKeepMs ? 0 : now - kMovedBlobKeepMs,
                            cfg_.gc_batch);
  if (!due.ok()) return due.status();
  for (const auto& mark : *due) {
    auto v = kv_.Get(kMovedTable, mark);
    std::vector<uint64_t> size;
    if (!v.ok() || !DecodeUints(*v, size, 1)) size = {cfg_.max_bytes};
    if (Status r = blobs_.Remove(codec::HexOf(mark.substr(8)), size[0]); !r.ok())
      return Status::Ok();  // the store is down: next tick
    if (Status s = kv_.Del(kMovedTable, mark); !s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace meshchat::nodes
