#include "ca/kube_mode.h"

#include "ca/root_secret.h"
#include "common/base/log.h"

namespace zm::ca {

absl::StatusOr<std::unique_ptr<KubeMode>> KubeMode::Start(kube::KubeApi& api,
                                                          KubeModeOptions options) {
  auto out = std::unique_ptr<KubeMode>(new KubeMode());
  auto root =
      LoadOrCreateRootSecret(api, options.root_secret, options.trust_domain, *options.clock);
  if (!root.ok()) return root.status();
  out->root_.emplace(*std::move(root));

  out->pods_ = std::make_unique<PodCache>(api, options.trust_domain, options.pod_informer);
  PodCache* pods = out->pods_.get();
  out->authn_ = std::make_unique<TokenReviewAuthenticator>(
      api,
      [pods](std::string_view ns, std::string_view name, std::string_view uid) {
        return pods->NodeOfPod(ns, name, uid);
      },
      TokenReviewOptions{.audience = options.audience,
                         .trust_domain = options.trust_domain,
                         .ztunnel_service_account = options.ztunnel_service_account,
                         .cache_ttl = options.token_cache_ttl,
                         .cache_capacity = options.token_cache_capacity,
                         .clock = options.clock});
  pods->Start();
  if (!pods->WaitForSync(options.sync_timeout)) {
    Log("ca").warn(
        "the pod cache has not synced after {} ms ({}): refusing ztunnels with "
        "UNAVAILABLE until it has",
        options.sync_timeout.count(), pods->informer().Stats().last_error);
  }
  return out;
}

}  // namespace zm::ca
