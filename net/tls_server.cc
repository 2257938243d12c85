#include "net/tls_server.h"

#include <openssl/err.h>

namespace meshchat::nodes {

Result<SslCtxPtr> LoadTlsServerContext(const std::string& cert_file, const std::string& key_file) {
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx) return Status(Code::kIo, "SSL_CTX_new: " + TakeSslErrors());
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  // TLS 1.2 clients get ECDHE with an AEAD only; TLS 1.3 suites are all of that kind.
  if (SSL_CTX_set_cipher_list(c, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1)
    return Status(Code::kIo, "cipher list: " + TakeSslErrors());
  SSL_CTX_set_options(
      c, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  // Idle connections give their 16 KiB+ record buffers back (memory per connection);
  // output is written from a buffer that grows at its end (moving) and in pieces (partial).
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // One stateless resumption ticket: a reconnecting client skips the full handshake (a
  // reconnect storm costs less CPU) and the server keeps no session cache per client.
  SSL_CTX_set_num_tickets(c, 1);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  if (SSL_CTX_use_certificate_chain_file(c, cert_file.c_str()) != 1)
    return Status(Code::kInvalid, "TLS certificate " + cert_file + ": " + TakeSslErrors());
  if (SSL_CTX_use_PrivateKey_file(c, key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    return Status(Code::kInvalid, "TLS key " + key_file + ": " + TakeSslErrors());
  if (SSL_CTX_check_private_key(c) != 1)
    return Status(Code::kInvalid,
                  "TLS key " + key_file + " does not match certificate " + cert_file);
  return ctx;
}

}  // namespace meshchat::nodes
