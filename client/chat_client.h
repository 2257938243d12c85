// The meshchat client library: connect, authenticate, send, receive, acknowledge.
// Single-threaded and blocking with timeouts; `chat` and the tests are built on it.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <variant>

#include "base/status.h"
#include "client/connection.h"
#include "codec/client_messages.h"
#include "codec/group_messages.h"
#include "codec/history_messages.h"
#include "codec/media_messages.h"
#include "codec/presence_messages.h"

namespace meshchat::client {

struct Pong {
  uint64_t t = 0;
};
// Something the server told us.
using Event =
    std::variant<codec::Sent, codec::Push, codec::Receipt, codec::Error, codec::Bye, Pong,
                 codec::GroupResult, codec::GroupHint, codec::Presence, codec::TypingNotice,
                 codec::UploadState, codec::MediaData, codec::MediaLink, codec::HistoryPage>;

struct Endpoint {
  std::string host;
  uint16_t port = 0;
  bool tls = false;
  TlsOptions tls_opts;  // with tls: how the server's certificate is checked
};

// "tls://HOST:PORT" or "HOST:PORT" -> TLS; "tcp://HOST:PORT" -> plain TCP (by name only).
Result<Endpoint> ParseEndpoint(const std::string& s);
// --server, else $MESHCHAT_SERVER, else the first line of the local mesh's client-endpoints
// file ($MESHCHAT_HOME/var/client-endpoints, or ./var/client-endpoints; its TLS lines are
// checked against the local mesh's development CA, var/tls/ca.pem). `ca_file` (else
// $MESHCHAT_CA) replaces the CA certificates TLS endpoints are checked against.
Result<Endpoint> FindServer(const std::string& flag, const std::string& ca_file = "");

class ChatClient {
 public:
  // Connects and authenticates: returns once `welcome` arrives, or the server's error.
  static Result<ChatClient> Connect(const Endpoint& ep, const std::string& token,
                                    int timeout_ms = 5000);

  const codec::Welcome& welcome() const { return welcome_; }

  // Sends a message; returns its client message id (cid). The `sent` ack arrives as an Event.
  // To retry a send whose ack never came, send again with the same cid: the server stores
  // and delivers it once.
  Result<uint64_t> Send(const std::string& to, std::string_view body);
  // `app`: the app resends on its own (not the user acting): does not refresh last seen.
  Result<uint64_t> Send(const std::string& to, std::string_view body, uint64_t cid,
                        bool app = false);
  // Acknowledges every push and receipt up to inbox position n. Next() does this by itself
  // for what it returns, unless auto_ack is off: once per burst of frames already received
  // (at least every 64), before it returns the last of them.
  Status Ack(uint64_t n);
  // Tells the sender(s) in `chat` that this user has read up to `seq` (blue ticks).
  Status Read(const std::string& chat, uint64_t seq);
  // A group operation; returns the request id its GroupResult will carry (rid is filled in).
  Result<uint64_t> Group(codec::GroupRequest req);
  // A message to a group; returns its cid (answered by `sent` with to = the group).
  Result<uint64_t> SendToGroup(const std::string& group, std::string_view body);
  Result<uint64_t> SendToGroup(const std::string& group, std::string_view body, uint64_t cid);
  Status ReadGroup(const std::string& group, uint64_t seq);
  // Presence: one `presence` event per user; a watch list replaces the previous one and
  // brings `presence` events when those users change.
  Status QueryPresence(const std::vector<std::string>& users);
  Status WatchPresence(const std::vector<std::string>& users);
  Status Typing(const std::string& to, bool on = true, bool group = false);
  Status SetPrivacy(codec::PrivacyMode mode);
  // Makes the one-to-one chat with `to` temporary or permanent, with a disappearing timer in
  // seconds (0 = off); returns the cid its `sent` will carry.
  Result<uint64_t> SetChatMode(const std::string& to, codec::ChatRetention mode, uint64_t timer_s);
  // Asks a page of the chat's history (see codec::History); returns the rid of the
  // HistoryPage event that answers it.
  Result<uint64_t> RequestHistory(codec::History h);
  Status Ping(uint64_t t);
  // Media frames (client/media_transfer.h builds uploads and downloads on these).
  Status UploadBegin(const codec::UploadBegin& m);
  // Frames about one media item: its 16-byte id, then the message.
  template <typename M>
  Status SendMedia(std::string_view id, const M& m) {
    return conn_.SendFrame(static_cast<uint8_t>(codec::TypeOf(m)),
                           std::string(id) + codec::Encode(m));
  }
  // A message carrying a media reference (the bytes were uploaded first).
  Result<uint64_t> SendWithMedia(const std::string& to, std::string_view body,
                                 const codec::MediaRef& media);
  Result<uint64_t> SendToGroupWithMedia(const std::string& group, std::string_view body,
                                        const codec::MediaRef& media);
  Status Bye();
  // The next event, or kTimeout / kUnavailable (connection closed).
  Result<Event> Next(int timeout_ms);
  void set_auto_ack(bool on) { auto_ack_ = on; }
  // Called with every push the server sends, before repeats and echoes are filtered out
  // (test tools judge what the server did, not only what an app shows).
  void set_push_observer(std::function<void(const codec::Push&)> f) {
    push_observer_ = std::move(f);
  }
  // Highest inbox position already processed (pushes at or below it are duplicates: they are
  // acknowledged again and not returned). Persist it to survive restarts.
  uint64_t last_n() const { return last_n_; }
  void set_last_n(uint64_t n) { last_n_ = n; }
  int fd() const { return conn_.fd(); }
  bool HasBufferedEvent() const { return conn_.HasBufferedFrame(); }

 private:
  explicit ChatClient(Connection c) : conn_(std::move(c)) {}
  Result<Event> NextFrame(int timeout_ms);
  // A send or group_send: waits out rate limiting, checks the body size, returns the cid.
  template <typename M>
  Result<uint64_t> SendMessage(const M& m);
  Connection conn_;
  codec::Welcome welcome_;
  uint64_t next_cid_ = 0;
  uint64_t last_n_ = 0;
  std::function<void(const codec::Push&)> push_observer_;
  uint64_t acked_n_ = 0;  // highest position acknowledged (auto-ack)
  static constexpr uint64_t kAckEvery = 64;
  uint64_t next_rid_ = 1;
  // Back-off: sends wait until `not_before_`. A refusal extends it only if its send left after
  // the back-off in force was set: a burst of refusals for sends already on the wire (read one
  // by one, some after the wait) must not make the client wait once per refusal.
  std::chrono::steady_clock::time_point not_before_{};
  std::chrono::steady_clock::time_point backoff_set_{};
  std::deque<std::pair<uint64_t, std::chrono::steady_clock::time_point>> recent_sends_;  // cid
  void BackOff();
  void Sending(uint64_t cid);
  void Refused(const codec::Error& e);
  bool auto_ack_ = true;
};

// Human-readable one-line form of an error event.
std::string Describe(const codec::Error& e);

}  // namespace meshchat::client
