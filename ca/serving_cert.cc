#include "ca/serving_cert.h"

#include "common/base/status.h"
#include "common/tls/hbone_tls.h"
#include "common/tls/pem.h"

namespace zm::ca {

absl::StatusOr<ServingCredentials> IssueServingCredentials(
    const tls::CertificateAuthority& ca, const std::vector<std::string>& dns_names,
    std::chrono::seconds ttl) {
  ZM_ASSIGN_OR_RETURN(tls::EvpPkeyPtr key, tls::GenerateEcP256Key());
  ZM_ASSIGN_OR_RETURN(std::vector<std::string> chain, ca.SignServer(key.get(), dns_names, ttl));
  ZM_ASSIGN_OR_RETURN(std::string key_pem, tls::PrivateKeyToPem(key.get()));
  // Read back as TLS will use it: the key matches the leaf, and the leaf's own notAfter.
  ZM_ASSIGN_OR_RETURN(tls::Credentials creds, tls::Credentials::FromPem(key_pem, chain));
  ZM_ASSIGN_OR_RETURN(std::string chain_pem, tls::CertsToPem(creds.chain));
  return ServingCredentials{.key_pem = std::move(key_pem),
                            .chain_pem = std::move(chain_pem),
                            .not_after = creds.NotAfter()};
}

}  // namespace zm::ca
