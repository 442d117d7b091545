#pragma once
// Workload identities: SPIFFE IDs of the one shape the mesh uses,
// spiffe://<trust-domain>/ns/<namespace>/sa/<service-account> (DESIGN 5, policy-semantics 1.2).

#include <openssl/x509.h>

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/tls/ossl.h"

namespace zm::tls {

struct SpiffeId {
  std::string trust_domain;
  std::string ns;
  std::string sa;

  // Strict: exactly "spiffe://<td>/ns/<ns>/sa/<sa>"; lower-case scheme; trust domain of
  // [a-z0-9.-_] (so no port, userinfo, upper case or percent-encoding); namespace a DNS label;
  // service account a DNS subdomain; no query, fragment, empty or extra segment.
  static absl::StatusOr<SpiffeId> Parse(std::string_view uri);

  // The identity of service account `sa` ("" reads as "default", as Kubernetes does) of
  // namespace `ns`, validated like Parse.
  static absl::StatusOr<SpiffeId> ForServiceAccount(std::string_view trust_domain,
                                                    std::string_view ns, std::string_view sa);
  // "spiffe://cluster.local/ns/x/sa/y".
  std::string ToString() const;
  // "cluster.local/ns/x/sa/y": how policies write principals.
  std::string Principal() const;

  friend bool operator==(const SpiffeId&, const SpiffeId&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const SpiffeId& id) {
    return H::combine(std::move(h), id.trust_domain, id.ns, id.sa);
  }
};

// The identity of a certificate: it must carry exactly one URI SAN, and that must parse.
absl::StatusOr<SpiffeId> SpiffeIdOfCert(X509* cert);

// A subjectAltName value holding exactly `id` as its URI (for CSRs and certificates).
absl::StatusOr<GeneralNamesPtr> SpiffeSan(const SpiffeId& id);

}  // namespace zm::tls
