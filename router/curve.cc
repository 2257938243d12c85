#include "router/curve.h"

#include <sys/stat.h>
#include <zmq.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "base/durable_file.h"
#include "codec/media_messages.h"

namespace meshchat::router {
namespace {

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
constexpr size_t kKeyBytes = 32;

std::string Z85(const std::string& bin) {
  char out[41] = {};
  zmq_z85_encode(out, reinterpret_cast<const uint8_t*>(bin.data()), bin.size());
  return out;
}

std::string FromZ85(const char* text) {
  uint8_t bin[kKeyBytes];
  zmq_z85_decode(bin, text);
  return std::string(reinterpret_cast<char*>(bin), kKeyBytes);
}

}  // namespace

CurveKeys GenerateCurveKeys() {
  char pub[41], sec[41];
  if (zmq_curve_keypair(pub, sec) != 0) throw std::runtime_error("CURVE is not available");
  return {FromZ85(pub), FromZ85(sec)};
}

Result<CurveKeys> LoadCurveKeys(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return Status(Code::kNotFound, "no key file " + path);
  if (st.st_mode & 077)
    return Status(Code::kInvalid, "key file " + path + " is readable by others (chmod 600 it)");
  std::ifstream in(path);
  std::string hex;
  in >> hex;
  CurveKeys k;
  if (!codec::UnHex(hex, k.secret_key, kKeyBytes))
    return Status(Code::kInvalid, "key file " + path + " must hold 64 hex digits (lowercase)");
  char pub[41];
  if (zmq_curve_public(pub, Z85(k.secret_key).c_str()) != 0)
    return Status(Code::kInvalid, "key file " + path + ": not a CURVE secret key");
  k.public_key = FromZ85(pub);
  return k;
}

Status SaveCurveKeys(const std::string& path, const CurveKeys& keys) {
  return WriteFileDurably(path, codec::HexOf(keys.secret_key) + "\n", 0600);
}

void MakeCurveServer(zmq::socket_t& s, const CurveKeys& own) {
  s.set(zmq::sockopt::curve_server, 1);
  s.set(zmq::sockopt::curve_secretkey, own.secret_key);
  // libzmq asks the context's ZAP handler, which must be bound first (ZapHandler::Start):
  // without one it would admit everyone who knows our public key.
  s.set(zmq::sockopt::zap_domain, "meshchat");
}

void MakeCurveClient(zmq::socket_t& s, const CurveKeys& own, const std::string& server_public) {
  s.set(zmq::sockopt::curve_serverkey, server_public);
  s.set(zmq::sockopt::curve_publickey, own.public_key);
  s.set(zmq::sockopt::curve_secretkey, own.secret_key);
}

std::map<std::string, std::string> AdmittedKeys(const ClusterMap& map) {
  std::map<std::string, std::string> out;
  for (const auto& n : map.nodes)
    if (!n.curve.empty()) out[n.curve] = n.id;
  for (const auto& op : map.operators) out[op.curve] = "operator:" + op.name;
  return out;
}

ZapDecision DecideZap(const std::vector<std::string>& f,
                      const std::map<std::string, std::string>& admitted) {
  ZapDecision d;
  const std::string request_id = f.size() > 1 ? f[1] : "";
  auto reply = [&](const char* code, const std::string& text, const std::string& user) {
    d.reply = {"1.0", request_id, code, text, user, ""};
  };
  // version, request id, domain, address, routing id, mechanism, credentials...
  if (f.size() < 6 || f[0] != "1.0") {
    d.why = "malformed ZAP request";
    reply("500", "malformed request", "");
    return d;
  }
  const std::string& address = f[3];
  if (f[5] != "CURVE" || f.size() != 7 || f[6].size() != kKeyBytes) {
    d.why = "mechanism " + f[5] + " from " + address + " (only CURVE is admitted)";
    reply("400", "CURVE only", "");
    return d;
  }
  auto it = admitted.find(f[6]);
  if (it == admitted.end()) {
    d.why = "unknown key " + codec::HexOf(f[6]) + " from " + address;
    reply("400", "key not in the cluster map", "");
    return d;
  }
  d.admitted = true;
  d.user_id = it->second;
  reply("200", "OK", it->second);
  return d;
}

ZapHandler::ZapHandler(zmq::context_t& ctx, Reactor& reactor)
    : ctx_(ctx), reactor_(reactor), rep_(ctx, zmq::socket_type::rep) {}

void ZapHandler::Start(std::map<std::string, std::string> admitted) {
  admitted_ = std::move(admitted);
  rep_.set(zmq::sockopt::linger, 0);
  rep_.bind(kZapEndpoint);
  reactor_.AddZmqReader(rep_, [this] { return AnswerOne(); });
}

bool ZapHandler::AnswerOne() {
  std::vector<std::string> frames;
  zmq::message_t m;
  if (!rep_.recv(m, zmq::recv_flags::dontwait)) return false;
  frames.push_back(m.to_string());
  while (m.more() && frames.size() < 16) {
    if (!rep_.recv(m, zmq::recv_flags::dontwait)) break;
    frames.push_back(m.to_string());
  }
  while (m.more()) (void)rep_.recv(m, zmq::recv_flags::dontwait);  // an absurd request: drain
  ZapDecision d = DecideZap(frames, admitted_);
  if (!d.admitted) {
    ++denied_;
    LogLimited("zap", "refused a mesh connection: " + d.why);
  }
  for (size_t i = 0; i < d.reply.size(); ++i)
    (void)rep_.send(zmq::buffer(d.reply[i]),
                    i + 1 < d.reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  return true;
}

void ZapHandler::Watch(zmq::socket_t& server, const std::string& name) {
  const std::string ep =
      "inproc://monitor-" + name + "-" + std::to_string(reinterpret_cast<uintptr_t>(&server));
  if (zmq_socket_monitor(server.handle(), ep.c_str(),
                         ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                             ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0)
    throw std::runtime_error("cannot monitor the " + name + " socket");
  auto pair = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::pair);
  pair->set(zmq::sockopt::linger, 0);
  pair->connect(ep);
  monitors_.emplace_back(std::move(pair), name);
  const size_t i = monitors_.size() - 1;
  reactor_.AddZmqReader(*monitors_[i].first, [this, i] { return MonitorOne(i); });
}

bool ZapHandler::MonitorOne(size_t i) {
  zmq::socket_t& s = *monitors_[i].first;
  zmq::message_t event, addr;
  if (!s.recv(event, zmq::recv_flags::dontwait)) return false;
  if (event.more()) (void)s.recv(addr, zmq::recv_flags::dontwait);
  if (event.size() < 6) return true;
  uint16_t id = 0;
  uint32_t value = 0;
  memcpy(&id, event.data(), 2);
  memcpy(&value, static_cast<const char*>(event.data()) + 2, 4);
  ++handshake_failures_;
  if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) return true;  // the ZAP handler logged why
  // Which side sees a mechanism mismatch first is a race: a plaintext peer that saw our
  // greeting first just closes, which is all we learn then.
  std::string kind = "other", why = "the peer closed it (a plaintext peer, or one that gave up)";
  if (id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
      value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
    kind = "plaintext";
    why = "a plaintext (or other mechanism) peer";
  } else if (id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
    kind = "protocol";
    why = "protocol error 0x" + fmt::format("{:x}", value);
  }
  LogLimited(kind, "refused a connection to the " + monitors_[i].second + " socket " +
                       addr.to_string() + ": handshake failed: " + why);
  return true;
}

void ZapHandler::LogLimited(const std::string& kind, const std::string& what) {
  // A stranger hammering us must not flood the log: one line a second per kind of refusal.
  const int64_t now = reactor_.clock().MonoMs();
  Limit& l = limits_[kind];
  if (now - l.last_ms < 1000) {
    ++l.unlogged;
    return;
  }
  l.last_ms = now;
  if (l.unlogged)
    spdlog::warn("{} (and {} more like it in the last second)", what, l.unlogged);
  else
    spdlog::warn("{}", what);
  l.unlogged = 0;
}

}  // namespace meshchat::router
