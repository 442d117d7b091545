#pragma once
// zmesh-ca's own TLS certificate: issued by the mesh root at start, so a ztunnel verifies
// zmesh-ca with the same root it already trusts for workloads. A fresh P-256 key that never
// leaves the process; DNS SANs only; serverAuth; never past the root's own notAfter.
//
// (This builds the certificate here because tls::CertificateAuthority signs SPIFFE
// identities only; a `SignServer` there would be its natural home.)

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/tls/ossl.h"

namespace zm::ca {

struct ServingCredentials {
  std::string key_pem;
  std::string chain_pem;  // the leaf, then the root
  std::chrono::system_clock::time_point not_after;
};

// Refuses: no name; a name that is not a lower-case DNS name (a leading "*." allowed); a root
// key that does not match `root`; a non-positive ttl.
absl::StatusOr<ServingCredentials> IssueServingCredentials(
    X509* root, EVP_PKEY* root_key, const std::vector<std::string>& dns_names,
    std::chrono::seconds ttl, const Clock& clock);

}  // namespace zm::ca
