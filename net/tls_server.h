// TLS for client connections (OpenSSL): the gateway's certificate chain and key, TLS 1.2 or
// newer (1.3 preferred: OpenSSL negotiates the highest both sides speak), forward-secret AEAD
// suites only, no renegotiation. Connections hold a reference to the context they started
// with, so a reloaded certificate applies to new connections while old ones go on.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "base/status.h"
#include "base/tls_util.h"  // TakeSslErrors

namespace meshchat::nodes {

using SslCtxPtr = std::shared_ptr<SSL_CTX>;

// Loads a PEM certificate chain and its private key (they must match).
Result<SslCtxPtr> LoadTlsServerContext(const std::string& cert_file, const std::string& key_file);

}  // namespace meshchat::nodes
