#include "client/chat_client.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <thread>

namespace meshchat::client {

using codec::FrameType;

Result<Endpoint> ParseEndpoint(const std::string& text) {
  std::string s = text;
  bool tls = true;  // a bare HOST:PORT is TLS: plaintext is only ever asked for by name
  if (s.rfind("tcp://", 0) == 0) {
    tls = false;
    s = s.substr(6);
  } else if (s.rfind("tls://", 0) == 0) {
    s = s.substr(6);
  }
  const size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return Status(Code::kInvalid, "server must be HOST:PORT, got '" + s + "'");
  char* end = nullptr;
  const long port = std::strtol(s.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || port < 1 || port > 65535)
    return Status(Code::kInvalid, "bad port in '" + s + "'");
  std::string host = s.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return Endpoint{host, static_cast<uint16_t>(port), tls, {}};
}

Result<Endpoint> FindServer(const std::string& flag, const std::string& ca_file) {
  std::string ca = ca_file;
  if (const char* env = std::getenv("MESHCHAT_CA"); ca.empty() && env) ca = env;
  auto with_ca = [&](Result<Endpoint> ep) {
    if (ep.ok()) ep->tls_opts.ca_file = ca;
    return ep;
  };
  if (!flag.empty()) return with_ca(ParseEndpoint(flag));
  if (const char* env = std::getenv("MESHCHAT_SERVER"); env && *env)
    return with_ca(ParseEndpoint(env));
  const char* home = std::getenv("MESHCHAT_HOME");
  const std::string var = (home && *home ? std::string(home) : std::string(".")) + "/var";
  const std::string path = var + "/client-endpoints";
  std::ifstream in(path);
  std::string line;
  if (in && std::getline(in, line) && !line.empty()) {
    if (ca.empty()) ca = var + "/tls/ca.pem";  // meshctl up --tls made it
    return with_ca(ParseEndpoint(line));
  }
  return Status(Code::kNotFound,
                "no server given and no local mesh found at " + path +
                    " (start one with scripts/run-local, or pass --server HOST:PORT)");
}

std::string Describe(const codec::Error& e) {
  std::string s = std::string(codec::ErrorCodeName(e.code)) + ": " + e.msg;
  if (e.cid) s += " (cid " + std::to_string(*e.cid) + ")";
  return s;
}

Result<ChatClient> ChatClient::Connect(const Endpoint& ep, const std::string& token,
                                       int timeout_ms) {
  std::shared_ptr<TlsClientContext> tls;
  if (ep.tls) {
    auto t = TlsClientContext::Create(ep.tls_opts);
    if (!t.ok()) return t.status();
    tls = std::move(t).value();
  }
  auto conn = Connection::Dial(ep.host, ep.port, timeout_ms, std::move(tls));
  if (!conn.ok()) return conn.status();
  ChatClient c(std::move(conn).value());
  // cids only need to be unique per sender: start at a random point so a restarted client
  // does not reuse the ids of its previous run.
  std::random_device rd;
  c.next_cid_ = ((uint64_t{rd()} << 20) ^ rd()) + 1;
  codec::Hello hello{codec::kProtocolVersion, token};
  if (Status s = c.conn_.SendFrame(static_cast<uint8_t>(FrameType::kHello), codec::Encode(hello));
      !s.ok())
    return s;
  auto f = c.conn_.ReadFrame(timeout_ms);
  if (!f.ok()) return f.status();
  if (f->type == static_cast<uint8_t>(FrameType::kError)) {
    codec::Error e;
    if (codec::Decode(f->body, e) == codec::DecodeStatus::kOk)
      return Status(Code::kInvalid, "server refused: " + Describe(e));
    return Status(Code::kInvalid, "server refused with an undecodable error");
  }
  if (f->type != static_cast<uint8_t>(FrameType::kWelcome) ||
      codec::Decode(f->body, c.welcome_) != codec::DecodeStatus::kOk)
    return Status(Code::kInvalid, "expected welcome from the server");
  return c;
}

Result<uint64_t> ChatClient::Send(const std::string& to, std::string_view body) {
  return Send(to, body, next_cid_++);
}

void ChatClient::Sending(uint64_t cid) {
  constexpr size_t kRemembered = 4096;  // sends whose refusals can still arrive
  if (recent_sends_.size() == kRemembered) recent_sends_.pop_front();
  recent_sends_.emplace_back(cid, std::chrono::steady_clock::now());
}

void ChatClient::Refused(const codec::Error& e) {
  const auto now = std::chrono::steady_clock::now();
  if (e.cid) {
    for (auto it = recent_sends_.rbegin(); it != recent_sends_.rend(); ++it)
      if (it->first == *e.cid) {
        if (it->second < backoff_set_) return;  // sent before the back-off we already keep
        break;
      }
  }
  not_before_ = std::max(not_before_, now + std::chrono::milliseconds(e.retry_after));
  backoff_set_ = now;
}

void ChatClient::BackOff() {
  // The server said rate_limited (or overloaded) with a retry_after: new sends wait it out.
  if (std::chrono::steady_clock::now() < not_before_) std::this_thread::sleep_until(not_before_);
}

template <typename M>
Result<uint64_t> ChatClient::SendMessage(const M& m) {
  BackOff();
  if (m.body.size() > codec::kMaxBodyBytes)
    return Status(Code::kTooLarge,
                  "message over " + std::to_string(codec::kMaxBodyBytes) + " bytes");
  Sending(m.cid);
  if (Status s = conn_.SendFrame(static_cast<uint8_t>(codec::TypeOf(m)), codec::Encode(m)); !s.ok())
    return s;
  return m.cid;
}

Result<uint64_t> ChatClient::Send(const std::string& to, std::string_view body, uint64_t cid,
                                  bool app) {
  return SendMessage(codec::Send{to, cid, std::string(body), app});
}

Status ChatClient::Ack(uint64_t n) {
  return conn_.SendFrame(static_cast<uint8_t>(FrameType::kAck), codec::Encode(codec::Ack{n}));
}

Status ChatClient::Read(const std::string& chat, uint64_t seq) {
  return conn_.SendFrame(static_cast<uint8_t>(FrameType::kRead),
                         codec::Encode(codec::Read{chat, seq}));
}

Result<uint64_t> ChatClient::Group(codec::GroupRequest req) {
  req.rid = next_rid_++;
  if (Status s = conn_.SendFrame(static_cast<uint8_t>(FrameType::kGroup), codec::Encode(req));
      !s.ok())
    return s;
  return req.rid;
}

Result<uint64_t> ChatClient::SendToGroup(const std::string& group, std::string_view body) {
  return SendToGroup(group, body, next_cid_++);
}

Result<uint64_t> ChatClient::SendToGroup(const std::string& group, std::string_view body,
                                         uint64_t cid) {
  return SendMessage(codec::GroupSend{group, cid, std::string(body)});
}

Status ChatClient::ReadGroup(const std::string& group, uint64_t seq) {
  return conn_.SendFrame(static_cast<uint8_t>(FrameType::kRead),
                         codec::Encode(codec::Read{group, seq, true}));
}

Status ChatClient::QueryPresence(const std::vector<std::string>& users) {
  return conn_.SendFrame(static_cast<uint8_t>(FrameType::kPresenceQuery),
                         codec::Encode(codec::PresenceUsers{users}));
}

Status ChatClient::WatchPresence(const std::vector<std::string>& users) {
  return conn_.SendFrame(static_cast<uint8_t>(FrameType::kPresenceWatch),
                         codec::Encode(codec::PresenceUsers{users}));
}

Status ChatClient::Typing(const std::string& to, bool on, bool group) {
  return conn_.SendFrame(static_cast<uint8_t>(FrameType::kTyping),
                         codec::Encode(codec::Typing{to, group, on}));
}

Status ChatClient::SetPrivacy(codec::PrivacyMode mode) {
  return conn_.SendFrame(static_cast<uint8_t>(FrameType::kPrivacy),
                         codec::Encode(codec::Privacy{mode}));
}

Status ChatClient::UploadBegin(const codec::UploadBegin& m) {
  return conn_.SendFrame(static_cast<uint8_t>(FrameType::kUploadBegin), codec::Encode(m));
}

Result<uint64_t> ChatClient::SendWithMedia(const std::string& to, std::string_view body,
                                           const codec::MediaRef& media) {
  return SendMessage(codec::Send{to, next_cid_++, std::string(body), false, media});
}

Result<uint64_t> ChatClient::SendToGroupWithMedia(const std::string& group, std::string_view body,
                                                  const codec::MediaRef& media) {
  return SendMessage(codec::GroupSend{group, next_cid_++, std::string(body), media});
}

Result<uint64_t> ChatClient::SetChatMode(const std::string& to, codec::ChatRetention mode,
                                         uint64_t timer_s) {
  BackOff();
  const uint64_t cid = next_cid_++;
  Sending(cid);
  codec::ChatMode m{to, cid, codec::RetentionName(mode), timer_s};
  if (Status s = conn_.SendFrame(static_cast<uint8_t>(FrameType::kChatMode), codec::Encode(m));
      !s.ok())
    return s;
  return cid;
}

Result<uint64_t> ChatClient::RequestHistory(codec::History h) {
  h.rid = next_rid_++;
  if (Status s = conn_.SendFrame(static_cast<uint8_t>(FrameType::kHistory), codec::Encode(h));
      !s.ok())
    return s;
  return h.rid;
}

Status ChatClient::Ping(uint64_t t) {
  return conn_.SendFrame(static_cast<uint8_t>(FrameType::kPing), codec::Encode(codec::Ping{t}));
}

Status ChatClient::Bye() {
  return conn_.SendFrame(static_cast<uint8_t>(FrameType::kBye), codec::Encode(codec::Bye{}));
}

namespace {
template <typename M>
Result<Event> DecodeAs(const Frame& f) {
  M m;
  if (codec::Decode(f.body, m) != codec::DecodeStatus::kOk)
    return Status(Code::kInvalid,
                  std::string("server sent an undecodable ") + codec::FrameTypeName(f.type));
  return Event(std::move(m));
}
}  // namespace

Result<Event> ChatClient::Next(int timeout_ms) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    int left = timeout_ms;
    if (timeout_ms > 0)
      left = static_cast<int>(std::max<int64_t>(
          0,
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count()));
    auto ev = NextFrame(left);
    if (!ev.ok()) return ev;
    // Inbox entries (pushes, receipts) are numbered: drop what was already processed (a
    // resend after a lost ack) and the echo of our own sends to this very device.
    uint64_t n = 0;
    bool skip = false;
    if (auto* p = std::get_if<codec::Push>(&*ev)) {
      if (push_observer_) push_observer_(*p);
      n = p->n;
      skip = !p->system && p->from == welcome_.user && p->from_device == welcome_.device;
    } else if (auto* r = std::get_if<codec::Receipt>(&*ev)) {
      n = r->n;
    }
    if (n == 0) return ev;
    if (n <= last_n_) skip = true;
    last_n_ = std::max(last_n_, n);
    // Acks are cumulative: one per burst of frames already read (and at least every 64) is
    // enough. An ack per push made a backlog of thousands trip the gateway's frame rate limit,
    // and the refused acks brought the pushes back (found by scripts/chaos slow-client).
    if (auto_ack_ && last_n_ > acked_n_ &&
        (!conn_.HasBufferedFrame() || last_n_ - acked_n_ >= kAckEvery)) {
      if (Status s = Ack(last_n_); !s.ok()) return s;
      acked_n_ = last_n_;
    }
    if (!skip) return ev;
  }
}

Result<Event> ChatClient::NextFrame(int timeout_ms) {
  auto f = conn_.ReadFrame(timeout_ms);
  if (!f.ok()) return f.status();
  switch (static_cast<FrameType>(f->type)) {
    case FrameType::kSent: return DecodeAs<codec::Sent>(*f);
    case FrameType::kError: {
      auto ev = DecodeAs<codec::Error>(*f);
      if (ev.ok())
        if (auto* e = std::get_if<codec::Error>(&*ev);
            e && e->retry_after)  // rate_limited, or service_unavailable when overloaded
          Refused(*e);
      return ev;
    }
    case FrameType::kBye:
    case FrameType::kReconnect: return DecodeAs<codec::Bye>(*f);  // reason "draining"
    case FrameType::kPong: {
      codec::Ping p;
      if (codec::Decode(f->body, p) != codec::DecodeStatus::kOk)
        return Status(Code::kInvalid, "server sent an undecodable pong");
      return Event(Pong{p.t});
    }
    case FrameType::kPush: return DecodeAs<codec::Push>(*f);
    case FrameType::kReceipt: return DecodeAs<codec::Receipt>(*f);
    case FrameType::kGroupResult: return DecodeAs<codec::GroupResult>(*f);
    case FrameType::kGroupHint: return DecodeAs<codec::GroupHint>(*f);
    case FrameType::kPresence: return DecodeAs<codec::Presence>(*f);
    case FrameType::kTypingNotice: return DecodeAs<codec::TypingNotice>(*f);
    case FrameType::kUploadState: return DecodeAs<codec::UploadState>(*f);
    case FrameType::kMediaData: return DecodeAs<codec::MediaData>(*f);
    case FrameType::kMediaLink: return DecodeAs<codec::MediaLink>(*f);
    case FrameType::kHistoryPage: return DecodeAs<codec::HistoryPage>(*f);
    default:
      return Status(Code::kInvalid,
                    std::string("unexpected frame from server: ") + codec::FrameTypeName(f->type));
  }
}

}  // namespace meshchat::client
