// Users' durable inboxes on their session shard, and the devices reading them.
//
// Each user has one inbox: entries at positions n = 1, 2, ... (messages to and from the user,
// and receipts for messages the user sent), appended exactly once and in conversation order by
// the reliable channel. Each device the user has connected with keeps its own cursor (highest
// position it acknowledged, cumulatively). A connected device is pushed entries after its
// cursor, at most `push_window` unacknowledged at a time, and unacknowledged pushes are sent
// again on a backing-off timer: only the device's ack moves its cursor. An entry is deleted
// once every remembered device has acknowledged it, or when it expires (the sender is then
// told, if no device ever got it).
//
// Receipts: when a device's ack first covers messages from a peer (the first of the user's
// devices to get them), a `delivered` receipt up to the highest such sequence goes to the
// peer's inbox; `read` frames send `read` receipts (read implies delivered).
#pragma once

#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "codec/conn_sync.h"
#include "nodes/session/session_context.h"
#include "nodes/shard/records.h"

namespace meshchat::nodes {

struct DeviceConn {
  std::string device;
  std::string gateway;
  uint64_t conn = 0;
  bool operator==(const DeviceConn&) const = default;
};

class Inboxes {
 public:
  explicit Inboxes(SessionContext& ctx) : ctx_(ctx) {}

  // A device authenticated on a gateway: register it (or refuse), answer conn_opened, and
  // push what is pending for it.
  Status OnConnOpen(const codec::Stamp& s, Effects& fx);
  void OnConnClose(const codec::Stamp& s);
  // Forgets every connection through `gateway`; returns the users that had one.
  std::vector<std::string> ForgetGateway(const std::string& gateway);
  // A gateway's digest of the connections it believes we hold (codec/conn_sync.h): the
  // connections we hold from it in every bucket that differs, to send back; nullopt when
  // the views agree. At most kMaxConnListEntries; later buckets wait for the next digest.
  std::optional<codec::ConnList> CompareWith(const std::string& gateway,
                                             const codec::ConnDigest& theirs) const;
  // Forgets the connections of users whose keys moved to another shard (their gateways
  // announce them there).
  void ForgetUsers(const std::function<bool(const std::string& user)>& moved);

  Status OnAck(const codec::Stamp& s, uint64_t n, Effects& fx);
  Status OnRead(const codec::Stamp& s, const codec::Read& r, Effects& fx);
  // An entry arriving over the reliable channel, for each of its users.
  Status Apply(const InboxAppend& a, Effects& fx);
  // Sends a frame to every connected device of `user` (not stored: hints).
  void Notify(const std::string& user, uint8_t type, const std::string& body, Effects& fx);
  // The groups the user is a member of (kept from membership messages).
  std::vector<std::string> GroupsOf(const std::string& user);
  // Pushes to every connection through `gateway` start over from its device's cursor: the
  // gateway lost envelopes from us (kPushResync), so what it forwarded may have holes.
  Status RestartPushes(const std::string& gateway, Effects& fx);
  // Resends timed-out pushes.
  Status OnTick(Effects& fx);
  // Deletes up to `max` expired entries; tells senders of undelivered ones.
  Status ExpireDue(size_t max, Effects& fx);
  void OnCommitFailed();

  size_t connections() const;
  struct Stats {
    uint64_t pushed = 0;  // pushes and receipts written to devices (resends included)
    uint64_t resent = 0;  // of which resent after the device did not acknowledge in time
    uint64_t acks = 0;    // acks received from devices
  };
  const Stats& stats() const { return stats_; }
  std::vector<DeviceConn> ConnectionsOf(const std::string& user) const;
  Result<UserState> LoadUser(const std::string& user);

 private:
  Stats stats_;
  struct Conn {
    DeviceConn dc;
    uint64_t sent_upto = 0;  // highest position pushed on this connection
    // Pushes not yet acknowledged: (position, frame body bytes), for the byte window.
    std::deque<std::pair<uint64_t, size_t>> inflight;
    size_t inflight_bytes = 0;
    void Resend(uint64_t from) {  // pushes after `from` go again
      sent_upto = from;
      inflight.clear();
      inflight_bytes = 0;
    }
    uint64_t cursor = 0;  // mirror of the device's stored cursor (no store read per tick)
    int64_t last_progress_ms = 0;
    int64_t rto_ms = 0;
    bool needs_pump = false;
  };
  Status ApplyOne(const std::string& user, const InboxEntry& entry, Effects& fx);
  Status SaveUser(const std::string& user, const UserState& us);
  Result<ChatState> LoadChat(const std::string& user, const std::string& peer);
  Status SaveChat(const std::string& user, const std::string& peer, const ChatState& cs);
  Status Pump(const std::string& user, Conn& c, UserState& us, bool& dirty, Effects& fx);
  Status EmitDelivered(const std::string& user, uint64_t from_n, uint64_t to_n, Effects& fx);
  Status Collect(const std::string& user, UserState& us);
  Status SendReceipt(const std::string& to_user, const std::string& chat, codec::ReceiptKind kind,
                     uint64_t seq, Effects& fx);
  Conn* FindConn(const codec::Stamp& s);

  SessionContext& ctx_;
  std::unordered_map<std::string, std::vector<Conn>> conns_;  // by user
};

std::string InboxKey(const std::string& user, uint64_t n);

}  // namespace meshchat::nodes
