#include "store/rados_blob_store.h"

#include <rados/librados.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "store/localdir_blob_store.h"

namespace meshchat::store {

struct RadosBlobStore::Conn {
  librados::Rados cluster;
  librados::IoCtx io;
  ~Conn() {
    io.close();
    cluster.shutdown();
  }
};

namespace {
int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Status FromErrno(int rc, const std::string& what) {
  const std::string msg = what + ": " + std::strerror(-rc);
  switch (-rc) {
    case ENOENT: return Status(Code::kNotFound, msg);
    case ETIMEDOUT:
    case EAGAIN:
    case ENOTCONN:
    case ESHUTDOWN:
    case ECONNREFUSED: return Status(Code::kUnavailable, "RADOS unavailable (retry): " + msg);
    case ENOSPC:
    case EDQUOT: return Status(Code::kFull, msg);
    default: return Status(Code::kIo, msg);
  }
}
}  // namespace

RadosBlobStore::RadosBlobStore(RadosOptions opts) : opts_(std::move(opts)) {}
RadosBlobStore::~RadosBlobStore() = default;

std::string RadosBlobStore::ObjectName(std::string_view id, uint64_t stripe) {
  char suffix[24];
  std::snprintf(suffix, sizeof suffix, ".%04llx", static_cast<unsigned long long>(stripe));
  return std::string(id) + suffix;
}

Status RadosBlobStore::Connect() {
  std::lock_guard lock(mu_);
  if (conn_) return Status::Ok();
  last_attempt_ms_ = NowMs();
  auto c = std::make_unique<Conn>();
  const std::string name = "client." + opts_.client;
  if (int rc = c->cluster.init2(name.c_str(), "ceph", 0); rc < 0)
    return FromErrno(rc, "rados init");
  if (int rc = c->cluster.conf_read_file(opts_.conf_file.c_str()); rc < 0)
    return FromErrno(rc, "read ceph conf " + opts_.conf_file);
  const std::string t = std::to_string(opts_.op_timeout_s);
  for (const char* key : {"rados_osd_op_timeout", "rados_mon_op_timeout", "client_mount_timeout"})
    if (int rc = c->cluster.conf_set(key, t.c_str()); rc < 0) return FromErrno(rc, key);
  // A failed connect leaves the handle unusable: ~Conn shuts it down and the next try
  // starts from a fresh one.
  if (int rc = c->cluster.connect(); rc < 0)
    return FromErrno(rc, "connect to ceph (" + opts_.conf_file + ")");
  if (int rc = c->cluster.ioctx_create(opts_.pool.c_str(), c->io); rc < 0)
    return FromErrno(rc, "open pool " + opts_.pool);
  conn_ = std::move(c);
  return Status::Ok();
}

Result<std::shared_ptr<RadosBlobStore::Conn>> RadosBlobStore::Ready() {
  {
    std::lock_guard lock(mu_);
    if (conn_) return conn_;
    if (NowMs() - last_attempt_ms_ < opts_.reconnect_interval_ms)
      return Status(Code::kUnavailable, "RADOS not connected (retry)");
  }
  if (Status s = Connect(); !s.ok()) {
    if (s.code() == Code::kUnavailable) return s;
    return Status(Code::kUnavailable, "RADOS not connected (retry): " + s.message());
  }
  std::lock_guard lock(mu_);
  if (!conn_) return Status(Code::kUnavailable, "RADOS not connected (retry)");
  return conn_;
}

Status RadosBlobStore::Check(Status s) {
  if (s.code() == Code::kUnavailable) {
    std::lock_guard lock(mu_);
    conn_.reset();
    last_attempt_ms_ = NowMs();
  }
  return s;
}

Status RadosBlobStore::Write(std::string_view id, uint64_t offset, std::string_view data) {
  if (!ValidBlobId(id)) return Status(Code::kInvalid, "bad blob id");
  auto c = Ready();
  if (!c.ok()) return c.status();
  while (!data.empty()) {
    const uint64_t stripe = offset / opts_.stripe_bytes, within = offset % opts_.stripe_bytes;
    const size_t n =
        static_cast<size_t>(std::min<uint64_t>(data.size(), opts_.stripe_bytes - within));
    // A fresh bufferlist per call: write() consumes it.
    librados::bufferlist bl;
    bl.append(data.data(), static_cast<unsigned>(n));
    const std::string oid = ObjectName(id, stripe);
    if (int rc = (*c)->io.write(oid, bl, n, within); rc < 0)
      return Check(FromErrno(rc, "write " + oid));
    data.remove_prefix(n);
    offset += n;
  }
  return Status::Ok();
}

Result<size_t> RadosBlobStore::Read(std::string_view id, uint64_t offset, std::span<char> out) {
  if (!ValidBlobId(id)) return Status(Code::kInvalid, "bad blob id");
  auto c = Ready();
  if (!c.ok()) return c.status();
  size_t done = 0;
  while (done < out.size()) {
    const uint64_t stripe = offset / opts_.stripe_bytes, within = offset % opts_.stripe_bytes;
    const size_t want =
        static_cast<size_t>(std::min<uint64_t>(out.size() - done, opts_.stripe_bytes - within));
    librados::bufferlist bl;
    const std::string oid = ObjectName(id, stripe);
    int rc = (*c)->io.read(oid, bl, want, within);
    if (rc == -ENOENT) {
      if (stripe == 0) return Status(Code::kNotFound, "no blob " + std::string(id));
      break;  // past the last stripe
    }
    if (rc < 0) return Check(FromErrno(rc, "read " + oid));
    const size_t got = std::min<size_t>(static_cast<size_t>(rc), bl.length());
    bl.begin().copy(static_cast<unsigned>(got), out.data() + done);
    done += got;
    offset += got;
    if (got < want) break;  // the blob ends in this stripe
  }
  return done;
}

Status RadosBlobStore::Remove(std::string_view id, uint64_t size) {
  if (!ValidBlobId(id)) return Status(Code::kInvalid, "bad blob id");
  auto c = Ready();
  if (!c.ok()) return c.status();
  const uint64_t stripes = size == 0 ? 1 : (size + opts_.stripe_bytes - 1) / opts_.stripe_bytes;
  for (uint64_t s = 0; s < stripes; ++s) {
    const std::string oid = ObjectName(id, s);
    int rc = (*c)->io.remove(oid);
    if (rc < 0 && rc != -ENOENT) return Check(FromErrno(rc, "remove " + oid));
  }
  return Status::Ok();
}

}  // namespace meshchat::store
