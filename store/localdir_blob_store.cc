#include "store/localdir_blob_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace meshchat::store {

namespace {
Status Errno(const std::string& what) {
  return Status(Code::kIo, what + ": " + std::strerror(errno));
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};
}  // namespace

bool ValidBlobId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

LocalDirBlobStore::LocalDirBlobStore(std::string dir) : dir_(std::move(dir)) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw std::runtime_error("cannot create blob directory " + dir_ + ": " + ec.message());
}

Result<std::string> LocalDirBlobStore::PathOf(std::string_view id) const {
  if (!ValidBlobId(id)) return Status(Code::kInvalid, "bad blob id");
  return dir_ + "/" + std::string(id);
}

Status LocalDirBlobStore::Write(std::string_view id, uint64_t offset, std::string_view data) {
  auto path = PathOf(id);
  if (!path.ok()) return path.status();
  Fd fd(::open(path->c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0640));
  if (fd.get() < 0) return Errno("open " + *path);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd.get(), data.data() + done, data.size() - done,
                         static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("write " + *path);
    done += static_cast<size_t>(n);
  }
  if (::fdatasync(fd.get()) != 0) return Errno("fdatasync " + *path);
  return Status::Ok();
}

Result<size_t> LocalDirBlobStore::Read(std::string_view id, uint64_t offset, std::span<char> out) {
  auto path = PathOf(id);
  if (!path.ok()) return path.status();
  Fd fd(::open(path->c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return Status(Code::kNotFound, "no blob " + std::string(id));
    return Errno("open " + *path);
  }
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n =
        ::pread(fd.get(), out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("read " + *path);
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

Status LocalDirBlobStore::Remove(std::string_view id, uint64_t /*size*/) {
  auto path = PathOf(id);
  if (!path.ok()) return path.status();
  if (::unlink(path->c_str()) != 0 && errno != ENOENT) return Errno("unlink " + *path);
  return Status::Ok();
}

}  // namespace meshchat::store
