#include "nodes/gateway/gateway_service.h"

#include <openssl/rand.h>

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <set>

#include "codec/media_messages.h"

namespace meshchat::nodes {
namespace {

ListenerConfig ListenerFor(const NodeContext& ctx) {
  ListenerConfig cfg;
  if (!router::SplitHostPort(ctx.self.client, cfg.host, cfg.port))
    throw std::runtime_error("gateway " + ctx.self.id + " has a bad client endpoint");
  // Output waiting for one client; over it the client is cut off (it reconnects and drains
  // its inbox). Keep it above the session's push byte window (1 MiB).
  const NodeOptions& o = ctx.options;
  cfg.max_out_bytes = o.Int("max_out_bytes", cfg.max_out_bytes);
  cfg.frame_deadline_ms = o.Int("frame_deadline_ms", cfg.frame_deadline_ms);
  cfg.max_unauth_buffered = o.Int("max_unauth_buffered", cfg.max_unauth_buffered);
  return cfg;
}

// Clients speak TLS unless plain TCP is asked for by name (client_tls=off): a gateway
// without a certificate does not start rather than fall back to plaintext.
SslCtxPtr TlsFor(const NodeContext& ctx) {
  const std::string mode = ctx.options.Text("client_tls");
  if (mode == "off") {
    // Asked for by name (a development mesh on loopback, a test network): said, not warned.
    spdlog::info(
        "clients connect over plain TCP (client_tls=off): tokens and messages cross "
        "the network readable");
    return nullptr;
  }
  const std::string cert = ctx.options.Text("tls_cert"), key = ctx.options.Text("tls_key");
  if (cert.empty() || key.empty())
    throw std::runtime_error(
        "clients need TLS: give --opt tls_cert=FILE --opt tls_key=FILE (`meshctl tls-certs` "
        "makes development ones), or --opt client_tls=off for plain TCP");
  auto tls = LoadTlsServerContext(cert, key);
  if (!tls.ok()) throw std::runtime_error(tls.status().ToString());
  return std::move(tls).value();
}

int64_t ModifiedNs(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return 0;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

GatewayConfig ConfigFor(const NodeContext& ctx) {
  GatewayConfig cfg{ctx.self.id, ctx.secret};
  cfg.previous_secret = ctx.previous_secret;
  const NodeOptions& o = ctx.options;
  cfg.frame_rate = o.Real("frame_rate", cfg.frame_rate);
  cfg.frame_burst = o.Real("frame_burst", cfg.frame_burst);
  cfg.max_token_ttl_s = o.Int("max_token_ttl_s", cfg.max_token_ttl_s);
  // Per client address (0 rate: no limit): connects, and failed authentications.
  for (auto [key, field] : {std::pair{"connect_rate", &cfg.addresses.connect_rate},
                            std::pair{"connect_burst", &cfg.addresses.connect_burst},
                            std::pair{"auth_fail_rate", &cfg.addresses.auth_fail_rate},
                            std::pair{"auth_fail_burst", &cfg.addresses.auth_fail_burst}})
    *field = o.Real(key, *field);
  return cfg;
}

}  // namespace

GatewayService::GatewayService(NodeContext& ctx)
    : ctx_(ctx),
      sessions_(ctx.map.IdsWithRole(router::Role::kSession)),
      media_(ctx.map.IdsWithRole(router::Role::kMedia)),
      core_(ConfigFor(ctx), ctx.clock, sessions_,
            [&mesh = ctx.mesh](const std::string& n) { return mesh.IsUp(n); }),
      listener_(ctx.reactor, ListenerFor(ctx),
                ClientListener::Callbacks{
                    [this](uint64_t c, const std::string& addr) { core_.OnOpen(c, addr); },
                    [this](uint64_t c, const codec::FrameView& f) {
                      core_.OnFrame(c, f, fx_);
                      Apply();
                    },
                    [this](uint64_t c, codec::DecodeStatus s) {
                      core_.OnBadFrame(c, s, fx_);
                      Apply();
                    },
                    [this](uint64_t c) {
                      core_.OnClosed(c, fx_);
                      Apply();
                    },
                    [this](const std::string& addr) { return core_.AllowConnect(addr); }}),
      sub_(ctx.mesh.context(), zmq::socket_type::sub) {
  if (ctx.secret.empty()) throw std::runtime_error("a gateway needs --secret-file");
  core_.SetMedia(&media_, [] {
    std::string id(codec::kMediaIdBytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(id.data()), static_cast<int>(id.size())) != 1)
      throw std::runtime_error("no randomness for a media id");  // the OS ran dry: fatal
    return id;
  });
}

void GatewayService::Start() {
  // Revoked devices survive restarts (meshctl revoke reaches the gateways that run).
  if (Status s = core_.revocations().Load(RevocationsPath()); !s.ok())
    throw std::runtime_error(s.ToString());
  if (core_.revocations().size())
    spdlog::info("{} revoked devices loaded", core_.revocations().size());
  StartTls();
  listener_.Start();
  sub_.set(zmq::sockopt::linger, 0);
  sub_.set(zmq::sockopt::rcvhwm, 100000);
  for (const auto& n : ctx_.map.nodes)
    if (n.role == router::Role::kPresence) Subscribe(n);
  ctx_.reactor.AddZmqReader(sub_, [this] { return ReceivePublished(); });
  ctx_.reactor.Every(1000, [this] {
    core_.OnTick(fx_);
    Apply();
  });
  spdlog::info("accepting clients on {}", ctx_.self.client);
}

void GatewayService::StartTls() {
  SslCtxPtr tls = TlsFor(ctx_);
  if (!tls) return;
  listener_.SetTls(std::move(tls));
  tls_cert_ = ctx_.options.Text("tls_cert");
  tls_key_ = ctx_.options.Text("tls_key");
  tls_stamp_ = {ModifiedNs(tls_cert_), ModifiedNs(tls_key_)};
  // Certificate renewal without a restart: when the files change, new connections get the
  // new ones (a broken pair is logged and the old one kept). Connections go on as they are.
  ctx_.reactor.Every(ctx_.options.Int("tls_reload_ms", 10'000), [this] {
    const std::pair<int64_t, int64_t> stamp{ModifiedNs(tls_cert_), ModifiedNs(tls_key_)};
    if (stamp == tls_stamp_) return;
    tls_stamp_ = stamp;
    auto tls = LoadTlsServerContext(tls_cert_, tls_key_);
    if (!tls.ok()) {
      spdlog::error("TLS certificate not reloaded, the previous one stays: {}",
                    tls.status().ToString());
      return;
    }
    listener_.SetTls(std::move(tls).value());
    spdlog::info("TLS certificate {} reloaded", tls_cert_);
  });
  spdlog::info("clients connect over TLS (certificate {})", tls_cert_);
}

void GatewayService::WriteMetrics(MetricsText& m) const {
  const auto& s = listener_.stats();
  m.Gauge("meshchat_gateway_authenticated", "authenticated client connections",
          static_cast<double>(core_.authenticated()));
  m.Counter("meshchat_gateway_accepted_total", "client connections accepted", s.accepted);
  m.Counter("meshchat_gateway_refused_total",
            "connections refused (connection cap, per-address limits)", s.refused);
  m.Counter("meshchat_gateway_refused_connect_rate_total",
            "connections refused: the address connected too fast", core_.refused_fast());
  m.Counter("meshchat_gateway_refused_auth_failures_total",
            "connections refused: the address failed to authenticate too often",
            core_.refused_auth());
  m.Counter("meshchat_gateway_unauth_overflows_total",
            "connections closed: unauthenticated connections together buffered too much input",
            s.unauth_overflows);
  m.Gauge("meshchat_gateway_unauth_buffered_bytes",
          "bytes of incomplete frames held for connections that have not said hello",
          static_cast<double>(listener_.unauth_buffered()));
  m.Counter("meshchat_gateway_conn_resyncs_total",
            "connections re-announced to (or closed at) a session shard whose view differed",
            core_.resynced());
  m.Counter("meshchat_gateway_push_resyncs_total",
            "times a session shard was asked to push again from the devices' cursors after "
            "envelopes from it were lost",
            core_.push_resyncs());
  m.Counter("meshchat_gateway_accept_errors_total", "accept() failures (e.g. out of file handles)",
            s.accept_errors);
  m.Counter("meshchat_gateway_frames_in_total", "client frames received", s.frames_in);
  m.Counter("meshchat_gateway_slow_frames_total",
            "connections closed because a started frame did not complete in time (slowloris)",
            s.slow_frames);
  m.Counter("meshchat_gateway_tls_failures_total",
            "connections closed by a failed TLS handshake or record (e.g. plaintext)",
            s.tls_failures);
  m.Counter("meshchat_gateway_slow_consumers_total",
            "connections closed because their output queue was full", s.slow_consumers);
  auto type = [](uint8_t t) {
    std::string name = codec::FrameTypeName(t);
    if (name == "?") name = "unknown_" + std::to_string(t);  // still one series per value
    return "type=\"" + name + "\"";
  };
  core_.frames_in().Write(m, "meshchat_gateway_frames_in_by_type_total",
                          "client frames received, by type", type);
  frames_out_.Write(m, "meshchat_gateway_frames_out_by_type_total",
                    "frames written to clients, by type", type);
  WriteShedMetrics(m, core_.shed());
  core_.errors().Write(m, "meshchat_errors_total", "errors answered to clients, by code",
                       ErrorCodeLabel);
}

void GatewayService::Drain() {
  listener_.StopAccepting();  // new clients are refused: they try another gateway
  core_.Drain(fx_);
  Apply();
}

void GatewayService::BeginShutdown() {
  listener_.StopAccepting();
  core_.Shutdown(fx_);
  Apply();
}

void GatewayService::OnEnvelope(const std::string& from, codec::Envelope&& env) {
  if (env.type == codec::MeshType::kRevoke) return Revoke(from, env);
  core_.OnMesh(from, std::move(env), fx_);
  Apply();
}

void GatewayService::Revoke(const std::string& from, const codec::Envelope& env) {
  // Answered once stored: arg 0 = done, 1 = refused (bad ids, list full, disk).
  codec::Envelope resp;
  resp.type = codec::MeshType::kStatusResp;
  resp.req = env.req;
  resp.arg = 1;
  const int64_t at = static_cast<int64_t>(std::min<uint64_t>(env.arg, INT64_MAX));
  if (codec::IsValidId(env.key) && codec::IsValidId(env.stamp.device)) {
    if (!core_.Revoke(env.key, env.stamp.device, at, fx_)) {
      spdlog::error("revocation of {} {} refused: the list is full", env.key, env.stamp.device);
    } else if (Status s = core_.revocations().Save(RevocationsPath()); !s.ok()) {
      spdlog::error("revocation of {} {} not stored: {}", env.key, env.stamp.device, s.ToString());
    } else {
      spdlog::info("device {} of {} revoked", env.stamp.device, env.key);
      resp.arg = 0;
    }
  }
  Apply();
  (void)ctx_.mesh.Reply(from, std::move(resp));
}

void GatewayService::OnPeerUp(const std::string& node, bool /*restarted*/) {
  core_.OnPeerUp(node, fx_);
  Apply();
}

void GatewayService::OnLinkGap(const std::string& node) {
  core_.OnLinkGap(node, fx_);
  Apply();
}

bool GatewayService::ReceivePublished() {
  zmq::message_t topic, body;
  if (!sub_.recv(topic, zmq::recv_flags::dontwait)) return false;
  if (!topic.more() || !sub_.recv(body, zmq::recv_flags::dontwait)) return true;  // malformed
  while (body.more()) (void)sub_.recv(body, zmq::recv_flags::dontwait);
  std::string user = topic.to_string();
  if (!user.empty() && user.back() == '\0') user.pop_back();
  core_.OnPublished(user, body.to_string_view(), fx_);
  Apply();
  return true;
}

void GatewayService::Subscribe(const router::NodeInfo& presence) {
  // Security options apply per connect: each publisher is checked against its own key.
  if (!ctx_.curve.empty()) router::MakeCurveClient(sub_, ctx_.curve, presence.curve);
  sub_.connect(presence.pub);
  ctx_.reactor.Touch(sub_);  // outside the drain: may consume the socket's edge
}

void GatewayService::OnMapChanged(const router::ClusterMap& previous) {
  // Presence nodes publish on their own PUB sockets: follow the ones added and removed.
  auto pubs = [](const router::ClusterMap& m) {
    std::set<std::string> s;
    for (const auto& n : m.nodes)
      if (n.role == router::Role::kPresence) s.insert(n.pub);
    return s;
  };
  const auto before = pubs(previous), now = pubs(ctx_.map);
  try {
    for (const auto& n : ctx_.map.nodes)
      if (n.role == router::Role::kPresence && !before.count(n.pub)) Subscribe(n);
    for (const auto& ep : before)
      if (!now.count(ep)) sub_.disconnect(ep);
    ctx_.reactor.Touch(sub_);
  } catch (const zmq::error_t& e) {  // a bad endpoint: presence hints from it are missed
    spdlog::error("following presence publishers of map epoch {}: {}", ctx_.map.epoch, e.what());
  }
  const router::HashRing old_sessions = sessions_;
  sessions_ = router::HashRing(ctx_.map.IdsWithRole(router::Role::kSession));
  media_ = router::HashRing(ctx_.map.IdsWithRole(router::Role::kMedia));
  core_.OnSessionsChanged(old_sessions, fx_);
  Apply();
}

void GatewayService::Apply() {
  // Effects may be produced re-entrantly (a close triggers OnClosed); take them out first.
  while (!fx_.mesh.empty() || !fx_.writes.empty() || !fx_.closes.empty() ||
         !fx_.subscribe.empty() || !fx_.unsubscribe.empty() || !fx_.authenticated.empty()) {
    Effects fx = std::move(fx_);
    fx_.Clear();
    for (uint64_t c : fx.authenticated) listener_.MarkAuthenticated(c);
    for (auto& w : fx.writes) {
      if (w.bytes.size() > codec::kHeaderSize - 1)
        frames_out_.Add(static_cast<uint8_t>(w.bytes[4]));
      listener_.Write(w.conn, w.bytes);
    }
    for (auto& m : fx.mesh) {
      if (Status s = ctx_.mesh.Send(m.node, std::move(m.env)); !s.ok() && m.fail_conn) {
        codec::Error e{codec::ErrorCode::kServiceUnavailable, "session shard unreachable; retry",
                       std::nullopt, false};
        listener_.Write(m.fail_conn, codec::EncodeMessageFrame(e));
      }
    }
    for (uint64_t c : fx.closes) listener_.CloseAfterFlush(c);
    // Topics are "user\0": a subscription must not match users whose id merely starts with it.
    for (const auto& u : fx.subscribe) sub_.set(zmq::sockopt::subscribe, u + std::string(1, '\0'));
    for (const auto& u : fx.unsubscribe)
      sub_.set(zmq::sockopt::unsubscribe, u + std::string(1, '\0'));
    if (!fx.subscribe.empty() || !fx.unsubscribe.empty()) ctx_.reactor.Touch(sub_);
  }
}

}  // namespace meshchat::nodes
