#include "store/etcd_client.h"

#include <httplib.h>
#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include <charconv>

namespace meshchat::store {

namespace {

using Json = nlohmann::json;

std::string B64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> UnB64(const std::string& in) {
  if (in.size() % 4 != 0) return Status(Code::kInvalid, "etcd: bad base64");
  std::string out(in.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0) return Status(Code::kInvalid, "etcd: bad base64");
  size_t pad = 0;  // EVP_DecodeBlock counts the padding's zero bytes
  for (size_t i = in.size(); i > 0 && in[i - 1] == '='; --i) ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

// etcd's JSON gateway writes 64-bit integers as strings; absent means 0.
Result<int64_t> Int(const Json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end()) return int64_t{0};
  if (it->is_number_integer()) return it->get<int64_t>();
  if (!it->is_string())
    return Status(Code::kInvalid, std::string("etcd: ") + field + " not a number");
  const std::string& s = it->get_ref<const std::string&>();
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size())
    return Status(Code::kInvalid, std::string("etcd: ") + field + " not a number");
  return v;
}

Result<EtcdKey> KeyOf(const Json& kv) {
  if (!kv.is_object()) return Status(Code::kInvalid, "etcd: a kv is not an object");
  EtcdKey k;
  for (auto [field, out] : {std::pair{"key", &k.key}, std::pair{"value", &k.value}}) {
    auto it = kv.find(field);
    if (it == kv.end()) continue;  // an empty value is left out
    if (!it->is_string()) return Status(Code::kInvalid, "etcd: key or value not a string");
    auto raw = UnB64(it->get<std::string>());
    if (!raw.ok()) return raw.status();
    *out = std::move(raw).value();
  }
  auto c = Int(kv, "create_revision"), m = Int(kv, "mod_revision"), l = Int(kv, "lease");
  if (!c.ok()) return c.status();
  if (!m.ok()) return m.status();
  if (!l.ok()) return l.status();
  k.create_revision = *c;
  k.mod_revision = *m;
  k.lease = *l;
  return k;
}

// The first kv of a range answer (`kvs`), or nullopt.
Result<std::optional<EtcdKey>> FirstKey(const Json& range) {
  auto it = range.find("kvs");
  if (it == range.end()) return std::optional<EtcdKey>{};
  if (!it->is_array()) return Status(Code::kInvalid, "etcd: kvs not a list");
  if (it->empty()) return std::optional<EtcdKey>{};
  auto k = KeyOf(it->front());
  if (!k.ok()) return k.status();
  return std::optional<EtcdKey>(std::move(k).value());
}

Result<Json> Parse(const std::string& body) {
  Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status(Code::kInvalid, "etcd: not a JSON object");
  if (auto e = j.find("error"); e != j.end())
    return Status(Code::kUnavailable,
                  "etcd: " + (e->is_string() ? e->get<std::string>() : "error"));
  return j;
}

}  // namespace

Result<std::unique_ptr<EtcdClient>> EtcdClient::Make(const std::string& endpoint, int timeout_ms) {
  if (endpoint.rfind("http://", 0) != 0)
    return Status(Code::kInvalid, "etcd endpoint must be http://HOST:PORT: " + endpoint);
  auto http = std::make_unique<httplib::Client>(endpoint);
  if (!http->is_valid()) return Status(Code::kInvalid, "etcd endpoint: " + endpoint);
  const auto t = std::chrono::milliseconds(timeout_ms);
  http->set_connection_timeout(t);
  http->set_read_timeout(t);
  http->set_write_timeout(t);
  http->set_keep_alive(true);
  return std::unique_ptr<EtcdClient>(new EtcdClient(std::move(http)));
}

EtcdClient::EtcdClient(std::unique_ptr<httplib::Client> http) : http_(std::move(http)) {}
EtcdClient::~EtcdClient() = default;

Result<std::string> EtcdClient::Post(const std::string& path, const std::string& body) {
  std::string got;
  bool too_big = false;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body;
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (got.size() + n > kMaxEtcdResponseBytes) {
      too_big = true;
      return false;  // bounded before it is kept
    }
    got.append(data, n);
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  const bool sent = http_->send(req, res, err);
  if (too_big) return Status(Code::kTooLarge, "etcd: answer over 1 MiB");
  if (!sent) return Status(Code::kUnavailable, "etcd: " + httplib::to_string(err));
  if (res.status != 200 && got.find("\"error\"") == std::string::npos)
    return Status(Code::kUnavailable, "etcd: HTTP " + std::to_string(res.status));
  return got;
}

Result<int64_t> EtcdClient::GrantLease(int64_t ttl_s) {
  auto body = Post("/v3/lease/grant", Json{{"TTL", std::to_string(ttl_s)}}.dump());
  if (!body.ok()) return body.status();
  auto j = Parse(*body);
  if (!j.ok()) return j.status();
  auto id = Int(*j, "ID");
  if (id.ok() && *id == 0) return Status(Code::kInvalid, "etcd: no lease id");
  return id;
}

Result<int64_t> EtcdClient::KeepAlive(int64_t lease) {
  auto body = Post("/v3/lease/keepalive", Json{{"ID", std::to_string(lease)}}.dump());
  if (!body.ok()) return body.status();
  auto j = Parse(*body);
  if (!j.ok()) return j.status();
  auto r = j->find("result");
  if (r == j->end() || !r->is_object()) return Status(Code::kInvalid, "etcd: no keepalive result");
  auto ttl = Int(*r, "TTL");
  if (ttl.ok() && *ttl <= 0) return Status(Code::kNotFound, "etcd: lease expired");
  return ttl;
}

Status EtcdClient::Revoke(int64_t lease) {
  auto body = Post("/v3/lease/revoke", Json{{"ID", std::to_string(lease)}}.dump());
  if (!body.ok()) return body.status();
  auto j = Parse(*body);
  return j.ok() ? Status::Ok() : j.status();
}

Result<std::optional<EtcdKey>> EtcdClient::Get(const std::string& key) {
  auto body = Post("/v3/kv/range", Json{{"key", B64(key)}}.dump());
  if (!body.ok()) return body.status();
  auto j = Parse(*body);
  if (!j.ok()) return j.status();
  return FirstKey(*j);
}

Result<std::pair<bool, EtcdKey>> EtcdClient::CreateIfAbsent(const std::string& key,
                                                            const std::string& value,
                                                            int64_t lease) {
  const Json req = {
      {"compare", {{{"target", "CREATE"}, {"key", B64(key)}, {"createRevision", "0"}}}},
      {"success",
       {{{"requestPut",
          {{"key", B64(key)}, {"value", B64(value)}, {"lease", std::to_string(lease)}}}}}},
      {"failure", {{{"requestRange", {{"key", B64(key)}}}}}}};
  auto body = Post("/v3/kv/txn", req.dump());
  if (!body.ok()) return body.status();
  auto j = Parse(*body);
  if (!j.ok()) return j.status();
  const bool created = j->value("succeeded", false);
  if (created) {
    auto header = j->find("header");
    if (header == j->end() || !header->is_object())
      return Status(Code::kInvalid, "etcd: no header in the answer");
    auto rev = Int(*header, "revision");
    if (!rev.ok()) return rev.status();
    return std::pair{true, EtcdKey{key, value, *rev, *rev, lease}};
  }
  auto rs = j->find("responses");
  if (rs == j->end() || !rs->is_array() || rs->empty() || !rs->front().is_object())
    return Status(Code::kInvalid, "etcd: no range in the answer");
  auto range = rs->front().find("response_range");
  if (range == rs->front().end() || !range->is_object())
    return Status(Code::kInvalid, "etcd: no range in the answer");
  auto held = FirstKey(*range);
  if (!held.ok()) return held.status();
  if (!*held) return Status(Code::kUnavailable, "etcd: the key vanished meanwhile; try again");
  return std::pair{false, **held};
}

Result<bool> EtcdClient::PutIfHeld(const std::string& key, const std::string& value,
                                   const std::string& guard, int64_t guard_rev) {
  const Json req = {{"compare",
                     {{{"target", "CREATE"},
                       {"key", B64(guard)},
                       {"createRevision", std::to_string(guard_rev)}}}},
                    {"success", {{{"requestPut", {{"key", B64(key)}, {"value", B64(value)}}}}}}};
  auto body = Post("/v3/kv/txn", req.dump());
  if (!body.ok()) return body.status();
  auto j = Parse(*body);
  if (!j.ok()) return j.status();
  return j->value("succeeded", false);
}

}  // namespace meshchat::store
