#include "ca/pod_cache.h"

#include "common/base/strings.h"

namespace zm::ca {

PodCache::PodCache(kube::KubeApi& api, std::string trust_domain, kube::InformerOptions options)
    : trust_domain_(std::move(trust_domain)),
      informer_(kube::NewPodInformer(api, std::move(options))) {
  informer_->AddHandlers({
      .on_add = [this](const k8s::Pod& pod) { Count(pod, +1); },
      .on_update =
          [this](const k8s::Pod& old_pod, const k8s::Pod& new_pod) {
            Count(old_pod, -1);
            Count(new_pod, +1);
          },
      .on_delete = [this](const k8s::Pod& pod) { Count(pod, -1); },
  });
}

PodCache::~PodCache() { Stop(); }

void PodCache::Start() { informer_->Start(); }
void PodCache::Stop() { informer_->Stop(); }
bool PodCache::WaitForSync(std::chrono::milliseconds timeout) const {
  return informer_->WaitForSync(timeout);
}
bool PodCache::synced() const { return informer_->HasSynced(); }

std::optional<PodCache::Key> PodCache::KeyOf(const k8s::Pod& pod) {
  if (pod.node_name.empty() || pod.phase == "Succeeded" || pod.phase == "Failed") {
    return std::nullopt;
  }
  return Key{pod.node_name, pod.namespace_name, pod.service_account};
}

void PodCache::Count(const k8s::Pod& pod, int delta) {
  std::optional<Key> key = KeyOf(pod);
  if (!key) return;
  std::lock_guard lock(mu_);
  int& n = running_[*key];
  n += delta;
  if (n <= 0) running_.erase(*key);
}

absl::Status PodCache::Authorize(std::string_view node, const tls::SpiffeId& identity) {
  if (node.empty()) return absl::PermissionDeniedError("the caller is not bound to a node");
  if (identity.trust_domain != trust_domain_) {
    return absl::PermissionDeniedError(
        StrCat(identity.ToString(), " is outside trust domain ", trust_domain_));
  }
  if (!synced()) return absl::UnavailableError("the pod cache has not synced with the API yet");
  {
    std::lock_guard lock(mu_);
    if (running_.contains(Key{std::string(node), identity.ns, identity.sa})) {
      return absl::OkStatus();
    }
  }
  return absl::PermissionDeniedError(StrCat("no running or pending pod on node ", node,
                                            " runs as ns/", identity.ns, "/sa/", identity.sa));
}

absl::StatusOr<std::string> PodCache::NodeOfPod(std::string_view ns, std::string_view name,
                                                std::string_view uid) const {
  if (!synced()) return absl::UnavailableError("the pod cache has not synced with the API yet");
  std::optional<k8s::Pod> pod = informer_->Get(StrCat(ns, "/", name));
  if (!pod)
    return absl::UnavailableError(StrCat("pod ", ns, "/", name, " is not in the pod cache"));
  if (pod->uid != uid) {
    return absl::UnauthenticatedError(StrCat("the token is bound to pod ", ns, "/", name, " uid ",
                                             uid, ", which is gone (the pod now has uid ", pod->uid,
                                             ")"));
  }
  if (pod->node_name.empty()) {
    return absl::PermissionDeniedError(
        StrCat("pod ", ns, "/", name, " is not scheduled to a node"));
  }
  return pod->node_name;
}

}  // namespace zm::ca
