#pragma once
// The mesh as the waypoint sees it (DESIGN §2, §6): the snapshot translated from the same
// Kubernetes objects as the agent's (local mode: a manifest directory, watched by
// k8s::ManifestWatcher; cluster mode: the API server, through kube::KubeSource — both the agent's
// sources), and the L7 policies compiled for this waypoint. Readers get an immutable View; Update
// swaps it.

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "common/base/clock.h"
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

// The policies of `view` for /config_dump: every AuthorizationPolicy and RequestAuthentication the
// waypoint was given ("ns/name", valid and rejected), and those that attach to the waypoint itself
// (its Gateway's, each with its action).
nlohmann::ordered_json DumpPolicies(const MeshConfig::View& view);

}  // namespace zm::waypoint
