// Writing a small file so it is never seen half-written, never readable beyond `mode`, and on
// disk before the call returns: secrets, keys, revocations, certificates.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "base/status.h"

namespace meshchat {

// Writes `text` to PATH.tmp created with `mode`, fsyncs it, renames it over `path` and fsyncs
// the directory, so the new name survives a crash too (the rename lives in the directory).
inline Status WriteFileDurably(const std::string& path, std::string_view text, mode_t mode) {
  const std::string tmp = path + ".tmp";
  int fd;
  do {
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return Status(Code::kIo, "cannot write " + tmp + ": " + std::strerror(errno));
  ::fchmod(fd, mode);  // an older file of the same name may have had another mode
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  int synced;
  do {
    synced = ::fsync(fd);
  } while (synced != 0 && errno == EINTR);
  const bool ok = off == text.size() && synced == 0;
  ::close(fd);
  if (!ok) return Status(Code::kIo, "cannot write " + tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return Status(Code::kIo, "cannot rename " + tmp + ": " + std::strerror(errno));
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Status(Code::kIo, "cannot open " + dir + ": " + std::strerror(errno));
  do {
    synced = ::fsync(dfd);
  } while (synced != 0 && errno == EINTR);
  ::close(dfd);
  if (synced != 0) return Status(Code::kIo, "cannot sync " + dir + ": " + std::strerror(errno));
  return Status::Ok();
}

}  // namespace meshchat
