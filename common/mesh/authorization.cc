#include "common/mesh/authorization.h"

#include "common/base/strings.h"

namespace zm::mesh {

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
  v.allowed = d.allowed;
  v.policy = std::move(d.policy);
  v.rule = d.rule;
  v.reason = std::move(d.reason);
  v.dry_run = std::move(d.dry_run);
  for (std::string& line : d.trace) v.trace.push_back(StrCat("policy: ", line));
  return v;
}

}  // namespace zm::mesh
