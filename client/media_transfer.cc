#include "client/media_transfer.h"

#include <openssl/evp.h>

#include <thread>

namespace meshchat::client {

namespace {

using Clock = std::chrono::steady_clock;

bool Retryable(codec::ErrorCode c) {
  return c == codec::ErrorCode::kMediaUnavailable || c == codec::ErrorCode::kServiceUnavailable ||
         c == codec::ErrorCode::kRateLimited || c == codec::ErrorCode::kBadOffset;
}

Status FromError(const codec::Error& e) {
  const Code code = e.code == codec::ErrorCode::kMediaNotFound   ? Code::kNotFound
                    : e.code == codec::ErrorCode::kMediaTooLarge ? Code::kTooLarge
                    : Retryable(e.code)                          ? Code::kUnavailable
                                                                 : Code::kInvalid;
  return Status(code, Describe(e));
}

// The next event about media `id` (or, with id empty, about the upload begun with `ref`):
// an UploadState, MediaData or MediaLink, or an Error about it. Everything else goes to
// `other`.
template <typename T>
Result<T> Await(ChatClient& c, const std::string& id, uint64_t ref, const TransferOptions& o,
                codec::Error* err) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(o.timeout_ms);
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Status(Code::kTimeout, "no answer from the media node");
    auto ev = c.Next(static_cast<int>(left));
    if (!ev.ok()) return ev.status();
    if (auto* t = std::get_if<T>(&*ev)) {
      if constexpr (std::is_same_v<T, codec::UploadState>) {
        if (id.empty() ? t->ref == ref : t->id == id) return std::move(*t);
      } else if (t->id == id) {
        return std::move(*t);
      }
    }
    if (auto* e = std::get_if<codec::Error>(&*ev)) {
      if ((!id.empty() && e->media == id) || (id.empty() && e->cid && *e->cid == ref)) {
        if (err) *err = *e;
        return FromError(*e);
      }
      if (e->fatal) return Status(Code::kUnavailable, Describe(*e));
    }
    if (std::holds_alternative<codec::Bye>(*ev))
      return Status(Code::kUnavailable, "server said bye");
    if (o.other) o.other->push_back(std::move(*ev));
  }
}

// After a failure: lets the answers to whatever was still in flight go by (they are errors
// or stale), until the link is quiet for 300 ms.
template <typename T>
void DrainAnswers(ChatClient& c, const std::string& id, const TransferOptions& o) {
  TransferOptions quick = o;
  quick.timeout_ms = 300;
  while (Await<T>(c, id, 0, quick, nullptr).status().code() != Code::kTimeout) {
  }
}

codec::MediaRef RefOf(const codec::UploadState& st) {
  return codec::MediaRef{st.id, st.size, st.type, st.sha256, st.ticket};
}

void Pause(int attempt) {
  std::this_thread::sleep_for(std::chrono::milliseconds(200 << std::min(attempt, 4)));
}

}  // namespace

std::string Sha256(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(out), len);
}

Result<codec::UploadState> QueryUpload(ChatClient& c, const std::string& id, int timeout_ms) {
  if (Status s = c.SendMedia(id, codec::UploadStatus{}); !s.ok()) return s;
  TransferOptions o;
  o.timeout_ms = timeout_ms;
  return Await<codec::UploadState>(c, id, 0, o, nullptr);
}

Result<codec::MediaRef> ResumeUpload(ChatClient& c, const std::string& id, std::string_view content,
                                     const TransferOptions& o) {
  int failures = 0;
  while (true) {
    auto st = QueryUpload(c, id, o.timeout_ms);
    if (!st.ok()) {
      if (st.status().code() != Code::kUnavailable || ++failures > o.retries) return st.status();
      Pause(failures);
      continue;
    }
    if (st->size != content.size())
      return Status(Code::kInvalid, "the upload was begun for a different size");
    if (st->done) return RefOf(*st);
    // Send from where the server is, keeping `window` chunks in flight; each answer says how
    // far the server got.
    const uint64_t chunk =
        std::max<uint64_t>(1, std::min<uint64_t>(st->chunk, codec::kMaxChunkBytes));
    uint64_t sent = st->next, acked = st->next;
    bool retry = false;
    while (acked < content.size()) {
      while (sent < content.size() && (sent - acked) / chunk < o.window) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk, content.size() - sent));
        codec::UploadChunk ch{sent, std::string(content.substr(sent, n))};
        if (Status s = c.SendMedia(id, ch); !s.ok()) return s;
        sent += n;
      }
      codec::Error err;
      auto ack = Await<codec::UploadState>(c, id, 0, o, &err);
      if (!ack.ok()) {
        if (ack.status().code() != Code::kUnavailable || ++failures > o.retries)
          return ack.status();
        retry = true;  // chunks in flight after the failed one are refused as bad_offset
        break;
      }
      acked = std::max(acked, ack->next);
      if (o.progress) o.progress(acked, content.size());
      if (ack->done) return RefOf(*ack);
    }
    if (!retry) return Status(Code::kInvalid, "server never confirmed the last chunk");
    // Drain the answers to what was still in flight, then ask where the server is.
    Pause(failures);
    DrainAnswers<codec::UploadState>(c, id, o);
  }
}

Result<codec::MediaRef> UploadMedia(ChatClient& c, std::string_view content,
                                    const std::string& type, const TransferOptions& o) {
  static uint64_t next_ref = 1;
  codec::UploadBegin b{next_ref++, content.size(), type, Sha256(content)};
  int failures = 0;
  while (true) {
    if (Status s = c.UploadBegin(b); !s.ok()) return s;
    auto st = Await<codec::UploadState>(c, "", b.ref, o, nullptr);
    if (st.ok()) return ResumeUpload(c, st->id, content, o);
    if (st.status().code() != Code::kUnavailable || ++failures > o.retries) return st.status();
    Pause(failures);
  }
}

Result<std::string> FetchMedia(ChatClient& c, const codec::MediaRef& ref,
                               const TransferOptions& o) {
  if (ref.size > (1ull << 32))
    return Status(Code::kTooLarge, "media too large to fetch into memory");
  std::string out;
  out.reserve(static_cast<size_t>(ref.size));
  int failures = 0;
  // `window` ranges in flight; the media node answers them in order.
  const uint64_t chunk = codec::kMaxChunkBytes;
  uint64_t requested = 0;
  while (out.size() < ref.size) {
    while (requested < ref.size && requested - out.size() < o.window * chunk) {
      if (Status s = c.SendMedia(ref.id, codec::Fetch{ref.ticket, requested, chunk}); !s.ok())
        return s;
      requested += std::min<uint64_t>(chunk, ref.size - requested);
    }
    auto d = Await<codec::MediaData>(c, ref.id, 0, o, nullptr);
    if (!d.ok()) {
      if (d.status().code() != Code::kUnavailable || ++failures > o.retries) return d.status();
      Pause(failures);
      DrainAnswers<codec::MediaData>(c, ref.id, o);  // then ask again from where we are
      requested = out.size();
      continue;
    }
    if (d->off != out.size() || d->data.empty() || d->size != ref.size)
      return Status(Code::kInvalid, "unexpected media data from the server");
    out += d->data;
    if (o.progress) o.progress(out.size(), ref.size);
  }
  if (Sha256(out) != ref.sha256) return Status(Code::kInvalid, "downloaded bytes fail the sha256");
  return out;
}

Result<codec::MediaLink> RequestMediaLink(ChatClient& c, const codec::MediaRef& ref, uint64_t ttl_s,
                                          int timeout_ms) {
  if (Status s = c.SendMedia(ref.id, codec::MediaLinkReq{ref.ticket, ttl_s}); !s.ok()) return s;
  TransferOptions o;
  o.timeout_ms = timeout_ms;
  return Await<codec::MediaLink>(c, ref.id, 0, o, nullptr);
}

}  // namespace meshchat::client
