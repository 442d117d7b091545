#pragma once
// The mesh certificate authority: a self-signed ECDSA P-256 root that signs workload
// certificates for SPIFFE IDs (DESIGN 5 "Identity and certificates"). Who may obtain which
// identity is decided by the caller (common/ca); this class only refuses a CSR that does not
// ask for exactly the identity it was told to sign.

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/tls/ossl.h"
#include "common/tls/spiffe.h"

namespace zm::tls {

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
  // The same from memory (the key is not a file here, so no mode check).
  static absl::StatusOr<CertificateAuthority> FromPem(std::string_view cert_pem,
                                                      std::string_view key_pem,
                                                      std::string trust_domain, const Clock& clock);

  // Signs `csr_pem` for `authorized`: refuses a CSR that is malformed, badly signed, or asks
  // for another identity or trust domain. The leaf has the URI SAN only (critical, empty
  // subject), CA:FALSE, digitalSignature|keyAgreement, serverAuth|clientAuth, a random
  // serial, notBefore = now - kClockSkew, notAfter = now + min(ttl, kMaxTtl), never past
  // the root's own notAfter. Returns the PEM chain {leaf, root}. Thread-safe.
  absl::StatusOr<std::vector<std::string>> Sign(std::string_view csr_pem,
                                                const SpiffeId& authorized,
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
