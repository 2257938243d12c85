#include "net/client_listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <system_error>
#include <vector>

namespace meshchat::nodes {
namespace {
constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kReadBudget = 256 * 1024;  // per connection per turn, for fairness
constexpr int64_t kCloseGraceMs = 1000;

}  // namespace

ClientListener::ClientListener(router::Reactor& reactor, ListenerConfig cfg, Callbacks cb)
    : reactor_(reactor), cfg_(std::move(cfg)), cb_(std::move(cb)) {
  read_buf_.resize(kReadChunk);
}

ClientListener::~ClientListener() {
  for (auto& [id, c] : conns_) {
    if (c.ssl) SSL_free(c.ssl);
    close(c.fd);
  }
  if (listen_fd_ >= 0) close(listen_fd_);
}

void ClientListener::Start() {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::system_error(errno, std::generic_category(), "socket");
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(cfg_.port);
  if (inet_pton(AF_INET, cfg_.host.c_str(), &addr.sin_addr) != 1)
    throw std::runtime_error("client endpoint host must be an IPv4 address: " + cfg_.host);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw std::system_error(errno, std::generic_category(),
                            "bind " + cfg_.host + ":" + std::to_string(cfg_.port));
  if (listen(listen_fd_, cfg_.backlog) != 0)
    throw std::system_error(errno, std::generic_category(), "listen");
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  auto st = reactor_.AddFd(listen_fd_, EPOLLIN, [this](uint32_t) { Accept(); });
  if (!st.ok()) throw std::runtime_error(st.ToString());
  reactor_.OnTurnEnd([this] { FlushAll(); });
  reactor_.Every(250, [this] { Sweep(); });
}

void ClientListener::StopAccepting() {
  if (listen_fd_ < 0) return;
  reactor_.RemoveFd(listen_fd_);
  close(listen_fd_);
  listen_fd_ = -1;
}

void ClientListener::Accept() {
  for (int i = 0; i < 1024; ++i) {
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof peer;
    int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &peer_len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      // EMFILE etc.: keep serving the rest; a connection storm must not flood the log.
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        ++stats_.accept_errors;
        const int64_t now = NowMs();
        if (now - last_accept_log_ms_ >= 1000) {
          last_accept_log_ms_ = now;
          spdlog::warn("accept: {} ({} accept errors so far)", strerror(errno),
                       stats_.accept_errors);
        }
      }
      return;
    }
    char host[INET6_ADDRSTRLEN] = "";
    if (peer.ss_family == AF_INET)
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&peer)->sin_addr, host, sizeof host);
    else if (peer.ss_family == AF_INET6)
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&peer)->sin6_addr, host, sizeof host);
    const std::string addr = host;
    if (conns_.size() >= cfg_.max_connections || (cb_.allow && !cb_.allow(addr))) {
      ++stats_.refused;
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const uint64_t id = next_id_++;
    if (!reactor_.AddFd(fd, EPOLLIN | EPOLLRDHUP, [this, id](uint32_t ev) { OnEvents(id, ev); })
             .ok()) {
      close(fd);
      continue;
    }
    Conn& c = conns_[id];
    c.fd = fd;
    if (cfg_.tls) {
      c.ssl = SSL_new(cfg_.tls.get());
      if (!c.ssl || SSL_set_fd(c.ssl, fd) != 1) {
        spdlog::warn("TLS: cannot set up a connection: {}", TakeSslErrors());
        if (c.ssl) SSL_free(c.ssl);
        reactor_.RemoveFd(fd);
        close(fd);
        conns_.erase(id);
        continue;
      }
      SSL_set_accept_state(c.ssl);
      // A handshake is a frame like any other for slowloris: it must finish in time.
      c.handshaking = true;
      c.partial_deadline_ms = NowMs() + cfg_.frame_deadline_ms;
    }
    ++stats_.accepted;
    if (cb_.on_open) cb_.on_open(id, addr);
  }
}

void ClientListener::OnEvents(uint64_t id, uint32_t events) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  if (events & EPOLLOUT) {
    Flush(id, it->second);
    it = conns_.find(id);
    if (it == conns_.end()) return;
  }
  // TLS: a read that waited for the socket to be writable (handshake output) goes on.
  const bool readable = (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) ||
                        (it->second.read_wants_write && (events & EPOLLOUT));
  if (!readable) return;
  ReadAll(id, events);
  it = conns_.find(id);
  // TLS: a write that waited for input (handshake) goes on.
  if (it != conns_.end() && it->second.write_wants_read) Flush(id, it->second);
}

void ClientListener::ReadAll(uint64_t id, uint32_t events) {
  size_t budget = kReadBudget;
  while (budget > 0) {
    Conn& c = conns_.at(id);
    size_t n = 0;
    const Io io = ReadSome(c, n);
    if (io == Io::kGone) {
      Destroy(id);  // EOF or error
      return;
    }
    if (c.handshaking && SSL_is_init_finished(c.ssl)) {
      c.handshaking = false;  // the frame deadline starts with the first frame
      c.partial_deadline_ms = 0;
    }
    if (io == Io::kAgain) {
      UpdateInterest(c);
      return;
    }
    budget -= std::min(budget, n);
    // A short plain read emptied the socket (TLS reads stop at a record: no such hint).
    const bool drained = !c.ssl && n < read_buf_.size();
    if (!c.closing) {  // input of a connection we are closing is discarded
      if (!Consume(id, std::string_view(read_buf_.data(), n))) return;
      if (!BoundUnauthenticated(id, conns_.at(id))) return;
      TrackPartial(conns_.at(id));
    }
    // Skip the read that would only say EAGAIN (epoll is level-triggered and reports
    // anything that arrives later).
    if (drained && !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
  }
  // Budget spent. Plain: epoll reports the rest. TLS: bytes OpenSSL already took off the
  // socket are invisible to epoll, so come back next turn.
  const Conn& c = conns_.at(id);
  if (c.ssl && SSL_has_pending(c.ssl))
    reactor_.After(0, [this, id] {
      if (conns_.count(id)) ReadAll(id, EPOLLIN);
    });
}

ClientListener::Io ClientListener::ReadSome(Conn& c, size_t& n) {
  if (!c.ssl) {
    while (true) {
      const ssize_t r = read(c.fd, read_buf_.data(), read_buf_.size());
      if (r > 0) {
        n = static_cast<size_t>(r);
        return Io::kData;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Io::kAgain;
      return Io::kGone;
    }
  }
  ERR_clear_error();
  c.read_wants_write = false;
  const int r = SSL_read(c.ssl, read_buf_.data(), static_cast<int>(read_buf_.size()));
  if (r > 0) {
    n = static_cast<size_t>(r);
    return Io::kData;
  }
  switch (SSL_get_error(c.ssl, r)) {
    case SSL_ERROR_WANT_READ: return Io::kAgain;
    case SSL_ERROR_WANT_WRITE: c.read_wants_write = true; return Io::kAgain;
    case SSL_ERROR_ZERO_RETURN:  // close_notify: a clean goodbye
      return Io::kGone;
    case SSL_ERROR_SYSCALL:  // reset or EOF: a failure only if the handshake never finished
      if (c.handshaking) ++stats_.tls_failures;
      c.tls_dead = true;
      return Io::kGone;
    default:  // a protocol error: plaintext on a TLS port, a bad record, no common suite...
      ++stats_.tls_failures;
      c.tls_dead = true;
      spdlog::debug("TLS connection failed: {}", TakeSslErrors());
      return Io::kGone;
  }
}

ClientListener::Io ClientListener::WriteSome(Conn& c, std::string_view data, size_t& n) {
  if (!c.ssl) {
    while (true) {
      const ssize_t r = send(c.fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (r > 0) {
        n = static_cast<size_t>(r);
        return Io::kData;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Io::kAgain;
      return Io::kGone;  // peer reset
    }
  }
  ERR_clear_error();
  c.write_wants_read = false;
  const int r =
      SSL_write(c.ssl, data.data(), static_cast<int>(std::min<size_t>(data.size(), INT_MAX)));
  if (r > 0) {
    n = static_cast<size_t>(r);
    return Io::kData;
  }
  switch (SSL_get_error(c.ssl, r)) {
    case SSL_ERROR_WANT_WRITE: return Io::kAgain;
    case SSL_ERROR_WANT_READ: c.write_wants_read = true; return Io::kAgain;
    default: c.tls_dead = true; return Io::kGone;
  }
}

void ClientListener::UpdateInterest(Conn& c) {
  const bool want = (!c.out.empty() && !c.write_wants_read) || c.read_wants_write;
  if (want != c.want_write) {
    c.want_write = want;
    (void)reactor_.ModFd(c.fd, EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0u));
  }
}

bool ClientListener::Consume(uint64_t id, std::string_view data) {
  auto still_open = [&] {
    auto it = conns_.find(id);
    return it != conns_.end() && !it->second.closing;
  };
  Conn* c = &conns_.at(id);
  // Complete a frame started in an earlier read.
  if (!c->in.empty()) {
    codec::FrameHeader h;
    if (c->in.size() < codec::kHeaderSize) {
      size_t take = std::min(codec::kHeaderSize - c->in.size(), data.size());
      c->in.append(data.substr(0, take));
      data.remove_prefix(take);
    }
    auto s = codec::DecodeHeader(c->in, h, MaxFrame(*c));
    if (s == codec::DecodeStatus::kNeedMore) return true;
    if (s != codec::DecodeStatus::kOk) {
      cb_.on_bad_frame(id, s);
      return false;
    }
    size_t take = std::min(h.frame_size() - c->in.size(), data.size());
    c->in.append(data.substr(0, take));
    data.remove_prefix(take);
    if (c->in.size() < h.frame_size()) return true;
    std::string frame = std::move(c->in);
    c->in = std::string();  // release the buffer: idle connections hold no input memory
    c->partial_deadline_ms = 0;
    ++stats_.frames_in;
    cb_.on_frame(id, codec::FrameView{h.type, std::string_view(frame).substr(codec::kHeaderSize)});
    if (!still_open()) return false;
    c = &conns_.at(id);
  }
  // Whole frames straight from the read buffer, without copying.
  while (!data.empty()) {
    codec::FrameView f;
    size_t used = 0;
    auto s = codec::DecodeFrame(data, f, used, MaxFrame(*c));
    if (s == codec::DecodeStatus::kNeedMore) {
      c->in.assign(data);          // header already checked if present: bounded by MaxFrame
      c->partial_deadline_ms = 0;  // a new frame: its own deadline
      return true;
    }
    if (s != codec::DecodeStatus::kOk) {
      cb_.on_bad_frame(id, s);
      return false;
    }
    ++stats_.frames_in;
    cb_.on_frame(id, f);
    if (!still_open()) return false;
    c = &conns_.at(id);
    data.remove_prefix(used);
  }
  return true;
}

void ClientListener::Write(uint64_t id, std::string_view bytes) {
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second.closing) return;
  Conn& c = it->second;
  if (c.out.size() + bytes.size() > cfg_.max_out_bytes) {
    // Slow consumer: it reconnects and drains its inbox; nothing stored is lost.
    ++stats_.slow_consumers;
    c.out.clear();
    c.closing = true;
    c.close_deadline_ms = 0;
    dirty_.insert(id);
    return;
  }
  c.out.append(bytes);
  dirty_.insert(id);
}

void ClientListener::CloseAfterFlush(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second.closing) return;
  it->second.closing = true;
  it->second.close_deadline_ms = NowMs() + kCloseGraceMs;
  dirty_.insert(id);
}

void ClientListener::Flush(uint64_t id, Conn& c) {
  // Written bytes are dropped once at the end, not per write (TLS writes one record at a time).
  size_t done = 0;
  while (done < c.out.size()) {
    size_t n = 0;
    const Io io = WriteSome(c, std::string_view(c.out).substr(done), n);
    if (io == Io::kGone) {
      Destroy(id);
      return;
    }
    if (io == Io::kAgain) break;
    done += n;
  }
  c.out.erase(0, done);
  if (c.out.empty() && c.out.capacity() > 0) c.out = std::string();  // idle: hold nothing
  if (c.closing && c.out.empty()) {
    Destroy(id);
    return;
  }
  UpdateInterest(c);
}

void ClientListener::FlushAll() {
  if (dirty_.empty()) return;
  std::vector<uint64_t> ids(dirty_.begin(), dirty_.end());
  dirty_.clear();
  for (uint64_t id : ids) {
    auto it = conns_.find(id);
    if (it != conns_.end()) Flush(id, it->second);
  }
}

void ClientListener::TrackPartial(Conn& c) {
  if (c.in.empty()) {
    c.partial_deadline_ms = 0;
    return;
  }
  if (c.partial_deadline_ms != 0 && c.partial_sized) return;
  codec::FrameHeader h;
  const bool sized = codec::DecodeHeader(c.in, h) == codec::DecodeStatus::kOk;
  const int64_t size_ms =
      sized ? static_cast<int64_t>(h.frame_size() * 1000 / cfg_.min_frame_bytes_per_s) : 0;
  if (c.partial_deadline_ms == 0) {
    c.partial_deadline_ms = NowMs() + cfg_.frame_deadline_ms + size_ms;
  } else {
    c.partial_deadline_ms += size_ms;  // the header completed: now its length is known
  }
  c.partial_sized = sized;
}

void ClientListener::Sweep() {
  const int64_t now = NowMs();
  std::vector<uint64_t> expired;
  for (auto& [id, c] : conns_) {
    if (c.closing && c.close_deadline_ms < now) expired.push_back(id);
    if (!c.closing && c.partial_deadline_ms != 0 && c.partial_deadline_ms < now) {
      ++stats_.slow_frames;  // a slowloris: closed without a word, it is not a client
      expired.push_back(id);
    }
  }
  for (uint64_t id : expired) Destroy(id);
}

void ClientListener::MarkAuthenticated(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second.authed) return;
  it->second.authed = true;
  unauth_buffered_ -= it->second.counted_in;
  it->second.counted_in = 0;
}

bool ClientListener::BoundUnauthenticated(uint64_t id, Conn& c) {
  if (c.authed) return true;
  unauth_buffered_ = unauth_buffered_ - c.counted_in + c.in.size();
  c.counted_in = c.in.size();
  if (unauth_buffered_ <= cfg_.max_unauth_buffered) return true;
  ++stats_.unauth_overflows;  // closed without a word, as a slowloris
  Destroy(id);
  return false;
}

void ClientListener::Destroy(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  if (!it->second.authed) unauth_buffered_ -= it->second.counted_in;
  reactor_.RemoveFd(it->second.fd);
  if (SSL* ssl = it->second.ssl) {
    // close_notify, best effort, no waiting (never after a fatal error: OpenSSL forbids it)
    if (!it->second.handshaking && !it->second.tls_dead) SSL_shutdown(ssl);
    SSL_free(ssl);
  }
  close(it->second.fd);
  conns_.erase(it);
  dirty_.erase(id);
  if (cb_.on_closed) cb_.on_closed(id);
}

uint64_t ClientListener::QueuedBytes() const {
  uint64_t n = 0;
  for (const auto& [id, c] : conns_) n += c.out.size();
  return n;
}

}  // namespace meshchat::nodes
