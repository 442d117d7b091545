#include "waypoint/mesh_config.h"

#include "common/base/log.h"
#include "common/base/strings.h"

namespace zm::waypoint {

MeshConfig::MeshConfig(std::string root_namespace, mesh::WaypointRef self,
                       mesh::JwksProvider jwks, const Clock& clock)
    : root_namespace_(std::move(root_namespace)),
      self_(std::move(self)),
      jwks_(std::move(jwks)),
      clock_(clock) {}

void MeshConfig::Update(std::shared_ptr<const mesh::Snapshot> snapshot) {
  std::lock_guard update(update_mu_);
  auto view = std::make_shared<View>();
  view->policies = mesh::L7Policies::Build(*snapshot, root_namespace_, self_, jwks_, clock_);
  view->snapshot = std::move(snapshot);
  std::vector<std::string> warnings = view->policies->warnings();
  if (warnings != last_warnings_) {
    for (const std::string& w : warnings) Log("config").warn("{}", w);
    last_warnings_ = std::move(warnings);
  }
  std::lock_guard lock(mu_);
  view->generation = view_ ? view_->generation + 1 : 1;
  Log("config").info(
      "mesh version {}: {} workloads, {} services, {} authorization policies ({} rejected), {} "
      "request authentications ({} rejected)",
      view->generation, view->snapshot->workloads.size(), view->snapshot->services.size(),
      view->snapshot->authorization_policies.size(),
      view->snapshot->rejected_authorization_policies.size(),
      view->snapshot->request_authentications.size(),
      view->snapshot->rejected_request_authentications.size());
  view_ = std::move(view);
}

std::shared_ptr<const MeshConfig::View> MeshConfig::Current() const {
  std::lock_guard lock(mu_);
  return view_;
}

}  // namespace zm::waypoint
