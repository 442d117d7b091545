#pragma once
// Who is calling zmesh-ca in Kubernetes mode: the caller's projected service-account token
// (audience `zmesh-ca`), checked with an authentication.k8s.io/v1 TokenReview (DESIGN §5).
//
// - The review must say authenticated, its status.audiences must include the audience, and the
//   user must be a service account, `system:serviceaccount:<ns>:<sa>`; otherwise
//   Unauthenticated with the reason (the API's status.error for an expired or forged token).
// - The ztunnel service account (`zmesh-system/ztunnel` by default) is a ztunnel: its token
//   must be bound to a pod (user.extra authentication.kubernetes.io/pod-name and pod-uid, which
//   projected tokens carry), and the caller's node is that pod's spec.nodeName (PodNodeLookup,
//   PodCache in production), looked up on every call.
// - Any other service account (a waypoint) may obtain only its own identity,
//   spiffe://<trust domain>/ns/<ns>/sa/<sa> (Caller::identity).
// - The API unreachable or refusing the review: Unavailable (fail closed; the caller retries).
//
// Positive reviews are cached by the SHA-256 of the token for `cache_ttl` (never past the
// token's own `exp` claim, read without verification once the review accepted it), at most
// `cache_capacity` tokens; refusals are not cached. Tokens are never logged. Thread-safe: the
// review runs on the calling thread without a lock held.

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "ca/token_auth.h"
#include "common/base/clock.h"
#include "common/kube/client.h"

namespace zm::ca {

// A namespaced name from a flag: "zmesh-system/ztunnel".
struct NamespacedName {
  std::string namespace_name;
  std::string name;
  std::string ToString() const { return namespace_name + "/" + name; }
  bool operator==(const NamespacedName&) const = default;
};

// "NS/NAME", both DNS labels; InvalidArgument naming `what` otherwise.
absl::StatusOr<NamespacedName> ParseNamespacedName(std::string_view value, std::string_view what);

// The node of pod ns/name with uid `uid` (PodCache::NodeOfPod).
using PodNodeLookup = std::function<absl::StatusOr<std::string>(
    std::string_view ns, std::string_view name, std::string_view uid)>;

struct TokenReviewOptions {
  std::string audience = "zmesh-ca";
  std::string trust_domain = "cluster.local";
  NamespacedName ztunnel_service_account{"zmesh-system", "ztunnel"};
  std::chrono::seconds cache_ttl{60};
  size_t cache_capacity = 4096;
  const Clock* clock = &SystemClock::Get();
};

class TokenReviewAuthenticator final : public TokenAuthenticator {
 public:
  // `api` must outlive the authenticator.
  TokenReviewAuthenticator(kube::KubeApi& api, PodNodeLookup node_of_pod,
                           TokenReviewOptions options = {});

  absl::StatusOr<Caller> Authenticate(std::string_view token) override;

  // Tokens in the cache now (expired ones included until they are evicted).
  size_t cached() const;

 private:
  // What a review established about a token.
  struct Reviewed {
    NamespacedName service_account;
    std::string pod_name;  // the pod the token is bound to; empty when not bound
    std::string pod_uid;
    std::chrono::system_clock::time_point expires;  // of the cache entry
  };

  // A fresh TokenReview of `token`, checked.
  absl::StatusOr<Reviewed> Review(std::string_view token);
  // The caller a reviewed token stands for (the ztunnel's node looked up now).
  absl::StatusOr<Caller> CallerOf(const Reviewed& reviewed) const;
  void Remember(std::string digest, const Reviewed& reviewed);

  kube::KubeApi& api_;
  const PodNodeLookup node_of_pod_;
  const TokenReviewOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, Reviewed> cache_;  // by TokenDigest; guarded by mu_
};

}  // namespace zm::ca
