#pragma once
// The mesh as the waypoint sees it (DESIGN §2, §6): the snapshot translated from the same
// Kubernetes objects as the agent's (local mode: a manifest directory, polled), and the L7
// policies compiled for this waypoint. Readers get an immutable View; Update swaps it.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/base/clock.h"
#include "common/k8s/manifest_store.h"
#include "common/mesh/l7.h"
#include "common/mesh/workload.h"

namespace zm::waypoint {

class MeshConfig {
 public:
  struct View {
    std::shared_ptr<const mesh::Snapshot> snapshot;
    std::shared_ptr<const mesh::L7Policies> policies;
    uint64_t generation = 0;
  };

  MeshConfig(std::string root_namespace, mesh::WaypointRef self, mesh::JwksProvider jwks,
             const Clock& clock);

  // Compiles the policies for this waypoint and publishes the new view; logs the warnings that
  // changed. Any thread (calls are serialized).
  void Update(std::shared_ptr<const mesh::Snapshot> snapshot);
  // nullptr until the first Update: the waypoint refuses streams until then (fail closed).
  std::shared_ptr<const View> Current() const;

  const std::string& root_namespace() const { return root_namespace_; }
  const mesh::WaypointRef& self() const { return self_; }

 private:
  const std::string root_namespace_;
  const mesh::WaypointRef self_;
  const mesh::JwksProvider jwks_;
  const Clock& clock_;
  std::mutex update_mu_;
  std::vector<std::string> last_warnings_;  // guarded by update_mu_
  mutable std::mutex mu_;
  std::shared_ptr<const View> view_;  // guarded by mu_
};

// Local mode's object source: re-reads a manifest directory every `period` (unchanged files are
// not re-parsed) and calls `on_change` with the translated snapshot when a file changed, was
// added or removed. The first call happens in Start(), before it returns.
class ManifestPoller {
 public:
  using OnChange = std::function<void(std::shared_ptr<const mesh::Snapshot>)>;
  ManifestPoller(std::string dir, std::chrono::milliseconds period, OnChange on_change);
  ~ManifestPoller();  // Stop()
  absl::Status Start();
  void Stop();

 private:
  // Names, sizes and modification times of the directory's files: what a change changes.
  std::string Fingerprint() const;
  void Poll();

  k8s::ManifestStore store_;
  const std::chrono::milliseconds period_;
  OnChange on_change_;
  std::string last_fingerprint_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace zm::waypoint
