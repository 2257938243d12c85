// Mesh envelopes: what nodes send each other over ZeroMQ (docs/ARCHITECTURE.md, "Mesh
// envelope"). One envelope per ZeroMQ message, encoded as a fixed-position msgpack array so it
// is cheap to build and parse. The client frame a gateway forwards travels as an opaque `body`:
// the gateway never decodes it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "codec/frame.h"

namespace meshchat::codec {

inline constexpr uint64_t kEnvelopeVersion = 2;  // 2: `link` added
// A body is at most one client frame plus a little framing.
inline constexpr size_t kMaxEnvelopeBody = kMaxFrameLength + 4096;

enum class MeshType : uint8_t {
  kHeartbeat = 1,       // every peer, every second
  kConnOpen = 2,        // gateway -> session: stamp authenticated on this gateway
  kConnClose = 3,       // gateway -> session: stamp's connection is gone
  kClientFrame = 4,     // gateway -> session: ftype/body from the stamped connection
  kToClient = 5,        // session -> gateway: write frame ftype/body to stamp.conn
  kCloseConn = 6,       // session -> gateway: close stamp.conn (after queued frames)
  kDeliver = 7,         // session -> session: key = recipient, body = push body, stamp = sender
  kDeliverResult = 8,   // session -> session: req echoed, arg = 0 or an ErrorCode
  kStatusReq = 9,       // operator -> any node
  kStatusResp = 10,     // body = NodeStatus
  kWrongOwner = 11,     // req echoed: the receiver does not own `key` under its map (epoch)
  kConnOpened = 12,     // session -> gateway: stamp registered (arg = 0) or refused (ErrorCode)
  kChanMsg = 13,        // shard -> shard reliable channel: req = sequence, arg = channel id
  kChanAck = 14,        // reply: req = highest sequence applied, arg = channel id
  kGroupOp = 15,        // session -> group owner: key = group, body = GroupRequest, stamp = who
  kGroupSend = 16,      // session -> group owner: key = group, body = GroupSend, stamp = who
  kGroupHint = 17,      // group owner -> session: body = GroupHint, stamp.user = a member
  kActivity = 18,       // session -> presence: key = user, arg = user activity ms (0: none),
                        //   body = [connected devices]
  kPresenceQuery = 19,  // session -> presence: key = target, stamp = asker, arg = asker hides
  kPresenceWatch = 20,  // same, and watch it: req = the asker's watch generation
  kWatchOk = 21,        // presence -> gateway: stamp.conn may watch key; req = generation
  kPrivacy = 22,        // session -> presence: key = user, arg = PrivacyMode
  kContact = 23,        // conversation owner -> presence: key = user, body = the other user
  kTyping = 24,         // -> session of key: stamp = who types, body = TypingNotice
  kWatchReset = 25,     // session -> gateway: stamp.conn's watch list restarts at arg
  kDescribeReq = 26,    // operator -> node: describe `key` (a user, for `meshctl who`)
  kDescribeResp = 27,   // body = a msgpack map, node-specific
  kDrain = 28,          // operator -> gateway: stop accepting, send clients elsewhere
  kHistoryReq = 29,     // session -> conversation owner: key = conversation, body = History
  kMapUpdate = 30,      // operator -> node: body = the new cluster map (text); answered with
                        //   kStatusResp (its epoch says whether the node took it)
  kRevoke = 31,         // operator -> gateway: key = user, stamp.device = device, arg = unix
                        //   seconds of the revocation; answered with kStatusResp
  kConnSync = 32,       // gateway -> session, every second: body = ConnDigest (codec/conn_sync.h)
  kConnSyncDiff = 33,   // session -> gateway: body = ConnList, the buckets that differ
  kPushResync = 34,     // gateway -> session: envelopes from you were lost; req = token
  kPushResyncOk = 35,   // session -> gateway: req echoed; every push after it starts over from
                        //   the devices' cursors
  kReplBatch = 36,      // shard primary -> replica: body = ReplBatch (codec/replication_messages.h)
  kReplAck = 37,        // replica -> primary: req = batch durable, arg = term it follows
  kReplHello = 38,      // replica -> primary: req = its last batch, arg = that batch's term
};
const char* MeshTypeName(uint8_t t);

// Who a client frame came from, stamped by the gateway after authentication so no client can
// speak for another.
struct Stamp {
  std::string user;
  std::string device;
  uint64_t conn = 0;
  std::string gateway;
  bool operator==(const Stamp&) const = default;
};

struct Envelope {
  MeshType type = MeshType::kHeartbeat;
  // Random id of the sending process's lifetime, stamped by the transport on every envelope,
  // so a receiver notices a restarted peer before acting on anything it sent.
  uint64_t incarnation = 0;
  uint64_t epoch = 0;  // cluster-map epoch the sender routed with
  // Per-link sequence, stamped by the transport on every envelope to a peer (1, 2, ... per
  // sender incarnation and receiver; 0: unsequenced, e.g. replies to operators), so the
  // receiver notices envelopes lost in the middle of a stream (router/mesh.h).
  uint64_t link = 0;
  uint64_t req = 0;  // request id, echoed in replies
  uint64_t arg = 0;  // small per-type argument (a result code)
  std::string key;   // the sharding key the message was routed by (user id), may be empty
  Stamp stamp;
  uint8_t ftype = 0;  // client frame type carried in body, if any
  std::string body;
  bool operator==(const Envelope&) const = default;
};

std::string Encode(const Envelope& e);
void EncodeTo(const Envelope& e, std::string& out);
// kOk, kTooLarge or kMalformed; never throws.
DecodeStatus Decode(std::string_view in, Envelope& out);

// A node's load level (nodes/runtime/load_levels.h says what each sheds), as NodeStatus
// carries it.
enum class LoadLevel : uint8_t {
  kNormal = 0,
  kShedHints = 1,
  kDelayReceipts = 2,
  kRefuseHeavy = 3
};
const char* LoadLevelName(LoadLevel level);

// Reply to kStatusReq.
struct NodeStatus {
  std::string id;
  std::string role;
  uint64_t pid = 0;
  uint64_t epoch = 0;
  uint64_t uptime_ms = 0;
  uint64_t connections = 0;  // client connections (gateway) or directory entries (session)
  uint64_t peers_up = 0;
  uint64_t peers_total = 0;
  // Optional on the wire (absent from older nodes: 0).
  uint64_t msgs_per_s = 0;      // mesh envelopes in + out during the last full second
  uint64_t store_bytes = 0;     // bytes of the node's data directory (LMDB files)
  std::string last_error = {};  // newest warning or error logged (at most kMaxErrorTextBytes)
  uint64_t queue = 0;     // work waiting in the node: unacked channel entries and effects waiting
                          // for their fsync (workers), bytes waiting for clients (gateway)
  uint64_t handover = 0;  // keys still moving after a map change: work left, 0 when settled
  uint64_t load = 0;      // a LoadLevel, 0 normal .. 3
  bool full = false;      // queue over its hard cap: new sends refused
  // Replicated shards (nodes/shard/replication.h): "primary" or "replica" ("" unreplicated),
  // the shard's name, the primary's term, the last batch committed (primary) or applied
  // (replica), and, on a primary, each replica's standing.
  struct Replica {
    std::string node;
    std::string state;  // unknown, copying, catching-up, in-sync
    uint64_t lag = 0;   // batches not acknowledged
    bool operator==(const Replica&) const = default;
  };
  std::string repl_role = {};
  std::string shard = {};
  uint64_t repl_term = 0;
  uint64_t repl_seq = 0;
  std::vector<Replica> replicas = {};
  bool operator==(const NodeStatus&) const = default;
};
std::string Encode(const NodeStatus& s);
DecodeStatus Decode(std::string_view in, NodeStatus& out);

}  // namespace meshchat::codec
