#include "common/mesh/authorization.h"

#include "common/base/strings.h"

namespace zm::mesh {

bool IsWaypointOf(const Snapshot& snapshot, const Workload& destination,
                  std::string_view principal) {
  if (destination.waypoint.empty()) return false;
  const size_t slash = destination.waypoint.find('/');
  const Service* svc = snapshot.FindService(destination.waypoint.substr(0, slash),
                                            destination.waypoint.substr(slash + 1));
  if (svc == nullptr) return false;
  for (const ServiceEndpoint& ep : svc->endpoints) {
    const size_t s = ep.workload.find('/');
    const Workload* w = snapshot.FindWorkload(ep.workload.substr(0, s), ep.workload.substr(s + 1));
    if (w == nullptr || w->terminal()) continue;
    // identity() is "spiffe://<td>/ns/<ns>/sa/<sa>"; principals are written without the scheme.
    if (std::string_view(w->identity()).substr(9) == principal) return true;
  }
  return false;
}

std::shared_ptr<const authz::PolicySet> BuildL4PolicySet(const Snapshot& snapshot,
                                                         std::string_view root_namespace) {
  return authz::PolicySet::Build(
      snapshot.authorization_policies, snapshot.rejected_authorization_policies,
      authz::PolicySetOptions{.layer = authz::Layer::kL4,
                              .root_namespace = std::string(root_namespace),
                              .zero_trust = snapshot.default_policy == DefaultPolicy::kZeroTrust});
}

L4Verdict AuthorizeL4(const Snapshot& snapshot, const authz::PolicySet& policies,
                      const Workload& destination, const L4Request& request,
                      std::string_view root_namespace, bool want_trace) {
  auto applicable = policies.ForWorkload(destination.ns, destination.labels);
  return AuthorizeL4(snapshot, policies, applicable, destination, request, root_namespace,
                     want_trace);
}

L4Verdict AuthorizeL4(const Snapshot& snapshot, const authz::PolicySet& policies,
                      std::span<const authz::CompiledPolicy* const> applicable,
                      const Workload& destination, const L4Request& request,
                      std::string_view root_namespace, bool want_trace) {
  L4Verdict v;
  if (!request.tunneled) {
    MtlsDecision mtls = ExplainMtlsMode(snapshot, destination, request.port, root_namespace,
                                        snapshot.default_policy);
    if (want_trace) {
      for (const std::string& line : mtls.trace) v.trace.push_back(StrCat("mTLS: ", line));
    }
    if (!PlaintextAllowed(mtls.mode)) {
      v.allowed = false;
      v.decided_by = L4Verdict::DecidedBy::kPeerAuthentication;
      v.policy = mtls.policy;
      v.reason = StrCat(
          "plaintext to port ", request.port, " but mTLS is ", MtlsModeName(mtls.mode), " (",
          MtlsLevelName(mtls.level),
          mtls.policy.empty() ? std::string() : StrCat(" PeerAuthentication ", mtls.policy), ")");
      return v;
    }
  }
  authz::Attributes attrs{.principal = request.principal,
                          .source_ip = request.source_ip,
                          .destination_ip = request.destination_ip,
                          .destination_port = request.port};
  authz::Decision d = policies.Evaluate(applicable, destination.ns, attrs, want_trace);
  if (!d.allowed && d.policy.empty() && request.principal &&
      IsWaypointOf(snapshot, destination, *request.principal)) {
    // DESIGN §6: the implicit ALLOW for the destination's own waypoint, so ALLOW policies
    // written for the original sources do not lock the waypoint out. DENY policies still apply
    // (d.policy is set when one decided).
    d.allowed = true;
    d.rule.reset();
    d.implicit = true;
    d.reason = StrCat("implicit ALLOW: ", *request.principal, " is the destination's waypoint ",
                      destination.waypoint);
    if (want_trace) d.trace.push_back(d.reason);
  }
  v.allowed = d.allowed;
  v.policy = std::move(d.policy);
  v.rule = d.rule;
  v.reason = std::move(d.reason);
  v.dry_run = std::move(d.dry_run);
  for (std::string& line : d.trace) v.trace.push_back(StrCat("policy: ", line));
  return v;
}

}  // namespace zm::mesh
