#pragma once
// Keys, certificates, bundles and CSRs in PEM, and the files that hold them. Every decoding
// error names its source: "ca.pem: not a PEM certificate".

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tls/ossl.h"

namespace zm::tls {

// A fresh ECDSA P-256 key pair.
absl::StatusOr<EvpPkeyPtr> GenerateEcP256Key();

// Private keys: PKCS#8 "PRIVATE KEY" out; any unencrypted PEM private key in (never prompts
// for a pass phrase).
absl::StatusOr<std::string> PrivateKeyToPem(EVP_PKEY* key);
absl::StatusOr<EvpPkeyPtr> PrivateKeyFromPem(std::string_view pem,
                                             std::string_view source = "private key");
// Public keys: "PUBLIC KEY" (SubjectPublicKeyInfo).
absl::StatusOr<std::string> PublicKeyToPem(EVP_PKEY* key);

// One certificate (the first of `pem`).
absl::StatusOr<std::string> CertToPem(X509* cert);
absl::StatusOr<X509Ptr> CertFromPem(std::string_view pem, std::string_view source = "certificate");
// One or more certificates (a chain, leaf first, or a bundle of roots). Zero is an error.
absl::StatusOr<std::string> CertsToPem(const std::vector<X509Ptr>& certs);
absl::StatusOr<std::vector<X509Ptr>> CertsFromPem(std::string_view pem,
                                                  std::string_view source = "certificates");

// Certificate signing requests.
absl::StatusOr<std::string> CsrToPem(X509_REQ* csr);
absl::StatusOr<X509ReqPtr> CsrFromPem(std::string_view pem, std::string_view source = "CSR");

// Files. ReadFile refuses what is not a regular file or is larger than 1 MiB. With
// `require_private`, it also refuses a file that group or others may access ("key.pem: ...
// mode 0644, must not be accessible by group or others"), checked on the opened file.
absl::StatusOr<std::string> ReadFile(const std::string& path, bool require_private = false);
// Writes through a temporary file in the same directory, created with `mode`, then renamed.
absl::Status WriteFileAtomically(const std::string& path, std::string_view data, mode_t mode);

absl::StatusOr<X509Ptr> LoadCertFile(const std::string& path);
absl::StatusOr<std::vector<X509Ptr>> LoadCertsFile(const std::string& path);
// Refuses a key file accessible by group or others.
absl::StatusOr<EvpPkeyPtr> LoadPrivateKeyFile(const std::string& path);

}  // namespace zm::tls
