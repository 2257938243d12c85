#include "ops/dev_certs.h"

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <filesystem>
#include <memory>

#include "base/durable_file.h"
#include "base/tls_util.h"

namespace meshchat::nodes {
namespace {

using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using CertPtr = std::unique_ptr<X509, decltype(&X509_free)>;
using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;

template <typename F>
Result<std::string> Pem(F write) {
  BioPtr bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || write(bio.get()) != 1) return Status(Code::kIo, "PEM: " + TakeSslErrors());
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

bool AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
  if (!ext) return false;
  const bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// A certificate for `key` named `cn`, signed by `issuer_key` (issuer null: self-signed).
Result<CertPtr> Issue(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key,
                      int days, const std::vector<std::pair<int, std::string>>& exts) {
  CertPtr cert(X509_new(), X509_free);
  BIGNUM* serial = BN_new();
  bool ok = cert && serial && X509_set_version(cert.get(), 2) == 1 &&
            BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
            BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert.get())) != nullptr;
  BN_free(serial);
  if (!ok) return Status(Code::kIo, "certificate: " + TakeSslErrors());
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);  // tolerate clocks a bit behind
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 86400);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("meshchat development"), -1, -1,
                             0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* signer = issuer ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  for (const auto& [nid, value] : exts)
    if (!AddExt(cert.get(), signer, nid, value))
      return Status(Code::kIo, "certificate extension: " + TakeSslErrors());
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0)
    return Status(Code::kIo, "signing: " + TakeSslErrors());
  return cert;
}

Status LoadCa(const std::string& dir, KeyPtr& key, CertPtr& cert) {
  BioPtr kb(BIO_new_file((dir + "/ca.key").c_str(), "r"), BIO_free);
  BioPtr cb(BIO_new_file((dir + "/ca.pem").c_str(), "r"), BIO_free);
  if (kb) key.reset(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  if (cb) cert.reset(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
  if (!key || !cert || X509_check_private_key(cert.get(), key.get()) != 1)
    return Status(Code::kInvalid, "the CA in " + dir + " is unreadable: " + TakeSslErrors());
  return Status::Ok();
}

}  // namespace

Status MakeDevCertificates(const std::string& dir, const DevCertOptions& opts) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status(Code::kIo, "cannot create " + dir + ": " + ec.message());
  fs::permissions(dir, fs::perms::owner_all, ec);
  if (opts.names.empty()) return Status(Code::kInvalid, "a certificate needs at least one name");

  KeyPtr ca_key(nullptr, EVP_PKEY_free);
  CertPtr ca(nullptr, X509_free);
  if (fs::exists(dir + "/ca.pem") && fs::exists(dir + "/ca.key")) {
    if (Status s = LoadCa(dir, ca_key, ca); !s.ok()) return s;
  } else {
    ca_key.reset(EVP_EC_gen("P-256"));
    if (!ca_key) return Status(Code::kIo, "key generation: " + TakeSslErrors());
    auto cert = Issue(ca_key.get(), "meshchat development CA", nullptr, ca_key.get(), opts.ca_days,
                      {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                       {NID_key_usage, "critical,keyCertSign,cRLSign"},
                       {NID_subject_key_identifier, "hash"}});
    if (!cert.ok()) return cert.status();
    ca = std::move(cert).value();
    auto key_pem = Pem([&](BIO* b) {
      return PEM_write_bio_PrivateKey(b, ca_key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    });
    auto cert_pem = Pem([&](BIO* b) { return PEM_write_bio_X509(b, ca.get()); });
    if (!key_pem.ok()) return key_pem.status();
    if (!cert_pem.ok()) return cert_pem.status();
    if (Status s = WriteFileDurably(dir + "/ca.key", *key_pem, 0600); !s.ok()) return s;
    if (Status s = WriteFileDurably(dir + "/ca.pem", *cert_pem, 0644); !s.ok()) return s;
  }

  KeyPtr key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  if (!key) return Status(Code::kIo, "key generation: " + TakeSslErrors());
  std::string san;
  for (const auto& n : opts.names) {
    if (!san.empty()) san += ",";
    san += (IsIpAddress(n) ? "IP:" : "DNS:") + n;
  }
  auto cert = Issue(key.get(), opts.names.front(), ca.get(), ca_key.get(), opts.gateway_days,
                    {{NID_basic_constraints, "critical,CA:FALSE"},
                     {NID_key_usage, "critical,digitalSignature"},
                     {NID_ext_key_usage, "serverAuth"},
                     {NID_subject_alt_name, san},
                     {NID_authority_key_identifier, "keyid:always"}});
  if (!cert.ok()) return cert.status();
  auto key_pem = Pem([&](BIO* b) {
    return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
  // The chain a gateway presents: its certificate, then the CA's.
  auto cert_pem = Pem([&](BIO* b) {
    return PEM_write_bio_X509(b, cert->get()) == 1 ? PEM_write_bio_X509(b, ca.get()) : 0;
  });
  if (!key_pem.ok()) return key_pem.status();
  if (!cert_pem.ok()) return cert_pem.status();
  if (Status s = WriteFileDurably(dir + "/gateway.key", *key_pem, 0600); !s.ok()) return s;
  return WriteFileDurably(dir + "/gateway.pem", *cert_pem, 0644);
}

}  // namespace meshchat::nodes
