#include "client/connection.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "base/tls_util.h"

namespace meshchat::client {
namespace {}  // namespace

Result<std::shared_ptr<TlsClientContext>> TlsClientContext::Create(const TlsOptions& opts) {
  ERR_clear_error();
  auto out = std::make_shared<TlsClientContext>();
  out->ctx_.reset(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  SSL_CTX* c = out->ctx_.get();
  if (!c) return Status(Code::kIo, "SSL_CTX_new: " + TakeSslErrors());
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  const int ok = opts.ca_file.empty()
                     ? SSL_CTX_set_default_verify_paths(c)
                     : SSL_CTX_load_verify_locations(c, opts.ca_file.c_str(), nullptr);
  if (ok != 1)
    return Status(Code::kInvalid,
                  "cannot load CA certificates " +
                      (opts.ca_file.empty() ? std::string("(system)") : opts.ca_file) + ": " +
                      TakeSslErrors());
  return out;
}

Connection::~Connection() {
  Close();
}

Connection::Connection(Connection&& o) noexcept
    : fd_(o.fd_), in_(std::move(o.in_)), tls_(std::move(o.tls_)), ssl_(o.ssl_) {
  o.fd_ = -1;
  o.ssl_ = nullptr;
}

Connection& Connection::operator=(Connection&& o) noexcept {
  if (this != &o) {
    Close();
    fd_ = o.fd_;
    in_ = std::move(o.in_);
    tls_ = std::move(o.tls_);
    ssl_ = o.ssl_;
    o.fd_ = -1;
    o.ssl_ = nullptr;
  }
  return *this;
}

void Connection::Close() {
  if (ssl_) {
    SSL_free(ssl_);  // no close_notify: the frames say goodbye (bye), and a reset is harmless
    ssl_ = nullptr;
  }
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

bool Connection::WaitFor(short events, int timeout_ms) const {
  pollfd p{fd_, events, 0};
  while (true) {
    const int r = poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    return r == 1;
  }
}

Status Connection::Handshake(const std::string& host, int timeout_ms) {
  ERR_clear_error();
  ssl_ = SSL_new(tls_->get());
  if (!ssl_ || SSL_set_fd(ssl_, fd_) != 1) return Status(Code::kIo, "SSL_new: " + TakeSslErrors());
  // The certificate must name what we dialed: an IP address, or a DNS name (also sent as SNI).
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
  if (IsIpAddress(host)) {
    X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl_, host.c_str());
    SSL_set1_host(ssl_, host.c_str());
  }
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    ERR_clear_error();
    const int r = SSL_connect(ssl_);
    if (r == 1) return Status::Ok();
    const int err = SSL_get_error(ssl_, r);
    const int left = static_cast<int>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count()));
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      if (!WaitFor(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, left))
        return Status(Code::kTimeout, "TLS handshake with " + host + " timed out");
      continue;
    }
    const long verify = SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK)
      return Status(Code::kUnavailable, "TLS: the server's certificate is not trusted for " + host +
                                            ": " + X509_verify_cert_error_string(verify));
    return Status(Code::kUnavailable, "TLS handshake with " + host + " failed: " + TakeSslErrors() +
                                          " (is the server speaking TLS?)");
  }
}

Result<Connection> Connection::Dial(const std::string& host, uint16_t port, int timeout_ms,
                                    std::shared_ptr<TlsClientContext> tls) {
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
      Connection c(fd);
      if (tls) {
        c.tls_ = std::move(tls);
        if (Status s = c.Handshake(host, timeout_ms); !s.ok()) return s;
      }
      return c;
    }
    last = Status(Code::kUnavailable, "cannot connect to " + host + ":" + std::to_string(port) +
                                          ": " + strerror(errno));
    close(fd);
  }
  freeaddrinfo(res);
  return last;
}

Status Connection::SendRaw(std::string_view bytes) {
  while (ssl_ && !bytes.empty()) {
    ERR_clear_error();
    const int n =
        SSL_write(ssl_, bytes.data(), static_cast<int>(std::min<size_t>(bytes.size(), 1 << 30)));
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    const int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
      if (!WaitFor(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, 10'000))
        return {Code::kTimeout, "send timed out"};
      continue;
    }
    return {Code::kUnavailable, "TLS send failed: " + TakeSslErrors()};
  }
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
    if (ssl_) {
      // Decrypted bytes OpenSSL already holds are not visible to poll().
      if (SSL_pending(ssl_) == 0 && !WaitFor(POLLIN, wait))
        return Status(Code::kTimeout, "no frame within the timeout");
      ERR_clear_error();
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n > 0) {
        in_.append(buf, static_cast<size_t>(n));
        continue;
      }
      const int err = SSL_get_error(ssl_, n);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        if (err == SSL_ERROR_WANT_WRITE) WaitFor(POLLOUT, wait);
        if (wait == 0) return Status(Code::kTimeout, "no frame within the timeout");
        continue;
      }
      return Status(Code::kUnavailable, "connection closed by the server");
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
