#pragma once
// zmesh-ca's Kubernetes mode (`--kubeconfig FILE` or `--in-cluster`), put together: the root
// from its Secret (root_secret.h), the pod cache (pod_cache.h) as the NodeAuthorizer, and the
// TokenReview authenticator (token_review.h) resolving ztunnels to nodes through that cache.
// main.cc and the tests hand the three to ClusterCaServer.

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "ca/pod_cache.h"
#include "ca/token_review.h"
#include "common/base/clock.h"
#include "common/kube/client.h"
#include "common/tls/ca.h"

namespace zm::ca {

struct KubeModeOptions {
  std::string trust_domain = "cluster.local";
  NamespacedName root_secret{"zmesh-system", "zmesh-ca-root"};
  NamespacedName ztunnel_service_account{"zmesh-system", "ztunnel"};
  std::string audience = "zmesh-ca";
  std::chrono::seconds token_cache_ttl{60};
  size_t token_cache_capacity = 4096;
  // How long Start waits for the pod cache's first list. Not synced by then is not an error:
  // the server starts and refuses with UNAVAILABLE until it is.
  std::chrono::milliseconds sync_timeout{std::chrono::seconds(30)};
  kube::InformerOptions pod_informer;
  const Clock* clock = &SystemClock::Get();
};

class KubeMode {
 public:
  // Loads or creates the root Secret (its errors stop the start), then starts the pod cache.
  // `api` must outlive the result.
  static absl::StatusOr<std::unique_ptr<KubeMode>> Start(kube::KubeApi& api,
                                                         KubeModeOptions options);

  tls::CertificateAuthority& root() { return *root_; }
  TokenReviewAuthenticator& authenticator() { return *authn_; }
  PodCache& pods() { return *pods_; }

 private:
  KubeMode() = default;

  std::optional<tls::CertificateAuthority> root_;
  std::unique_ptr<PodCache> pods_;
  std::unique_ptr<TokenReviewAuthenticator> authn_;
};

}  // namespace zm::ca
