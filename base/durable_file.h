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

// Writes `text` to PATH.tmp created with `mode`, fsyncs it and renames it over `path`.
inline Status WriteFileDurably(const std::string& path, std::string_view text, mode_t mode) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Status(Code::kIo, "cannot write " + tmp + ": " + std::strerror(errno));
  ::fchmod(fd, mode);  // an older file of the same name may have had another mode
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  const bool ok = off == text.size() && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return Status(Code::kIo, "cannot write " + tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return Status(Code::kIo, "cannot rename " + tmp + ": " + std::strerror(errno));
  return Status::Ok();
}

}  // namespace meshchat
