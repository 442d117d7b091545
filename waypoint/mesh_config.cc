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

namespace {

template <typename T>
std::vector<std::string> Keys(const std::vector<T>& objects) {
  std::vector<std::string> out;
  out.reserve(objects.size());
  for (const T& o : objects) out.push_back(o.key());
  return out;
}

}  // namespace

nlohmann::ordered_json DumpPolicies(const MeshConfig::View& view) {
  const mesh::Snapshot& s = *view.snapshot;
  const mesh::L7Policies::Destination& own = view.policies->For(nullptr);
  nlohmann::ordered_json attached = nlohmann::json::array();
  for (const authz::CompiledPolicy* p : own.policies) {
    attached.push_back({{"name", p->key}, {"action", std::string(authz::ActionName(p->action))}});
  }
  return {{"authorization_policies", Keys(s.authorization_policies)},
          {"rejected_authorization_policies", Keys(s.rejected_authorization_policies)},
          {"request_authentications", Keys(s.request_authentications)},
          {"rejected_request_authentications", Keys(s.rejected_request_authentications)},
          {"attached_to_waypoint",
           {{"authorization_policies", attached},
            {"request_authentications", own.request_authentications}}}};
}

}  // namespace zm::waypoint
