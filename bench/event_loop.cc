#include "bench/event_loop.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "client/connection.h"
#include "codec/frame.h"

namespace meshchat::bench {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

FrameLoop::FrameLoop() : ep_(epoll_create1(EPOLL_CLOEXEC)) {}

FrameLoop::~FrameLoop() {
  for (auto& c : conns_) {
    if (c.ssl) SSL_free(c.ssl);
    if (c.fd >= 0) close(c.fd);
  }
  close(ep_);
}

bool FrameLoop::EnableTls(const std::string& ca_file) {
  auto t = client::TlsClientContext::Create({ca_file});
  if (!t.ok()) return false;
  tls_ = std::move(t).value();
  return true;
}

int FrameLoop::Connect(const std::string& host, uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1 ||
      (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS)) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT;  // EPOLLOUT once: connect completion
  ev.data.u64 = conns_.size();
  epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
  Conn c{fd, {}, {}, true, nullptr, false};
  if (tls_) {
    c.ssl = SSL_new(tls_->get());
    SSL_set_fd(c.ssl, fd);
    SSL_set_connect_state(c.ssl);  // the handshake runs inside the first write or read
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c.ssl), host.c_str());
  }
  conns_.push_back(c);
  return static_cast<int>(conns_.size() - 1);
}

void FrameLoop::Send(size_t i, uint8_t type, std::string_view body) {
  Conn& c = conns_[i];
  if (c.fd < 0) return;
  if (c.out.empty()) dirty_.push_back(i);
  codec::AppendFrame(c.out, type, body);
}

void FrameLoop::Close(size_t i) {
  Conn& c = conns_[i];
  if (c.fd < 0) return;
  epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
  if (c.ssl) SSL_free(c.ssl);
  c.ssl = nullptr;
  close(c.fd);
  c.fd = -1;
  c.in.clear();
  c.out.clear();
}

ssize_t FrameLoop::Read(Conn& c, char* buf, size_t n) {
  if (!c.ssl) {
    const ssize_t r = read(c.fd, buf, n);
    if (r > 0) return r;
    return r < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
  }
  const int r = SSL_read(c.ssl, buf, static_cast<int>(n));
  if (r > 0) return r;
  const int err = SSL_get_error(c.ssl, r);
  ERR_clear_error();
  return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

ssize_t FrameLoop::Write(Conn& c) {
  if (!c.ssl) {
    const ssize_t r = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (r > 0) return r;
    return r < 0 && (errno == EAGAIN || errno == ENOTCONN || errno == EINPROGRESS || errno == EINTR)
               ? 0
               : -1;
  }
  c.write_wants_read = false;
  const int r = SSL_write(c.ssl, c.out.data(), static_cast<int>(c.out.size()));
  if (r > 0) return r;
  const int err = SSL_get_error(c.ssl, r);
  ERR_clear_error();
  if (err == SSL_ERROR_WANT_READ) c.write_wants_read = true;
  if (err == SSL_ERROR_SYSCALL && (errno == ENOTCONN || errno == EAGAIN)) return 0;  // connecting
  return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

void FrameLoop::Flush(size_t i) {
  Conn& c = conns_[i];
  while (c.fd >= 0 && !c.out.empty()) {
    const ssize_t n = Write(c);
    if (n > 0) {
      c.out.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) break;
    Close(i);
    if (on_closed_) on_closed_(i);
    return;
  }
  if (c.fd >= 0) SetInterest(i);
}

void FrameLoop::SetInterest(size_t i) {
  Conn& c = conns_[i];
  const bool want = !c.out.empty() && !c.write_wants_read;
  if (want != c.want_write) {
    c.want_write = want;
    epoll_event ev{};
    ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
    ev.data.u64 = i;
    epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
  }
}

void FrameLoop::ReadFrom(size_t i) {
  char buf[65536];
  while (conns_[i].fd >= 0) {
    const ssize_t n = Read(conns_[i], buf, sizeof buf);
    if (n > 0) {
      Conn& c = conns_[i];
      c.in.append(buf, static_cast<size_t>(n));
      size_t off = 0;
      while (true) {
        codec::FrameView f;
        size_t used = 0;
        if (codec::DecodeFrame(std::string_view(c.in).substr(off), f, used) !=
            codec::DecodeStatus::kOk)
          break;
        if (on_frame_) on_frame_(i, f.type, f.body);
        if (conns_[i].fd < 0) return;
        off += used;
      }
      conns_[i].in.erase(0, off);
      continue;
    }
    if (n == 0) {
      if (conns_[i].write_wants_read) Flush(i);  // TLS: the handshake moved on
      return;
    }
    Close(i);
    if (on_closed_) on_closed_(i);
    return;
  }
}

void FrameLoop::Poll(int timeout_ms) {
  std::vector<size_t> dirty;
  dirty.swap(dirty_);
  for (size_t i : dirty) Flush(i);
  epoll_event evs[512];
  int n = epoll_wait(ep_, evs, 512, timeout_ms);
  for (int k = 0; k < n; ++k) {
    const size_t i = evs[k].data.u64;
    if (i >= conns_.size() || conns_[i].fd < 0) continue;
    if (evs[k].events & EPOLLOUT) Flush(i);
    if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) ReadFrom(i);
  }
  dirty.clear();
  dirty.swap(dirty_);
  for (size_t i : dirty) Flush(i);
}

uint64_t FrameLoop::bytes_queued() const {
  uint64_t n = 0;
  for (const auto& c : conns_) n += c.out.size();
  return n;
}

}  // namespace meshchat::bench
