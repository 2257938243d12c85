#include "nodes/media/media_http.h"

#include <httplib.h>

#include <charconv>

#include "codec/media_messages.h"
#include "nodes/media/media_core.h"

namespace meshchat::nodes {

namespace {
bool ParseU64(const std::string& s, uint64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}
constexpr size_t kReadBytes = 256 << 10;
}  // namespace

MediaHttpServer::MediaHttpServer(const std::string& host, uint16_t port, store::BlobStore& blobs,
                                 std::string secret, std::string previous, const Clock& clock)
    : server_(std::make_unique<httplib::Server>()) {
  server_->Get(R"(/media/([0-9a-f]{32}))", [&blobs, secret, previous, &clock](
                                               const httplib::Request& req,
                                               httplib::Response& res) {
    auto not_found = [&res] {
      res.status = 404;
      res.set_content("not found\n", "text/plain");
    };
    const std::string hex = req.matches[1];
    uint64_t exp = 0, size = 0;
    const std::string user = req.get_param_value("u"), type = req.get_param_value("t"),
                      sig = req.get_param_value("s");
    if (!ParseU64(req.get_param_value("e"), exp) || !ParseU64(req.get_param_value("n"), size) ||
        !MediaCore::CheckUrl(hex, user, exp, size, type, sig, secret, previous,
                             static_cast<uint64_t>(clock.WallMs() / 1000)))
      return not_found();
    char probe;  // gone (collected) since the link was made?
    if (size > 0 && !blobs.Read(hex, 0, std::span<char>(&probe, 1)).ok()) return not_found();
    res.set_header("Cache-Control", "private, max-age=3600");
    res.set_content_provider(static_cast<size_t>(size), type,
                             [&blobs, hex](size_t offset, size_t length, httplib::DataSink& sink) {
                               std::string buf(std::min(length, kReadBytes), '\0');
                               auto got = blobs.Read(hex, offset, buf);
                               if (!got.ok() || *got == 0) return false;  // aborts the response
                               return sink.write(buf.data(), *got);
                             });
  });
  if (!server_->bind_to_port(host, port))
    throw std::runtime_error("media http: cannot listen on " + host + ":" + std::to_string(port));
  thread_ = std::thread([this] { server_->listen_after_bind(); });
}

MediaHttpServer::~MediaHttpServer() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace meshchat::nodes
