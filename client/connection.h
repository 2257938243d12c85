// A blocking TCP connection that speaks the client framing (docs/PROTOCOL.md). Reads are
// bounded by the same frame limit the server uses.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "codec/frame.h"

namespace meshchat::client {

struct Frame {
  uint8_t type = 0;
  std::string body;
};

class Connection {
 public:
  Connection() = default;
  ~Connection();
  Connection(Connection&& o) noexcept;
  Connection& operator=(Connection&& o) noexcept;

  // host may be a name or an IPv4/IPv6 address.
  static Result<Connection> Dial(const std::string& host, uint16_t port, int timeout_ms);
  Status SendRaw(std::string_view bytes);
  Status SendFrame(uint8_t type, std::string_view body);
  // One whole frame, or kTimeout after timeout_ms (-1 = wait forever), or kUnavailable when
  // the server closed the connection.
  Result<Frame> ReadFrame(int timeout_ms);
  // True if a whole frame is already buffered (no syscall needed to read it).
  bool HasBufferedFrame() const;
  int fd() const { return fd_; }
  void Close();

 private:
  explicit Connection(int fd) : fd_(fd) {}
  int fd_ = -1;
  std::string in_;
};

}  // namespace meshchat::client
