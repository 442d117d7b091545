#pragma once
// Cluster mode's object source (DESIGN §2), for the agent and the waypoint: informers on the API
// server for Namespaces, Pods (every pod of the cluster: destinations are looked up among all of
// them), Services and the three Istio security kinds (PeerAuthentication, AuthorizationPolicy,
// RequestAuthentication), merged into the same k8s::ManifestSnapshot a manifest directory gives
// in local mode. Every object goes through k8s::ParseObject (kinds.h): one translation for both
// modes. Rejected policies are kept (they fail closed). EndpointSlices are not watched: local
// mode has none either (a Service's endpoints are the pods its selector matches).
//
// Changes are coalesced like the manifest watcher's: a snapshot is built `quiet` after the last
// change, or `max_delay` after the first of a burst that never goes quiet. No snapshot exists
// before every informer has synced (its first list applied): neither the agent nor a waypoint
// may decide anything, nor report ready, on a partial view (DESIGN §3 "no bypass window").
//
// Threads: each informer runs its own (list, watch, handlers); one more thread builds the
// snapshots and calls the callback (calls never overlap). Current(), HasSynced() and
// ObservedStatus() are safe from any thread.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/k8s/object_source.h"
#include "common/kube/informer.h"
#include "common/kube/kinds.h"

namespace zm::kube {

// The annotation the agent writes on each pod of its node in an enrolled namespace (DESIGN §3;
// agent/pod_status.h).
inline constexpr std::string_view kStatusAnnotation = "zmesh.io/status";

// A pod as the source caches it: the struct local mode reads, and aside from it the
// zmesh.io/status annotation as the API server has it. That annotation is the agent's own output,
// not an input of the mesh: it is taken out of `pod`, and a change to it alone is no news to the
// informer's handlers (equality ignores it), so writing a status never rebuilds the mesh (neither
// the agent's nor any waypoint's).
struct CachedPod {
  k8s::Pod pod;
  std::optional<std::string> status;

  bool operator==(const CachedPod& o) const { return pod == o.pod; }
};
absl::StatusOr<CachedPod> CachedPodFromJson(const nlohmann::json& object);

class KubeSource final : public k8s::ObjectSource {
 public:
  struct Options {
    // Backoff, sleeper and watch timeout for every informer (namespace and selectors stay empty:
    // the whole cluster is watched).
    InformerOptions informer;
    std::chrono::milliseconds quiet{50};
    std::chrono::milliseconds max_delay{1000};
  };

  // Starts the informers and the snapshot thread; `callback` gets the first snapshot once every
  // informer has synced, then every change.
  static std::unique_ptr<KubeSource> Start(KubeApi& api, Callback callback, Options options);
  ~KubeSource() override;  // Stop()
  KubeSource(const KubeSource&) = delete;
  KubeSource& operator=(const KubeSource&) = delete;

  // Stops the informers, then the snapshot thread. Idempotent.
  void Stop();

  // Every informer has synced and the first snapshot exists.
  bool HasSynced() const;
  bool WaitForSync(std::chrono::milliseconds timeout) const;
  // The kinds whose informer has not synced yet ("Pod", ...), for logs and readiness.
  std::vector<std::string> Unsynced() const;

  // Null until synced.
  std::shared_ptr<const k8s::ManifestSnapshot> Current() const override;
  uint64_t snapshots() const;

  // The zmesh.io/status annotation of pod namespace/name with `uid`, as last seen (the agent's
  // status writer): nullopt when the cache has no such pod (with that uid); otherwise the value
  // (nullopt inside: absent).
  std::optional<std::optional<std::string>> ObservedStatus(const std::string& ns,
                                                           const std::string& name,
                                                           const std::string& uid) const;

  // Watch and list statistics of each informer, by kind.
  std::vector<std::pair<std::string, InformerStats>> Stats() const;

 private:
  KubeSource(KubeApi& api, Callback callback, Options options);
  std::vector<InformerBase*> Informers() const;
  void MarkDirty();
  void Run();
  std::shared_ptr<const k8s::ManifestSnapshot> Build() const;
  void Publish();

  const Callback callback_;
  const Options options_;
  std::unique_ptr<NamespaceInformer> namespaces_;
  std::unique_ptr<Informer<CachedPod>> pods_;
  std::unique_ptr<ServiceInformer> services_;
  std::unique_ptr<PeerAuthenticationInformer> peer_authentications_;
  std::unique_ptr<AuthorizationPolicyInformer> authorization_policies_;
  std::unique_ptr<RequestAuthenticationInformer> request_authentications_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool stop_ = false;                                     // guarded by mu_
  bool dirty_ = false;                                    // guarded by mu_
  std::chrono::steady_clock::time_point first_change_{};  // guarded by mu_
  std::chrono::steady_clock::time_point last_change_{};   // guarded by mu_
  std::shared_ptr<const k8s::ManifestSnapshot> current_;  // guarded by mu_
  uint64_t snapshots_ = 0;                                // guarded by mu_
  std::thread thread_;
};

}  // namespace zm::kube
