#pragma once
// The mesh certificate authority: a self-signed ECDSA P-256 root that signs workload
// certificates for SPIFFE IDs (DESIGN 5 "Identity and certificates"), and the serving
// certificate of a process that runs the CA (zmesh-ca), so that clients verify it with the
// root they already trust. Who may obtain which identity is decided by the caller
// (common/ca); this class only refuses a CSR that does not ask for exactly the identity it
// was told to sign. The root key never leaves this class.

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/tls/ossl.h"
#include "common/tls/spiffe.h"

namespace zm::tls {

// A DNS name as a certificate carries it (and Kubernetes names a node): an RFC 1123
// subdomain — lower-case labels of letters, digits and inner hyphens, 63 characters a label
// and 253 a name at most — and with `allow_wildcard`, also one behind a leading "*.".
bool IsDnsName(std::string_view name, bool allow_wildcard);

class CertificateAuthority {
 public:
  static constexpr std::chrono::seconds kClockSkew{60};
  static constexpr std::chrono::seconds kMaxTtl{30 * 24 * 3600};
  static constexpr std::chrono::seconds kRootLifetime{3650LL * 24 * 3600};

  // Loads the root from `cert_path` and `key_path`, or, when neither exists, creates one
  // (subject O=<trust_domain>, CA:TRUE, keyCertSign|cRLSign, 10 years) and writes both,
  // the key with mode 0600. Refuses: only one of the two files present; a key file
  // accessible by group or others; a key that does not match the certificate; a
  // certificate that is not a CA or is outside its validity at `clock.Now()`.
  // `clock` must outlive the CA.
  static absl::StatusOr<CertificateAuthority> LoadOrCreate(const std::string& cert_path,
                                                           const std::string& key_path,
                                                           std::string trust_domain,
                                                           const Clock& clock);
  // The same from memory (the key is not a file here, so no mode check). Errors start with
  // `cert_source` or `key_source` ("Secret zmesh-system/zmesh-ca-root, tls.key: ...").
  static absl::StatusOr<CertificateAuthority> FromPem(
      std::string_view cert_pem, std::string_view key_pem, std::string trust_domain,
      const Clock& clock, std::string_view cert_source = "CA certificate",
      std::string_view key_source = "CA key");

  // A new root as LoadOrCreate creates it (a fresh P-256 key; subject O=<trust_domain>, CA:TRUE,
  // keyCertSign|cRLSign, kRootLifetime from `clock.Now()`), in PEM, for a store that is not a
  // file (zmesh-ca keeps it in a Kubernetes Secret). Load it with FromPem.
  struct GeneratedRoot {
    std::string cert_pem;
    std::string key_pem;  // PKCS#8; a secret
  };
  static absl::StatusOr<GeneratedRoot> GenerateRoot(std::string_view trust_domain,
                                                    const Clock& clock);

  // Signs `csr_pem` for `authorized`: refuses a CSR that is malformed, badly signed, or asks
  // for another identity or trust domain. The leaf has the URI SAN only (critical, empty
  // subject), CA:FALSE, digitalSignature|keyAgreement, serverAuth|clientAuth, a random
  // serial, notBefore = now - kClockSkew, notAfter = now + min(ttl, kMaxTtl), never past
  // the root's own notAfter. Returns the PEM chain {leaf, root}. Thread-safe.
  absl::StatusOr<std::vector<std::string>> Sign(std::string_view csr_pem,
                                                const SpiffeId& authorized,
                                                std::chrono::seconds ttl) const;

  // Signs `public_key` (only its public half is used) for a TLS server known by
  // `dns_names`: refuses an empty list, a name that is not a lower-case DNS name (a leading
  // "*." allowed) and a non-positive ttl. The leaf has DNS SANs only (subject CN = the first
  // name), CA:FALSE, digitalSignature, serverAuth; serial and validity as for Sign, except
  // that kMaxTtl does not apply (a serving certificate is issued once per process start):
  // notAfter = now + ttl, never past the root's own notAfter. Returns the PEM chain
  // {leaf, root}. Thread-safe.
  absl::StatusOr<std::vector<std::string>> SignServer(EVP_PKEY* public_key,
                                                      const std::vector<std::string>& dns_names,
                                                      std::chrono::seconds ttl) const;

  const std::string& RootPem() const { return root_pem_; }
  X509* root() const { return cert_.get(); }
  const std::string& trust_domain() const { return trust_domain_; }

 private:
  CertificateAuthority(X509Ptr cert, EvpPkeyPtr key, std::string root_pem, std::string trust_domain,
                       const Clock& clock)
      : cert_(std::move(cert)),
        key_(std::move(key)),
        root_pem_(std::move(root_pem)),
        trust_domain_(std::move(trust_domain)),
        clock_(&clock) {}

  // What sets one kind of leaf apart (defined in ca.cc).
  struct LeafProfile;
  // The one signing path of Sign and SignServer: a leaf for `public_key` with `profile`,
  // valid from now - kClockSkew to now + ttl (capped by the root), signed by the root.
  absl::StatusOr<std::vector<std::string>> SignLeaf(EVP_PKEY* public_key,
                                                    const LeafProfile& profile,
                                                    std::chrono::seconds ttl) const;

  static absl::StatusOr<CertificateAuthority> FromParts(X509Ptr cert, EvpPkeyPtr key,
                                                        std::string trust_domain,
                                                        const Clock& clock,
                                                        std::string_view cert_source);

  X509Ptr cert_;
  EvpPkeyPtr key_;
  std::string root_pem_;
  std::string trust_domain_;
  const Clock* clock_;
};

}  // namespace zm::tls
