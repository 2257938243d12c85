#include "nodes/client_listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <system_error>
#include <vector>

namespace meshchat::nodes {
namespace {
constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kReadBudget = 256 * 1024;  // per connection per turn, for fairness
constexpr int64_t kCloseGraceMs = 1000;

int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}
}  // namespace

ClientListener::ClientListener(router::Reactor& reactor, ListenerConfig cfg, Callbacks cb)
    : reactor_(reactor), cfg_(std::move(cfg)), cb_(std::move(cb)) {
  read_buf_.resize(kReadChunk);
}

ClientListener::~ClientListener() {
  for (auto& [id, c] : conns_) close(c.fd);
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
        const auto now = std::chrono::steady_clock::now();
        if (now - last_accept_log_ >= std::chrono::seconds(1)) {
          last_accept_log_ = now;
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
    conns_[id].fd = fd;
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
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    size_t budget = kReadBudget;
    while (budget > 0) {
      Conn& c = conns_.at(id);
      ssize_t n = read(c.fd, read_buf_.data(), read_buf_.size());
      if (n > 0) {
        budget -= std::min(budget, static_cast<size_t>(n));
        const bool drained = static_cast<size_t>(n) < read_buf_.size();
        if (!c.closing) {  // input of a connection we are closing is discarded
          if (!Consume(id, std::string_view(read_buf_.data(), static_cast<size_t>(n)))) return;
          TrackPartial(conns_.at(id));
        }
        // A short read emptied the socket: skip the read that would only say EAGAIN
        // (epoll is level-triggered and reports anything that arrives later).
        if (drained && !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n < 0 && errno == EINTR) continue;
      Destroy(id);  // EOF or error
      return;
    }
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
    auto s = codec::DecodeHeader(c->in, h);
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
    auto s = codec::DecodeFrame(data, f, used);
    if (s == codec::DecodeStatus::kNeedMore) {
      c->in.assign(data);          // header already checked if present: bounded by kMaxFrameLength
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
  while (!c.out.empty()) {
    ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      c.out.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    Destroy(id);  // peer reset
    return;
  }
  if (c.out.empty() && c.out.capacity() > 0) c.out = std::string();  // idle: hold nothing
  if (c.closing && c.out.empty()) {
    Destroy(id);
    return;
  }
  const bool want = !c.out.empty();
  if (want != c.want_write) {
    c.want_write = want;
    (void)reactor_.ModFd(c.fd, EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0u));
  }
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

void ClientListener::Destroy(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  reactor_.RemoveFd(it->second.fd);
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
