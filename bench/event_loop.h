// A minimal epoll loop over many non-blocking client TCP connections, for the load generator.
// Frames are split with the meshchat codec; MQTT connections use their own library and only
// borrow the fd registration.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

typedef struct ssl_st SSL;

namespace meshchat::client {
class TlsClientContext;
}

namespace meshchat::bench {

int64_t NowNs();  // CLOCK_MONOTONIC: the same clock in every process on this machine

class FrameLoop {
 public:
  using OnFrame = std::function<void(size_t conn, uint8_t type, std::string_view body)>;
  using OnClosed = std::function<void(size_t conn)>;

  FrameLoop();
  ~FrameLoop();
  void SetHandlers(OnFrame f, OnClosed c) {
    on_frame_ = std::move(f);
    on_closed_ = std::move(c);
  }
  // Connections made from now on speak TLS, checking the server against `ca_file`.
  bool EnableTls(const std::string& ca_file);
  // Starts a non-blocking connect; returns the connection's index, or -1.
  int Connect(const std::string& host, uint16_t port);
  void Send(size_t conn, uint8_t type, std::string_view body);
  void Close(size_t conn);
  bool open(size_t conn) const { return conns_[conn].fd >= 0; }
  // Waits up to timeout_ms for I/O, handles it, flushes output.
  void Poll(int timeout_ms);
  size_t size() const { return conns_.size(); }
  uint64_t bytes_queued() const;  // O(connections): for reports, not per poll

 private:
  struct Conn {
    int fd = -1;
    std::string in, out;
    bool want_write = false;
    SSL* ssl = nullptr;
    bool write_wants_read = false;  // TLS: the handshake waits for the server
  };
  // One read or write, plain or TLS: bytes moved, 0 (try later) or -1 (closed).
  ssize_t Read(Conn& c, char* buf, size_t n);
  ssize_t Write(Conn& c);
  void SetInterest(size_t i);
  void Flush(size_t i);
  void ReadFrom(size_t i);
  int ep_ = -1;
  std::shared_ptr<client::TlsClientContext> tls_;
  std::vector<Conn> conns_;
  std::vector<size_t> dirty_;
  OnFrame on_frame_;
  OnClosed on_closed_;
};

}  // namespace meshchat::bench
