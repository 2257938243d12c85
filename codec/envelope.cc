#include "codec/envelope.h"

#include "codec/client_messages.h"
#include "codec/msgpack_view.h"

namespace meshchat::codec {

const char* MeshTypeName(uint8_t t) {
  switch (static_cast<MeshType>(t)) {
    case MeshType::kHeartbeat: return "heartbeat";
    case MeshType::kConnOpen: return "conn_open";
    case MeshType::kConnClose: return "conn_close";
    case MeshType::kClientFrame: return "client_frame";
    case MeshType::kToClient: return "to_client";
    case MeshType::kCloseConn: return "close_conn";
    case MeshType::kDeliver: return "deliver";
    case MeshType::kDeliverResult: return "deliver_result";
    case MeshType::kStatusReq: return "status_req";
    case MeshType::kStatusResp: return "status_resp";
    case MeshType::kWrongOwner: return "wrong_owner";
    case MeshType::kConnOpened: return "conn_opened";
    case MeshType::kChanMsg: return "chan_msg";
    case MeshType::kChanAck: return "chan_ack";
    case MeshType::kGroupOp: return "group_op";
    case MeshType::kGroupSend: return "group_send";
    case MeshType::kGroupHint: return "group_hint";
    case MeshType::kActivity: return "activity";
    case MeshType::kPresenceQuery: return "presence_query";
    case MeshType::kPresenceWatch: return "presence_watch";
    case MeshType::kWatchOk: return "watch_ok";
    case MeshType::kPrivacy: return "privacy";
    case MeshType::kContact: return "contact";
    case MeshType::kTyping: return "typing";
    case MeshType::kWatchReset: return "watch_reset";
    case MeshType::kDescribeReq: return "describe_req";
    case MeshType::kDescribeResp: return "describe_resp";
    case MeshType::kDrain: return "drain";
    case MeshType::kHistoryReq: return "history_req";
    case MeshType::kMapUpdate: return "map_update";
    case MeshType::kRevoke: return "revoke";
    case MeshType::kConnSync: return "conn_sync";
    case MeshType::kConnSyncDiff: return "conn_sync_diff";
    case MeshType::kPushResync: return "push_resync";
    case MeshType::kPushResyncOk: return "push_resync_ok";
    case MeshType::kReplBatch: return "repl_batch";
    case MeshType::kReplAck: return "repl_ack";
    case MeshType::kReplHello: return "repl_hello";
  }
  return "unknown";
}

namespace {
constexpr uint32_t kEnvelopeFields = 14;
constexpr size_t kMaxKeyBytes = 256;
}  // namespace

void EncodeTo(const Envelope& e, std::string& out) {
  Writer(out)
      .Array(kEnvelopeFields)
      .Uint(kEnvelopeVersion)
      .Uint(static_cast<uint64_t>(e.type))
      .Uint(e.incarnation)
      .Uint(e.epoch)
      .Uint(e.req)
      .Uint(e.arg)
      .Str(e.key)
      .Str(e.stamp.user)
      .Str(e.stamp.device)
      .Uint(e.stamp.conn)
      .Str(e.stamp.gateway)
      .Uint(e.ftype)
      .Bin(e.body)
      .Uint(e.link);
}

std::string Encode(const Envelope& e) {
  std::string s;
  s.reserve(64 + e.body.size());
  EncodeTo(e, s);
  return s;
}

DecodeStatus Decode(std::string_view in, Envelope& out) {
  if (in.size() > kMaxEnvelopeBody + 1024) return DecodeStatus::kTooLarge;
  msgpack::zone zone;
  msgpack::object o;
  UnpackLimits limits;
  limits.array = kEnvelopeFields;
  limits.map = 0;
  limits.depth = 2;
  limits.str = kMaxKeyBytes;
  limits.bin = kMaxEnvelopeBody;
  MC_DECODE_TRY(BoundedUnpack(in, zone, o, limits));
  if (o.type != msgpack::type::ARRAY || o.via.array.size != kEnvelopeFields)
    return DecodeStatus::kMalformed;
  const msgpack::object* f = o.via.array.ptr;
  uint64_t version = 0, type = 0, ftype = 0;
  MC_DECODE_TRY(ReadUint(&f[0], version));
  if (version != kEnvelopeVersion) return DecodeStatus::kMalformed;
  MC_DECODE_TRY(ReadUint(&f[1], type));
  if (type == 0 || type > static_cast<uint64_t>(MeshType::kReplHello))
    return DecodeStatus::kMalformed;
  out.type = static_cast<MeshType>(type);
  MC_DECODE_TRY(ReadUint(&f[2], out.incarnation));
  MC_DECODE_TRY(ReadUint(&f[3], out.epoch));
  MC_DECODE_TRY(ReadUint(&f[4], out.req));
  MC_DECODE_TRY(ReadUint(&f[5], out.arg));
  MC_DECODE_TRY(ReadStr(&f[6], out.key, kMaxKeyBytes));
  MC_DECODE_TRY(ReadStr(&f[7], out.stamp.user, kMaxIdBytes));
  MC_DECODE_TRY(ReadStr(&f[8], out.stamp.device, kMaxIdBytes));
  MC_DECODE_TRY(ReadUint(&f[9], out.stamp.conn));
  MC_DECODE_TRY(ReadStr(&f[10], out.stamp.gateway, kMaxIdBytes));
  MC_DECODE_TRY(ReadUint(&f[11], ftype));
  if (ftype > 0xFF) return DecodeStatus::kMalformed;
  out.ftype = static_cast<uint8_t>(ftype);
  if (f[12].type != msgpack::type::BIN) return DecodeStatus::kMalformed;
  MC_DECODE_TRY(ReadBytes(&f[12], out.body, kMaxEnvelopeBody));
  MC_DECODE_TRY(ReadUint(&f[13], out.link));
  return DecodeStatus::kOk;
}

std::string Encode(const NodeStatus& s) {
  std::string out;
  Writer(out)
      .Map(20)
      .Key("id")
      .Str(s.id)
      .Key("role")
      .Str(s.role)
      .Key("pid")
      .Uint(s.pid)
      .Key("epoch")
      .Uint(s.epoch)
      .Key("uptime_ms")
      .Uint(s.uptime_ms)
      .Key("connections")
      .Uint(s.connections)
      .Key("peers_up")
      .Uint(s.peers_up)
      .Key("peers_total")
      .Uint(s.peers_total)
      .Key("msgs_per_s")
      .Uint(s.msgs_per_s)
      .Key("store_bytes")
      .Uint(s.store_bytes)
      .Key("last_error")
      .Str(s.last_error)
      .Key("queue")
      .Uint(s.queue)
      .Key("handover")
      .Uint(s.handover)
      .Key("load")
      .Uint(s.load)
      .Key("full")
      .Bool(s.full)
      .Key("repl_role")
      .Str(s.repl_role)
      .Key("shard")
      .Str(s.shard)
      .Key("repl_term")
      .Uint(s.repl_term)
      .Key("repl_seq")
      .Uint(s.repl_seq)
      .Key("replicas");
  Writer w(out);
  w.Array(static_cast<uint32_t>(s.replicas.size()));
  for (const auto& r : s.replicas) w.Array(3).Str(r.node).Str(r.state).Uint(r.lag);
  return out;
}

DecodeStatus Decode(std::string_view in, NodeStatus& out) {
  out = NodeStatus{};  // optional fields absent on the wire read as 0
  return DecodeMap(in, [&](const MapView& m) {
    MC_DECODE_TRY(ReadStr(m.Find("id"), out.id, kMaxIdBytes));
    MC_DECODE_TRY(ReadStr(m.Find("role"), out.role, kMaxIdBytes));
    MC_DECODE_TRY(ReadUint(m.Find("pid"), out.pid));
    MC_DECODE_TRY(ReadUint(m.Find("epoch"), out.epoch));
    MC_DECODE_TRY(ReadUint(m.Find("uptime_ms"), out.uptime_ms));
    MC_DECODE_TRY(ReadUint(m.Find("connections"), out.connections));
    MC_DECODE_TRY(ReadUint(m.Find("peers_up"), out.peers_up));
    MC_DECODE_TRY(ReadUint(m.Find("peers_total"), out.peers_total));
    if (m.Find("msgs_per_s")) MC_DECODE_TRY(ReadUint(m.Find("msgs_per_s"), out.msgs_per_s));
    if (m.Find("store_bytes")) MC_DECODE_TRY(ReadUint(m.Find("store_bytes"), out.store_bytes));
    if (m.Find("last_error"))
      MC_DECODE_TRY(ReadStr(m.Find("last_error"), out.last_error, kMaxErrorTextBytes));
    if (m.Find("queue")) MC_DECODE_TRY(ReadUint(m.Find("queue"), out.queue));
    if (m.Find("handover")) MC_DECODE_TRY(ReadUint(m.Find("handover"), out.handover));
    if (m.Find("load")) MC_DECODE_TRY(ReadUint(m.Find("load"), out.load));
    if (m.Find("full")) MC_DECODE_TRY(ReadBool(m.Find("full"), out.full));
    if (m.Find("repl_role")) MC_DECODE_TRY(ReadStr(m.Find("repl_role"), out.repl_role, 16));
    if (m.Find("shard")) MC_DECODE_TRY(ReadStr(m.Find("shard"), out.shard, kMaxIdBytes));
    if (m.Find("repl_term")) MC_DECODE_TRY(ReadUint(m.Find("repl_term"), out.repl_term));
    if (m.Find("repl_seq")) MC_DECODE_TRY(ReadUint(m.Find("repl_seq"), out.repl_seq));
    if (const msgpack::object* rs = m.Find("replicas")) {
      if (rs->type != msgpack::type::ARRAY) return DecodeStatus::kMalformed;
      out.replicas.resize(rs->via.array.size);  // at most the unpack limit's 32
      for (uint32_t i = 0; i < rs->via.array.size; ++i) {
        const msgpack::object& r = rs->via.array.ptr[i];
        if (r.type != msgpack::type::ARRAY || r.via.array.size != 3)
          return DecodeStatus::kMalformed;
        MC_DECODE_TRY(ReadStr(&r.via.array.ptr[0], out.replicas[i].node, kMaxIdBytes));
        MC_DECODE_TRY(ReadStr(&r.via.array.ptr[1], out.replicas[i].state, 16));
        MC_DECODE_TRY(ReadUint(&r.via.array.ptr[2], out.replicas[i].lag));
      }
    }
    return DecodeStatus::kOk;
  });
}

const char* LoadLevelName(LoadLevel level) {
  switch (level) {
    case LoadLevel::kNormal: return "normal";
    case LoadLevel::kShedHints: return "shed_hints";
    case LoadLevel::kDelayReceipts: return "delay_receipts";
    case LoadLevel::kRefuseHeavy: return "refuse_heavy";
  }
  return "?";
}

}  // namespace meshchat::codec
