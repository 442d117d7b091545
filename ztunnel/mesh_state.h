#pragma once
// The mesh as this ztunnel knows it from the agent's config stream: the current immutable
// snapshot plus the lookups the data path needs per connection (by address, by pod uid),
// indexed once per update and swapped atomically. Readers on any thread take a reference with
// Current() and keep it for the connection's decisions.

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/base/ip.h"
#include "common/mesh/workload.h"

namespace zm::ztunnel {

class MeshView {
 public:
  explicit MeshView(std::shared_ptr<const mesh::Snapshot> snapshot);

  const mesh::Snapshot& snapshot() const { return *snapshot_; }
  // The running workload with this IP; nullptr when none or when several claim it (identity
  // is never guessed from an ambiguous address).
  const mesh::Workload* WorkloadByIp(const IpAddr& ip) const;
  // Whether several running workloads claim `ip`.
  bool IpAmbiguous(const IpAddr& ip) const;
  // The Service with this VIP; nullptr when none or ambiguous.
  const mesh::Service* ServiceByVip(const IpAddr& vip) const;
  const mesh::Workload* WorkloadByUid(const std::string& uid) const;

 private:
  std::shared_ptr<const mesh::Snapshot> snapshot_;
  std::map<IpAddr, const mesh::Workload*> by_ip_;  // nullptr value: ambiguous
  std::map<IpAddr, const mesh::Service*> by_vip_;  // nullptr value: ambiguous
  std::map<std::string, const mesh::Workload*> by_uid_;
};

class MeshState {
 public:
  // Indexes `snapshot` and makes it current.
  void Update(std::shared_ptr<const mesh::Snapshot> snapshot);
  // Null until the first snapshot arrived.
  std::shared_ptr<const MeshView> Current() const;

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const MeshView> view_;
};

}  // namespace zm::ztunnel
