#pragma once
// zmesh-ca's own TLS certificate: issued by the mesh root at start
// (tls::CertificateAuthority::SignServer), so a ztunnel verifies zmesh-ca with the same root
// it already trusts for workloads. A fresh P-256 key that never leaves the process; DNS SANs
// only; serverAuth; never past the root's own notAfter.

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tls/ca.h"

namespace zm::ca {

struct ServingCredentials {
  std::string key_pem;
  std::string chain_pem;  // the leaf, then the root
  std::chrono::system_clock::time_point not_after;
};

// Refuses what SignServer refuses: no name; a name that is not a lower-case DNS name (a
// leading "*." allowed); a non-positive ttl.
absl::StatusOr<ServingCredentials> IssueServingCredentials(
    const tls::CertificateAuthority& ca, const std::vector<std::string>& dns_names,
    std::chrono::seconds ttl);

}  // namespace zm::ca
