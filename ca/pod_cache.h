#pragma once
// zmesh-ca's view of the cluster's pods (Kubernetes mode): a Pod informer over every namespace
// (the fake API server, like a careful client, is not asked for field selectors), indexed by
// (node, namespace, service account) of the pods that are scheduled and not finished. It is
// the NodeAuthorizer of Kubernetes mode (DESIGN §5: a ztunnel may obtain an identity only if a
// pod with that service account runs on its node) and tells TokenReviewAuthenticator which
// node the pod a ztunnel's token is bound to runs on.
//
// Threads: the informer's own thread applies changes to the index; Authorize and NodeOfPod
// are called from gRPC's threads. Until the first list has been applied every answer is
// Unavailable (fail closed, the caller retries).

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>

#include "absl/status/statusor.h"
#include "ca/node_authorizer.h"
#include "common/kube/kinds.h"

namespace zm::ca {

class PodCache final : public NodeAuthorizer {
 public:
  PodCache(kube::KubeApi& api, std::string trust_domain, kube::InformerOptions options = {});
  ~PodCache() override;
  PodCache(const PodCache&) = delete;
  PodCache& operator=(const PodCache&) = delete;

  // Starts the informer (once); Stop() ends it (idempotent, also on destruction).
  void Start();
  void Stop();
  bool WaitForSync(std::chrono::milliseconds timeout) const;
  bool synced() const;

  // OK when a pod of identity's namespace and service account, spec.nodeName == node and a
  // phase other than Succeeded/Failed is cached; PermissionDenied naming node and identity
  // otherwise; Unavailable before the first sync.
  absl::Status Authorize(std::string_view node, const tls::SpiffeId& identity) override;

  // spec.nodeName of pod ns/name, which must have uid `uid` (a token is bound to one pod, not
  // to a name that may be reused). Unavailable before the first sync or when the pod is not
  // (yet) cached; Unauthenticated when its uid differs (the bound pod is gone);
  // PermissionDenied when it is not scheduled.
  absl::StatusOr<std::string> NodeOfPod(std::string_view ns, std::string_view name,
                                        std::string_view uid) const;

  const kube::InformerBase& informer() const { return *informer_; }

 private:
  using Key = std::tuple<std::string, std::string, std::string>;  // node, namespace, sa
  // The index key of a pod that may have certificates, or nullopt (unscheduled, finished).
  static std::optional<Key> KeyOf(const k8s::Pod& pod);
  void Count(const k8s::Pod& pod, int delta);

  const std::string trust_domain_;
  std::unique_ptr<kube::PodInformer> informer_;
  mutable std::mutex mu_;
  std::map<Key, int> running_;  // guarded by mu_: how many cached pods have each key
};

}  // namespace zm::ca
