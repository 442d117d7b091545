#include "ztunnel/mesh_state.h"

#include "common/mesh/authorization.h"

namespace zm::ztunnel {
namespace {

template <typename T>
void Claim(std::map<IpAddr, const T*>& index, const IpAddr& ip, const T* owner) {
  auto [it, inserted] = index.emplace(ip, owner);
  if (!inserted && it->second != owner) it->second = nullptr;  // claimed twice: ambiguous
}

template <typename T>
const T* Lookup(const std::map<IpAddr, const T*>& index, const IpAddr& ip) {
  auto it = index.find(ip);
  return it == index.end() ? nullptr : it->second;
}

}  // namespace

MeshView::MeshView(std::shared_ptr<const mesh::Snapshot> snapshot, std::string root_namespace,
                   uint64_t generation)
    : snapshot_(std::move(snapshot)),
      root_namespace_(std::move(root_namespace)),
      generation_(generation),
      policies_(mesh::BuildL4PolicySet(*snapshot_, root_namespace_)) {
  for (const mesh::Workload& w : snapshot_->workloads) {
    by_uid_.emplace(w.uid, &w);
    if (w.terminal()) continue;
    for (const IpAddr& ip : w.ips) Claim(by_ip_, ip, &w);
  }
  for (const mesh::Service& s : snapshot_->services) {
    for (const IpAddr& vip : s.vips) Claim(by_vip_, vip, &s);
  }
}

const mesh::Workload* MeshView::WorkloadByIp(const IpAddr& ip) const { return Lookup(by_ip_, ip); }

bool MeshView::IpAmbiguous(const IpAddr& ip) const {
  auto it = by_ip_.find(ip);
  return it != by_ip_.end() && it->second == nullptr;
}

const mesh::Service* MeshView::ServiceByVip(const IpAddr& vip) const {
  return Lookup(by_vip_, vip);
}

const mesh::Workload* MeshView::WorkloadByUid(const std::string& uid) const {
  auto it = by_uid_.find(uid);
  return it == by_uid_.end() ? nullptr : it->second;
}

std::shared_ptr<const std::vector<const authz::CompiledPolicy*>> MeshView::PoliciesFor(
    const mesh::Workload& w) const {
  std::lock_guard lock(policies_mu_);
  auto& slot = policies_for_[&w];
  if (!slot) {
    slot = std::make_shared<const std::vector<const authz::CompiledPolicy*>>(
        policies_->ForWorkload(w.ns, w.labels));
  }
  return slot;
}

void MeshState::Update(std::shared_ptr<const mesh::Snapshot> snapshot) {
  uint64_t generation;
  {
    std::lock_guard lock(mu_);
    generation = ++generation_;
  }
  // Built outside the lock: readers keep the previous view meanwhile.
  auto view = std::make_shared<const MeshView>(std::move(snapshot), root_namespace_, generation);
  std::lock_guard lock(mu_);
  if (!view_ || view_->generation() < generation) view_ = std::move(view);
}

std::shared_ptr<const MeshView> MeshState::Current() const {
  std::lock_guard lock(mu_);
  return view_;
}

}  // namespace zm::ztunnel
