#pragma once
// The mesh as this ztunnel knows it from the agent's config stream: the current immutable
// snapshot plus the lookups the data path needs per connection (by address, by pod uid),
// indexed once per update and swapped atomically. Readers on any thread take a reference with
// Current() and keep it for the connection's decisions.

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/authz/engine.h"
#include "common/base/ip.h"
#include "common/mesh/peer_authentication.h"
#include "common/mesh/workload.h"

namespace zm::ztunnel {

class MeshView {
 public:
  // `root_namespace`: the mesh-wide namespace of PeerAuthentication and AuthorizationPolicy.
  explicit MeshView(std::shared_ptr<const mesh::Snapshot> snapshot,
                    std::string root_namespace = std::string(mesh::kDefaultRootNamespace),
                    uint64_t generation = 1);

  const mesh::Snapshot& snapshot() const { return *snapshot_; }
  // The AuthorizationPolicies compiled for L4 (the node tunnel).
  const authz::PolicySet& policies() const { return *policies_; }
  const std::string& root_namespace() const { return root_namespace_; }
  // Increases with every update (1 for the first).
  uint64_t generation() const { return generation_; }
  // The running workload with this IP; nullptr when none or when several claim it (identity
  // is never guessed from an ambiguous address).
  const mesh::Workload* WorkloadByIp(const IpAddr& ip) const;
  // Whether several running workloads claim `ip`.
  bool IpAmbiguous(const IpAddr& ip) const;
  // The Service with this VIP; nullptr when none or ambiguous.
  const mesh::Service* ServiceByVip(const IpAddr& vip) const;
  const mesh::Workload* WorkloadByUid(const std::string& uid) const;
  // The policies that apply to `w` at L4, looked up once per view and workload (the view is
  // immutable, so the answer is too).
  std::shared_ptr<const std::vector<const authz::CompiledPolicy*>> PoliciesFor(
      const mesh::Workload& w) const;

 private:
  std::shared_ptr<const mesh::Snapshot> snapshot_;
  std::string root_namespace_;
  uint64_t generation_;
  std::shared_ptr<const authz::PolicySet> policies_;
  std::map<IpAddr, const mesh::Workload*> by_ip_;  // nullptr value: ambiguous
  std::map<IpAddr, const mesh::Service*> by_vip_;  // nullptr value: ambiguous
  std::map<std::string, const mesh::Workload*> by_uid_;
  mutable std::mutex policies_mu_;
  mutable std::map<const mesh::Workload*,
                   std::shared_ptr<const std::vector<const authz::CompiledPolicy*>>>
      policies_for_;
};

class MeshState {
 public:
  explicit MeshState(std::string root_namespace = std::string(mesh::kDefaultRootNamespace))
      : root_namespace_(std::move(root_namespace)) {}
  // Indexes `snapshot` (and compiles its policies) and makes it current.
  void Update(std::shared_ptr<const mesh::Snapshot> snapshot);
  // Null until the first snapshot arrived.
  std::shared_ptr<const MeshView> Current() const;

 private:
  const std::string root_namespace_;
  mutable std::mutex mu_;
  std::shared_ptr<const MeshView> view_;
  uint64_t generation_ = 0;
};

}  // namespace zm::ztunnel
