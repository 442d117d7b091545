#include "ztunnel/authorizer.h"

#include <utility>
#include <vector>

#include "common/base/log.h"
#include "common/base/strings.h"
#include "ztunnel/mesh_state.h"

namespace zm::ztunnel {
namespace {

constexpr std::string_view kSpiffeScheme = "spiffe://";

std::optional<std::string> PrincipalOf(const std::string& peer) {
  if (peer.empty()) return std::nullopt;
  if (peer.starts_with(kSpiffeScheme)) return peer.substr(kSpiffeScheme.size());
  return peer;
}

std::string RuleText(const std::optional<int>& rule) {
  return rule ? std::to_string(*rule) : std::string("-");
}

}  // namespace

void Authorizer::Report(const InboundConnection& c, const mesh::L4Verdict& v, FailureReason reason,
                        std::string_view result, std::string_view reason_prefix) {
  metrics_.CountFailure(reason);
  if (reason == FailureReason::kPolicyDenied) {
    metrics_.CountDenial(DenialLabels{.policy = v.policy,
                                      .destination_workload = c.pod->name,
                                      .destination_namespace = c.pod->ns});
  }
  // The connection's access-log line (its caller writes none).
  Log("proxy").info(
      "conn={} dir={} pod={} src={} dst={}{} result={} policy={} rule={} hop=ztunnel "
      "reason=\"{}{}\"",
      c.id, c.dir, c.pod->DisplayName(), c.src.ToString(), c.dst.ToString(),
      c.peer.empty() ? std::string() : StrCat(" peer=", c.peer), result,
      v.policy.empty() ? "-" : v.policy, RuleText(v.rule), reason_prefix, v.reason);
}

mesh::L4Verdict Authorizer::Decide(const InboundConnection& c, FailureReason* reason) const {
  mesh::L4Verdict v;
  v.allowed = false;
  *reason = FailureReason::kNoConfig;
  auto view = mesh_.Current();
  if (!view) {
    v.reason = "no mesh configuration from the agent yet";
    return v;
  }
  const mesh::Workload* w = view->WorkloadByUid(c.pod->uid);
  if (w == nullptr) {
    v.reason = StrCat("pod ", c.pod->DisplayName(), " (", c.pod->uid,
                      ") is not in the mesh configuration yet");
    return v;
  }
  mesh::L4Request req{.principal = PrincipalOf(c.peer),
                      .source_ip = c.src.ip,
                      .destination_ip = c.dst.ip,
                      .port = c.dst.port,
                      .tunneled = !c.peer.empty()};
  auto applicable = view->PoliciesFor(*w);
  v = mesh::AuthorizeL4(view->snapshot(), view->policies(), *applicable, *w, req,
                        view->root_namespace());
  *reason = v.decided_by == mesh::L4Verdict::DecidedBy::kPeerAuthentication
                ? FailureReason::kMtlsRequired
                : FailureReason::kPolicyDenied;
  return v;
}

Authorizer::Admission Authorizer::Admit(const InboundConnection& c, Closer closer) {
  Admission a;
  mesh::L4Verdict v;
  {
    std::lock_guard lock(mu_);
    v = Decide(c, &a.reason);
    a.allowed = v.allowed;
    if (v.allowed) {
      a.handle = next_handle_++;
      live_.emplace(a.handle, Live{c, std::move(closer)});
    }
  }
  for (const std::string& line : v.dry_run) {
    Log("authz").info("conn={} dir={} pod={} src={} dst={} {}", c.id, c.dir, c.pod->DisplayName(),
                      c.src.ToString(), c.dst.ToString(), line);
  }
  if (v.allowed) return a;
  a.detail = v.reason;
  Report(c, v, a.reason, FailureName(a.reason), "");
  return a;
}

void Authorizer::Release(uint64_t handle) {
  std::lock_guard lock(mu_);
  live_.erase(handle);
}

size_t Authorizer::live() const {
  std::lock_guard lock(mu_);
  return live_.size();
}

void Authorizer::Recheck() {
  struct Revoked {
    InboundConnection conn;
    Closer closer;
    mesh::L4Verdict verdict;
    FailureReason reason;
  };
  std::vector<Revoked> revoked;
  {
    std::lock_guard lock(mu_);
    for (auto it = live_.begin(); it != live_.end();) {
      FailureReason reason;
      mesh::L4Verdict v = Decide(it->second.conn, &reason);
      // Without a view (cannot happen after the first) nothing is revoked: only a policy
      // decision closes a live connection.
      if (v.allowed || reason == FailureReason::kNoConfig) {
        ++it;
        continue;
      }
      revoked.push_back(
          Revoked{std::move(it->second.conn), std::move(it->second.closer), std::move(v), reason});
      it = live_.erase(it);
    }
  }
  for (Revoked& r : revoked) {
    Report(r.conn, r.verdict, r.reason, "policy-revoked", "policy changed: ");
    if (r.closer) r.closer(StrCat("policy changed: ", r.verdict.reason));
  }
}

}  // namespace zm::ztunnel
