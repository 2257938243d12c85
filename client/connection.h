// A blocking TCP connection that speaks the client framing (docs/PROTOCOL.md), plain or over
// TLS. Reads are bounded by the same frame limit the server uses.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "codec/frame.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace meshchat::client {

struct Frame {
  uint8_t type = 0;
  std::string body;
};

// How to check a server's certificate: against the CA certificates in `ca_file` (PEM), or
// the system's trusted ones when it is empty. The name checked is the host dialed (a DNS
// name or an IP address in the certificate's subjectAltName).
struct TlsOptions {
  std::string ca_file;
};

// TLS 1.2 or newer with peer verification; built once, shared by many connections.
class TlsClientContext {
 public:
  static Result<std::shared_ptr<TlsClientContext>> Create(const TlsOptions& opts);
  SSL_CTX* get() const { return ctx_.get(); }

 private:
  std::shared_ptr<SSL_CTX> ctx_;
};

class Connection {
 public:
  Connection() = default;
  ~Connection();
  Connection(Connection&& o) noexcept;
  Connection& operator=(Connection&& o) noexcept;

  // host may be a name or an IPv4/IPv6 address. With `tls`, the TLS handshake (and the
  // certificate check) completes within the same timeout.
  static Result<Connection> Dial(const std::string& host, uint16_t port, int timeout_ms,
                                 std::shared_ptr<TlsClientContext> tls = nullptr);
  Status SendRaw(std::string_view bytes);
  Status SendFrame(uint8_t type, std::string_view body);
  // One whole frame, or kTimeout after timeout_ms (-1 = wait forever), or kUnavailable when
  // the server closed the connection.
  Result<Frame> ReadFrame(int timeout_ms);
  // True if a whole frame is already buffered (no syscall needed to read it).
  bool HasBufferedFrame() const;
  int fd() const { return fd_; }
  bool tls() const { return ssl_ != nullptr; }
  void Close();

 private:
  explicit Connection(int fd) : fd_(fd) {}
  // Waits until the socket is readable (POLLIN) or writable (POLLOUT); false on timeout.
  bool WaitFor(short events, int timeout_ms) const;
  Status Handshake(const std::string& host, int timeout_ms);
  int fd_ = -1;
  std::string in_;
  std::shared_ptr<TlsClientContext> tls_;  // keeps ssl_'s context alive
  SSL* ssl_ = nullptr;
};

}  // namespace meshchat::client
