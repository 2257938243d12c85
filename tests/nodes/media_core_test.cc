// MediaCore without sockets: an in-memory store, an in-memory blob store with failure
// injection, and a fake clock (garbage collection is tested without sleeping).
#include <catch2/catch.hpp>

#include "client/media_transfer.h"
#include "codec/token.h"
#include "nodes/media/media_core.h"
#include "nodes/shard/records.h"
#include "store/mem_blob_store.h"
#include "store/mem_kv_store.h"

using namespace meshchat;
using namespace meshchat::codec;
using namespace meshchat::nodes;

namespace {

const std::string kSecret = "0123456789abcdef0123456789abcdef";

struct Node {
  FakeClock clock;
  store::MemKvStore kv;
  store::MemBlobStore blobs;
  const std::string self = "m1";
  std::unique_ptr<MediaCore> core;
  Effects fx;
  uint64_t chan_seq = 0;

  Node() {
    MediaConfig cfg;
    cfg.node_id = self;
    cfg.secret = kSecret;
    cfg.max_bytes = 1 << 20;
    cfg.chunk_bytes = 1000;
    cfg.upload_grace_ms = 3'600'000;
    cfg.retention_ms = 10 * 3'600'000;
    cfg.http_base = "http://media.test";
    core = std::make_unique<MediaCore>(
        cfg, clock, kv, blobs, [this](std::string_view) -> const std::string& { return self; },
        [](const std::string&) { return true; });
    REQUIRE(core->Load().ok());
    REQUIRE(kv.Commit().ok());
  }
  // A client frame from `user`, as the gateway routes it; returns the frames sent back.
  std::vector<std::pair<uint8_t, std::string>> Frame(const std::string& user, FrameType type,
                                                     const std::string& id, std::string body) {
    fx.Clear();
    Envelope e;
    e.type = MeshType::kClientFrame;
    e.epoch = 1;
    e.key = HexOf(id);
    e.stamp = Stamp{user, "d1", 7, "gw1"};
    e.ftype = static_cast<uint8_t>(type);
    e.body = type == FrameType::kUploadBegin ? std::move(body) : id + body;
    core->OnEnvelope("gw1", std::move(e), fx);
    REQUIRE(core->EndBatch(fx).ok());
    std::vector<std::pair<uint8_t, std::string>> out;
    for (auto& m : fx.mesh)
      if (m.env.type == MeshType::kToClient) out.emplace_back(m.env.ftype, m.env.body);
    return out;
  }
  template <typename T>
  T One(const std::vector<std::pair<uint8_t, std::string>>& frames) {
    REQUIRE(frames.size() == 1);
    REQUIRE(frames[0].first == static_cast<uint8_t>(TypeOf(T{})));
    T t;
    REQUIRE(Decode(frames[0].second, t) == DecodeStatus::kOk);
    return t;
  }
  UploadState Upload(const std::string& id, const std::string& user, const std::string& data) {
    One<UploadState>(Frame(user, FrameType::kUploadBegin, id,
                           Encode(UploadBegin{1, data.size(), "image/png", client::Sha256(data)})));
    UploadState st;
    for (uint64_t off = 0; off < data.size(); off += 1000)
      st = One<UploadState>(Frame(user, FrameType::kUploadChunk, id,
                                  Encode(UploadChunk{off, data.substr(off, 1000)})));
    return st;
  }
  // A session shard reports a message referencing `id` (over the reliable channel).
  void Reference(const std::string& id, uint64_t until_ms = 0) {
    fx.Clear();
    Envelope e;
    e.type = MeshType::kChanMsg;
    e.req = ++chan_seq;
    e.arg = 99;  // the sender's channel id
    e.body = EncodeRecord(MediaRefRecord{id, "a|b", until_ms});
    core->OnEnvelope("s1", std::move(e), fx);
    REQUIRE(core->EndBatch(fx).ok());
  }
  void Tick() {
    fx.Clear();
    core->OnTick(fx);
    REQUIRE(core->EndBatch(fx).ok());
  }
  bool Exists(const std::string& id) {
    auto frames = Frame("alice", FrameType::kUploadStatus, id, Encode(UploadStatus{}));
    return frames.size() == 1 && frames[0].first == static_cast<uint8_t>(FrameType::kUploadState);
  }
};

const std::string kId(16, '\x07');
const std::string kData(2500, 'p');

}  // namespace

TEST_CASE("media core: upload, ticket, fetch by range", "[nodes][media]") {
  Node n;
  auto st = n.Upload(kId, "alice", kData);
  CHECK(st.done);
  CHECK(st.next == kData.size());
  MediaRef ref{kId, st.size, st.type, st.sha256, st.ticket};
  CHECK(VerifyMediaTicket(ref, kSecret));
  auto d = n.One<MediaData>(
      n.Frame("bob", FrameType::kFetch, kId, Encode(codec::Fetch{st.ticket, 1200, 500})));
  CHECK(d.data == kData.substr(1200, 500));
  CHECK(d.size == kData.size());
  // A range past the chunk limit is capped; one at the end is short.
  d = n.One<MediaData>(
      n.Frame("bob", FrameType::kFetch, kId, Encode(codec::Fetch{st.ticket, 2000, 100000})));
  CHECK(d.data.size() == 500);
  auto link = n.One<MediaLink>(
      n.Frame("bob", FrameType::kMediaLinkReq, kId, Encode(MediaLinkReq{st.ticket, 999999})));
  CHECK(link.url.rfind("http://media.test/media/" + HexOf(kId) + "?u=bob&", 0) == 0);
  CHECK(link.exp == static_cast<uint64_t>(n.clock.WallMs() / 1000) + 86400);  // capped
}

TEST_CASE("media core: a resent chunk is acknowledged again, a gap is refused", "[nodes][media]") {
  Node n;
  n.One<UploadState>(n.Frame("alice", FrameType::kUploadBegin, kId,
                             Encode(UploadBegin{1, 2500, "image/png", client::Sha256(kData)})));
  auto a = n.One<UploadState>(n.Frame("alice", FrameType::kUploadChunk, kId,
                                      Encode(UploadChunk{0, kData.substr(0, 1000)})));
  CHECK(a.next == 1000);
  auto again = n.One<UploadState>(n.Frame("alice", FrameType::kUploadChunk, kId,
                                          Encode(UploadChunk{0, kData.substr(0, 1000)})));
  CHECK(again.next == 1000);
  auto gap = n.One<codec::Error>(n.Frame("alice", FrameType::kUploadChunk, kId,
                                         Encode(UploadChunk{2000, kData.substr(2000)})));
  CHECK(gap.code == ErrorCode::kBadOffset);
  // Someone else cannot add to (or learn about) alice's upload.
  auto other = n.One<codec::Error>(n.Frame("bob", FrameType::kUploadChunk, kId,
                                           Encode(UploadChunk{1000, kData.substr(1000, 1000)})));
  CHECK(other.code == ErrorCode::kMediaNotFound);
}

TEST_CASE("media core: a failing blob store gives a retryable error and loses nothing",
          "[nodes][media]") {
  Node n;
  n.One<UploadState>(n.Frame("alice", FrameType::kUploadBegin, kId,
                             Encode(UploadBegin{1, 2500, "image/png", client::Sha256(kData)})));
  n.blobs.WritesLeft(1);
  CHECK(n.One<UploadState>(n.Frame("alice", FrameType::kUploadChunk, kId,
                                   Encode(UploadChunk{0, kData.substr(0, 1000)})))
            .next == 1000);
  auto down = n.One<codec::Error>(n.Frame("alice", FrameType::kUploadChunk, kId,
                                          Encode(UploadChunk{1000, kData.substr(1000, 1000)})));
  CHECK(down.code == ErrorCode::kMediaUnavailable);
  n.blobs.WritesLeft(-1);  // back up: the same chunk goes through, and the rest
  CHECK(n.One<UploadState>(n.Frame("alice", FrameType::kUploadChunk, kId,
                                   Encode(UploadChunk{1000, kData.substr(1000, 1000)})))
            .next == 2000);
  auto done = n.One<UploadState>(n.Frame("alice", FrameType::kUploadChunk, kId,
                                         Encode(UploadChunk{2000, kData.substr(2000)})));
  CHECK(done.done);
  // Reads failing: fetch says unavailable (not "not found": it exists).
  n.blobs.FailWith(Status(Code::kUnavailable, "injected"));
  CHECK(n.One<codec::Error>(
             n.Frame("alice", FrameType::kFetch, kId, Encode(codec::Fetch{done.ticket, 0, 10})))
            .code == ErrorCode::kMediaUnavailable);
}

TEST_CASE("media core: garbage collection on the injected clock", "[nodes][media]") {
  Node n;
  const std::string never_shared(16, '\x01'), shared(16, '\x02'), abandoned(16, '\x03');
  n.Upload(never_shared, "alice", kData);
  n.Upload(shared, "alice", kData);
  n.One<UploadState>(n.Frame("alice", FrameType::kUploadBegin, abandoned,
                             Encode(UploadBegin{1, 2500, "image/png", client::Sha256(kData)})));
  n.Reference(shared);
  CHECK(n.blobs.count() == 2);

  n.clock.Advance(3'600'000 - 1);  // just inside the upload grace period
  n.Tick();
  CHECK(n.Exists(never_shared));
  CHECK(n.Exists(abandoned));
  n.clock.Advance(2);
  n.Tick();
  CHECK_FALSE(n.Exists(never_shared));  // complete but never referenced
  CHECK_FALSE(n.Exists(abandoned));     // never finished
  CHECK(n.Exists(shared));
  CHECK(n.blobs.count() == 1);
  CHECK(n.core->collected() == 2);

  // A later reference extends the retention; after it, the media goes too.
  n.clock.Advance(5 * 3'600'000);
  n.Reference(shared);
  n.clock.Advance(9 * 3'600'000);
  n.Tick();
  CHECK(n.Exists(shared));
  n.clock.Advance(1 * 3'600'000 + 1);
  n.Tick();
  CHECK_FALSE(n.Exists(shared));
  CHECK(n.blobs.count() == 0);
}

TEST_CASE("media core: GC waits while the blob store is down", "[nodes][media]") {
  Node n;
  n.Upload(kId, "alice", kData);
  n.blobs.FailWith(Status(Code::kUnavailable, "injected"));
  n.clock.Advance(3'600'001);
  n.Tick();
  n.blobs.FailWith(Status::Ok());
  CHECK(n.Exists(kId));  // kept: its bytes could not be removed yet
  n.Tick();
  CHECK_FALSE(n.Exists(kId));
  CHECK(n.blobs.count() == 0);
}

TEST_CASE("media core: metadata records round-trip and reject garbage", "[nodes][media]") {
  MediaMeta m{"alice", 10, "image/png", std::string(32, 's'), 5, 3, false, 2, 99};
  MediaMeta back;
  REQUIRE(DecodeMeta(EncodeMeta(m), back));
  CHECK(back == m);
  CHECK_FALSE(DecodeMeta("\x93\x01\x02", back));
  CHECK_FALSE(DecodeMeta("", back));
}

TEST_CASE("media core: URL signatures bind every field and expire", "[nodes][media]") {
  const std::string sig = UrlSignature("ab", "bob", 1000, 10, "image/png", kSecret);
  CHECK(MediaCore::CheckUrl("ab", "bob", 1000, 10, "image/png", sig, kSecret, "", 999));
  CHECK_FALSE(MediaCore::CheckUrl("ab", "bob", 1000, 10, "image/png", sig, kSecret, "", 1001));
  CHECK_FALSE(MediaCore::CheckUrl("ab", "eve", 1000, 10, "image/png", sig, kSecret, "", 999));
  CHECK_FALSE(MediaCore::CheckUrl("ab", "bob", 1001, 10, "image/png", sig, kSecret, "", 999));
  CHECK_FALSE(MediaCore::CheckUrl("ab", "bob", 1000, 11, "image/png", sig, kSecret, "", 999));
  CHECK_FALSE(MediaCore::CheckUrl("ab", "bob", 1000, 10, "text/html", sig, kSecret, "", 999));
  CHECK_FALSE(MediaCore::CheckUrl("ab", "bob", 1000, 10, "image/png", sig, "other", "", 999));
  // While the secret is rotated, what the previous one signed still verifies.
  CHECK(MediaCore::CheckUrl("ab", "bob", 1000, 10, "image/png", sig, "new-secret", kSecret, 999));
  CHECK_FALSE(MediaCore::CheckUrl("ab", "bob", 1000, 10, "image/png", sig, "new", "old", 999));
}

TEST_CASE("media core: unfinished uploads per user are capped", "[nodes][media]") {
  Node n;
  auto begin = [&](char tag) {
    return n.Frame("alice", FrameType::kUploadBegin, std::string(16, tag),
                   Encode(UploadBegin{1, 2500, "image/png", client::Sha256(kData)}));
  };
  for (char t = 'a'; t < 'a' + 16; ++t) n.One<UploadState>(begin(t));
  CHECK(n.One<codec::Error>(begin('z')).code == ErrorCode::kRateLimited);
  // Completing one frees a slot; so does an abandoned one expiring.
  n.Upload(std::string(16, 'y'), "bob", kData);  // other users are not affected
  const std::string first(16, 'a');
  for (uint64_t off = 0; off < kData.size(); off += 1000)
    n.One<UploadState>(n.Frame("alice", FrameType::kUploadChunk, first,
                               Encode(UploadChunk{off, kData.substr(off, 1000)})));
  n.One<UploadState>(begin('z'));
  CHECK(n.One<codec::Error>(begin('x')).code == ErrorCode::kRateLimited);
  n.clock.Advance(3'600'001);
  n.Tick();
  n.One<UploadState>(begin('x'));
  CHECK(n.core->counters().begun == 19);
  CHECK(n.core->counters().completed == 2);
}

TEST_CASE("media core: media of a disappearing message goes when the message does",
          "[nodes][media]") {
  Node n;
  n.Upload(kId, "alice", kData);
  const uint64_t vanish = static_cast<uint64_t>(n.clock.WallMs()) + 60'000;
  n.Reference(kId, vanish);  // shorter than the upload grace: that is what counts now
  n.clock.Advance(60'001);
  n.Tick();
  CHECK_FALSE(n.Exists(kId));
  CHECK(n.blobs.count() == 0);
}

TEST_CASE("media core: media in a permanent chat's history is kept for good", "[nodes][media]") {
  Node n;
  n.Upload(kId, "alice", kData);
  n.Reference(kId, MediaRefRecord::kKeptForever);
  n.Reference(kId);  // a later plain reference does not shorten it
  n.clock.Advance(400LL * 24 * 3600 * 1000);
  n.Tick();
  CHECK(n.Exists(kId));
}
