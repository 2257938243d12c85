// Non-blocking TCP front end for client connections, on the node's reactor (epoll).
// It splits the byte stream into frames using only the 5-byte header and hands whole frames to
// callbacks; it never looks at a body. Memory per connection is bounded: input is buffered only
// while a frame is incomplete (and a frame's declared length is checked against the maximum
// before any byte of it is kept), output is capped per connection (a client that does not
// read is disconnected; it loses nothing, because undelivered messages stay in its inbox).
// Output is coalesced: frames queued during a loop turn go out in one write() at turn end.
// With a TLS context the same happens over TLS (OpenSSL on the non-blocking socket): the
// handshake must complete within the frame deadline, and idle connections hold no record
// buffers (SSL_MODE_RELEASE_BUFFERS).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "codec/frame.h"
#include "net/tls_server.h"
#include "router/reactor.h"

namespace meshchat::nodes {

struct ListenerConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  int backlog = 4096;
  size_t max_out_bytes = 4u << 20;  // per connection
  size_t max_connections = 19'000;  // stays under the 20k open-file limit
  // Slowloris: a frame once started must be complete within this long, plus one second per
  // `min_frame_bytes_per_s` of its declared length (a 1 MiB frame: 10 s + 128 s at 8 KiB/s).
  // Otherwise the connection is closed. Idle connections (no frame started) are not limited.
  int64_t frame_deadline_ms = 10'000;
  size_t min_frame_bytes_per_s = 8192;
  SslCtxPtr tls;  // null: plain TCP (only when configured so explicitly, see GatewayService)
  // Before a connection is authenticated (MarkAuthenticated) its frames may be at most this
  // large (a hello is a few hundred bytes), and all such connections together may hold at
  // most `max_unauth_buffered` bytes of incomplete frames: strangers cannot make the gateway
  // buffer 1 MiB each. Past the total, the connection that would exceed it is closed.
  uint32_t max_hello_frame = codec::kMaxHelloFrameLength;
  size_t max_unauth_buffered = 8u << 20;
};

struct ListenerStats {
  uint64_t accepted = 0;
  uint64_t refused = 0;  // over the connection cap, or refused by `allow`
  uint64_t frames_in = 0;
  uint64_t slow_consumers = 0;
  uint64_t accept_errors = 0;     // accept() failures other than "try again" (EMFILE, ENFILE...)
  uint64_t slow_frames = 0;       // closed: a started frame did not complete in time
  uint64_t tls_failures = 0;      // closed: TLS handshake or record error (e.g. a plaintext client)
  uint64_t unauth_overflows = 0;  // closed: unauthenticated input over max_unauth_buffered
};

class ClientListener {
 public:
  struct Callbacks {
    std::function<void(uint64_t conn, const std::string& addr)> on_open;  // addr: client IP
    std::function<void(uint64_t conn, const codec::FrameView& frame)> on_frame;
    std::function<void(uint64_t conn, codec::DecodeStatus why)> on_bad_frame;
    std::function<void(uint64_t conn)> on_closed;
    // Optional: false refuses a new connection from `addr` (closed at once, never read).
    std::function<bool(const std::string& addr)> allow;
  };

  ClientListener(router::Reactor& reactor, ListenerConfig cfg, Callbacks cb);
  ~ClientListener();

  // Binds and listens. Start-up only: throws std::system_error on failure.
  void Start();
  uint16_t port() const { return port_; }
  // Queues bytes for a connection; ignored if it is gone or closing.
  void Write(uint64_t conn, std::string_view bytes);
  // The connection passed hello: frames up to kMaxFrameLength from now on.
  void MarkAuthenticated(uint64_t conn);
  size_t unauth_buffered() const { return unauth_buffered_; }
  // Closes once queued output is flushed (or after a short grace period).
  void CloseAfterFlush(uint64_t conn);
  void StopAccepting();
  // A new TLS context (a renewed certificate) for connections accepted from now on.
  void SetTls(SslCtxPtr tls) { cfg_.tls = std::move(tls); }
  bool tls() const { return cfg_.tls != nullptr; }
  size_t size() const { return conns_.size(); }
  uint64_t QueuedBytes() const;  // output waiting for clients, all connections
  const ListenerStats& stats() const { return stats_; }

 private:
  int64_t last_accept_log_ms_ = 0;
  int64_t NowMs() const { return reactor_.clock().MonoMs(); }  // the loop's injected clock
  struct Conn {
    int fd = -1;
    bool closing = false;
    bool want_write = false;
    int64_t close_deadline_ms = 0;
    std::string in;                   // bytes of an incomplete frame only
    int64_t partial_deadline_ms = 0;  // when `in` must be a whole frame (0: nothing started)
    bool partial_sized = false;       // the deadline counts the frame's declared length
    std::string out;                  // unsent output
    SSL* ssl = nullptr;               // TLS connections only
    bool handshaking = false;         // TLS: handshake not finished (deadline running)
    bool read_wants_write = false;    // TLS: SSL_read needs the socket writable
    bool write_wants_read = false;    // TLS: SSL_write needs the socket readable
    bool tls_dead = false;            // TLS: a fatal error (no close_notify may follow)
    bool authed = false;              // MarkAuthenticated: larger frames allowed
    size_t counted_in = 0;            // bytes of `in` counted in unauth_buffered_
  };
  uint32_t MaxFrame(const Conn& c) const {
    return c.authed ? codec::kMaxFrameLength : cfg_.max_hello_frame;
  }
  // Counts an unauthenticated connection's buffered input; false (closed) over the bound.
  bool BoundUnauthenticated(uint64_t id, Conn& c);
  size_t unauth_buffered_ = 0;
  enum class Io { kData, kAgain, kGone };
  // One read or write, plain or TLS. kData sets `n`; kAgain: nothing more for now.
  Io ReadSome(Conn& c, size_t& n);
  Io WriteSome(Conn& c, std::string_view data, size_t& n);
  void UpdateInterest(Conn& c);
  void ReadAll(uint64_t id, uint32_t events);
  void Accept();
  void OnEvents(uint64_t id, uint32_t events);
  // Feeds bytes to the framer. Returns false if the connection was closed meanwhile.
  bool Consume(uint64_t id, std::string_view data);
  // Sets or clears the deadline of the frame being read (slowloris).
  void TrackPartial(Conn& c);
  void Flush(uint64_t id, Conn& c);
  void FlushAll();
  void Destroy(uint64_t id);
  void Sweep();

  router::Reactor& reactor_;
  ListenerConfig cfg_;
  Callbacks cb_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Conn> conns_;
  std::unordered_set<uint64_t> dirty_;
  std::string read_buf_;
  ListenerStats stats_;
};

}  // namespace meshchat::nodes
