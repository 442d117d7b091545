#include "ca/node_authorizer.h"

#include "common/base/log.h"
#include "common/base/strings.h"
#include "common/mesh/workload.h"

namespace zm::ca {
namespace {

spdlog::logger& L() {
  static spdlog::logger& l = Log("ca");
  return l;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ManifestNodeAuthorizer>> ManifestNodeAuthorizer::Open(
    std::string dir, std::string trust_domain) {
  auto out = std::unique_ptr<ManifestNodeAuthorizer>(
      new ManifestNodeAuthorizer(std::move(dir), std::move(trust_domain)));
  if (absl::Status st = out->store_.Reload(); !st.ok()) {
    return absl::Status(st.code(), StrCat("manifests: ", st.message()));
  }
  for (const std::string& e : out->store_.Snapshot().errors) L().warn("manifests: {}", e);
  return out;
}

absl::Status ManifestNodeAuthorizer::Authorize(std::string_view node,
                                               const tls::SpiffeId& identity) {
  if (node.empty()) return absl::PermissionDeniedError("the caller is not bound to a node");
  if (identity.trust_domain != trust_domain_) {
    return absl::PermissionDeniedError(
        StrCat(identity.ToString(), " is outside trust domain ", trust_domain_));
  }
  k8s::ManifestSnapshot objects;
  {
    std::lock_guard lock(mu_);
    if (absl::Status st = store_.Reload(); !st.ok()) {
      L().error("manifests {}: {}; refusing", store_.dir(), st.message());
      return absl::UnavailableError(StrCat("manifests unreadable: ", st.message()));
    }
    objects = store_.Snapshot();
  }
  const mesh::Snapshot mesh = mesh::BuildSnapshot(objects);
  for (const mesh::Workload& w : mesh.workloads) {
    // WorkloadFromPod already turned an empty service account into "default".
    if (w.node == node && w.ns == identity.ns && w.service_account == identity.sa &&
        !w.terminal()) {
      return absl::OkStatus();
    }
  }
  return absl::PermissionDeniedError(StrCat("no running or pending pod on node ", node,
                                            " runs as ns/", identity.ns, "/sa/", identity.sa));
}

}  // namespace zm::ca
