#include "client/connection.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace meshchat::client {

Connection::~Connection() {
  Close();
}

Connection::Connection(Connection&& o) noexcept : fd_(o.fd_), in_(std::move(o.in_)) {
  o.fd_ = -1;
}

Connection& Connection::operator=(Connection&& o) noexcept {
  if (this != &o) {
    Close();
    fd_ = o.fd_;
    in_ = std::move(o.in_);
    o.fd_ = -1;
  }
  return *this;
}

void Connection::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

Result<Connection> Connection::Dial(const std::string& host, uint16_t port, int timeout_ms) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0)
    return Status(Code::kInvalid, "cannot resolve " + host + ": " + gai_strerror(rc));
  Status last(Code::kUnavailable, "no address for " + host);
  for (addrinfo* a = res; a; a = a->ai_next) {
    int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    int rc = connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, timeout_ms) == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        rc = err == 0 ? 0 : -1;
        errno = err;
      } else {
        errno = ETIMEDOUT;
        rc = -1;
      }
    }
    if (rc == 0) {
      freeaddrinfo(res);
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return Connection(fd);
    }
    last = Status(Code::kUnavailable, "cannot connect to " + host + ":" + std::to_string(port) +
                                          ": " + strerror(errno));
    close(fd);
  }
  freeaddrinfo(res);
  return last;
}

Status Connection::SendRaw(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd_, POLLOUT, 0};
      if (poll(&p, 1, 10'000) != 1) return {Code::kTimeout, "send timed out"};
      continue;
    }
    return {Code::kUnavailable, std::string("send: ") + strerror(errno)};
  }
  return Status::Ok();
}

Status Connection::SendFrame(uint8_t type, std::string_view body) {
  return SendRaw(codec::EncodeFrame(type, body));
}

bool Connection::HasBufferedFrame() const {
  codec::FrameView f;
  size_t used = 0;
  return codec::DecodeFrame(in_, f, used) == codec::DecodeStatus::kOk;
}

Result<Frame> Connection::ReadFrame(int timeout_ms) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[64 * 1024];
  while (true) {
    codec::FrameView f;
    size_t used = 0;
    auto s = codec::DecodeFrame(in_, f, used);
    if (s == codec::DecodeStatus::kOk) {
      Frame out{f.type, std::string(f.body)};
      in_.erase(0, used);
      return out;
    }
    if (s != codec::DecodeStatus::kNeedMore)
      return Status(Code::kInvalid,
                    std::string("server sent a bad frame: ") + codec::DecodeStatusName(s));
    int wait = -1;
    if (timeout_ms >= 0) {  // a zero timeout still looks at the socket once
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      wait = static_cast<int>(std::max<int64_t>(0, left.count()));
    }
    pollfd p{fd_, POLLIN, 0};
    int pr = poll(&p, 1, wait);
    if (pr < 0 && errno == EINTR) continue;
    if (pr == 0) return Status(Code::kTimeout, "no frame within the timeout");
    ssize_t n = read(fd_, buf, sizeof buf);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    return Status(Code::kUnavailable, "connection closed by the server");
  }
}

}  // namespace meshchat::client
