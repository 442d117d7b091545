#pragma once
// Certificate signing requests carrying one SPIFFE ID as their only SAN.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/tls/ossl.h"
#include "common/tls/spiffe.h"

namespace zm::tls {

// A PEM CSR for `id`, signed by `key`: a URI SAN and nothing else (empty subject).
absl::StatusOr<std::string> BuildCsr(EVP_PKEY* key, const SpiffeId& id);

struct ParsedCsr {
  EvpPkeyPtr public_key;
  SpiffeId identity;
};

// Decodes a PEM CSR and checks it: a valid self-signature; an EC P-256/P-384 or RSA >= 2048
// key; exactly one subjectAltName extension holding exactly one URI SAN, a valid SPIFFE ID,
// and no SAN of any other kind (DNS, IP, e-mail, ...). Other requested extensions are
// ignored: the CA decides what goes into the certificate.
absl::StatusOr<ParsedCsr> ParseCsr(std::string_view pem);

}  // namespace zm::tls
