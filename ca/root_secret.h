#pragma once
// The mesh root in a Kubernetes Secret (zmesh-ca, Kubernetes mode; DESIGN §5): by default
// `zmesh-system/zmesh-ca-root`, type kubernetes.io/tls, data `tls.crt` (the root certificate,
// PEM) and `tls.key` (its P-256 key, PKCS#8 PEM), base64 as the API carries them.
//
// Read at start; when the Secret does not exist, a new root is created
// (tls::CertificateAuthority::GenerateRoot, as the file-backed root is) and the Secret created;
// when another replica created it first (409 AlreadyExists), the winner's root is read and used.
// A Secret that exists but is unusable (no data, a key missing, not base64, not PEM, a key that
// does not match, not a CA, expired) stops the start with an error naming the Secret and the key
// — it is never overwritten. The key is never logged.

#include <string>

#include "absl/status/statusor.h"
#include "ca/token_review.h"
#include "common/base/clock.h"
#include "common/kube/client.h"
#include "common/tls/ca.h"

namespace zm::ca {

inline constexpr char kRootCertKey[] = "tls.crt";
inline constexpr char kRootKeyKey[] = "tls.key";

absl::StatusOr<tls::CertificateAuthority> LoadOrCreateRootSecret(kube::KubeApi& api,
                                                                 const NamespacedName& secret,
                                                                 std::string trust_domain,
                                                                 const Clock& clock);

}  // namespace zm::ca
