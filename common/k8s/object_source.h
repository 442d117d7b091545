#pragma once
// Where Kubernetes objects come from (the agent's, and the waypoint's) (DESIGN §2): a manifest directory (local mode,
// ManifestWatcher) or the API server (cluster mode, KubeSource). Both hand the control thread
// the same immutable ManifestSnapshot, so everything downstream — the mesh model, the
// enrollment decision, the config stream — is one code path for both modes.

#include <functional>
#include <memory>

#include "common/k8s/manifest_store.h"

namespace zm::k8s {

class ObjectSource {
 public:
  // Called with every new snapshot, on the source's own thread; calls never overlap.
  using Callback = std::function<void(std::shared_ptr<const ManifestSnapshot>)>;

  virtual ~ObjectSource() = default;
  // The latest snapshot (the one last given to the callback, or about to be).
  virtual std::shared_ptr<const ManifestSnapshot> Current() const = 0;
};

}  // namespace zm::k8s
