#include "cli/explain.h"

#include "cli/explain_l7.h"
#include "cli/table.h"
#include "common/base/ip.h"
#include "common/base/strings.h"
#include "common/k8s/manifest_store.h"
#include "common/mesh/authorization.h"
#include "common/mesh/workload.h"
#include "common/tls/spiffe.h"

namespace zm::cli {
namespace {

absl::Status Bad(std::string_view message) {
  return absl::InvalidArgumentError(std::string(message));
}

// A principal as policies write it ("cluster.local/ns/foo/sa/bar"); "spiffe://" accepted.
absl::StatusOr<tls::SpiffeId> ParsePrincipal(const std::string& written) {
  std::string uri = written.starts_with("spiffe://") ? written : StrCat("spiffe://", written);
  auto id = tls::SpiffeId::Parse(uri);
  if (!id.ok()) {
    return Bad(StrCat("--from-principal \"", written,
                      "\": not a workload identity (<trust domain>/ns/<namespace>/sa/<service "
                      "account>): ",
                      id.status().message()));
  }
  return id;
}

}  // namespace

absl::StatusOr<ExplainResult> Explain(const ExplainOptions& o) {
  if (o.manifests.empty()) return Bad("--manifests is required");
  if (o.to.empty()) return Bad("--to NAMESPACE/POD is required");
  if (o.port < 1 || o.port > 65535) return Bad(StrCat("--port ", o.port, ": not a port (1-65535)"));
  if (o.from_principal && o.plaintext) {
    return Bad("--from-principal and --plaintext exclude each other");
  }
  if (o.layer != "l4" && o.layer != "l7") {
    return Bad(StrCat("--layer ", o.layer, ": want l4 or l7"));
  }
  const bool l7 = o.layer == "l7";
  if (!l7) {
    if (o.via_waypoint) return Bad("--via-waypoint needs --layer l7");
    if (!o.jwks_files.empty()) return Bad("--jwks needs --layer l7");
  }
  if (o.default_policy != "upstream" && o.default_policy != "zero-trust") {
    return Bad(StrCat("--default-policy ", o.default_policy, ": want upstream or zero-trust"));
  }
  const size_t slash = o.to.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == o.to.size() ||
      o.to.find('/', slash + 1) != std::string::npos) {
    return Bad(StrCat("--to \"", o.to, "\": want NAMESPACE/POD"));
  }
  const std::string to_ns = o.to.substr(0, slash), to_name = o.to.substr(slash + 1);

  std::optional<tls::SpiffeId> peer;
  if (o.from_principal) {
    auto id = ParsePrincipal(*o.from_principal);
    if (!id.ok()) return id.status();
    peer = *id;
  }
  std::optional<IpAddr> from_ip;
  if (o.from_ip) {
    auto ip = IpAddr::Parse(*o.from_ip);
    if (!ip.ok()) return Bad(StrCat("--from-ip: ", ip.status().message()));
    from_ip = *ip;
  }
  for (const std::string& h : o.headers) {
    if (h.find('=') == std::string::npos || h.front() == '=') {
      return Bad(StrCat("--header \"", h, "\": want NAME=VALUE"));
    }
  }

  auto objects = k8s::ManifestStore::Load(o.manifests);
  if (!objects.ok()) return Bad(StrCat("--manifests: ", objects.status().message()));
  mesh::Snapshot snapshot = mesh::BuildSnapshot(*objects);
  snapshot.default_policy = o.default_policy == "zero-trust" ? mesh::DefaultPolicy::kZeroTrust
                                                             : mesh::DefaultPolicy::kUpstream;
  ExplainResult r;
  r.hop = "ztunnel";
  for (const std::string& e : snapshot.errors) r.warnings.push_back(StrCat("error: ", e));
  for (const std::string& w : snapshot.warnings) r.warnings.push_back(w);

  const mesh::Workload* dst = snapshot.FindWorkload(to_ns, to_name);
  if (dst == nullptr) {
    for (const mesh::RejectedPod& p : snapshot.rejected) {
      if (p.ns == to_ns && p.name == to_name) {
        return Bad(StrCat("--to ", o.to, ": the Pod could not be read: ", p.error));
      }
    }
    return Bad(StrCat("--to ", o.to, ": no such Pod in the manifests"));
  }
  std::optional<L7Inputs> l7_inputs;
  if (l7) {
    auto in = ReadL7Inputs(o, snapshot, *dst);
    if (!in.ok()) return in.status();
    l7_inputs = *std::move(in);
  }
  auto policies = mesh::BuildL4PolicySet(snapshot, o.root_namespace);
  if (!l7) {
    for (const std::string& w : policies->warnings()) {
      r.warnings.push_back(StrCat("AuthorizationPolicy ", w));
    }
  }
  if (!l7 && (o.method || o.path || o.host || !o.headers.empty() || o.jwt || o.now)) {
    r.trace.push_back(
        "note: HTTP attributes (--method, --path, --host, --header, --jwt, --now) are not "
        "visible to the node tunnel; L4 ignores them");
  }

  if (!mesh::InMesh(snapshot, dst->ns, dst->labels)) {
    r.allowed = true;
    r.reason = StrCat("destination ", o.to, " is not in the mesh (namespace ", dst->ns,
                      mesh::InMesh(snapshot, dst->ns, {}) ? " is ambient but the pod opted out"
                                                          : " is not labelled ambient",
                      "): its traffic is not captured, so no zmesh policy is enforced");
    return r;
  }

  if (peer && peer->trust_domain != o.trust_domain) {
    r.allowed = false;
    r.reason = StrCat("the peer identity is in trust domain ", peer->trust_domain,
                      "; mutual TLS accepts only ", o.trust_domain,
                      ", so the connection fails before any policy");
    return r;
  }
  if (l7) {
    ExplainL7(o, snapshot, *policies, *dst,
              peer ? std::optional<std::string>(peer->Principal()) : std::nullopt, from_ip,
              *l7_inputs, r);
    return r;
  }
  mesh::L4Request req{
      .principal = peer ? std::optional<std::string>(peer->Principal()) : std::nullopt,
      .source_ip = from_ip,
      .destination_ip = dst->ips.empty() ? std::nullopt : std::optional<IpAddr>(dst->ips.front()),
      .port = static_cast<uint16_t>(o.port),
      .tunneled = peer.has_value()};
  if (!peer) {
    r.trace.push_back(o.plaintext ? "source: plaintext (no identity)"
                                  : "source: no --from-principal: plaintext (no identity)");
  } else {
    r.trace.push_back(StrCat("source: ", peer->ToString(), " over HBONE (mTLS)"));
  }
  mesh::L4Verdict v =
      mesh::AuthorizeL4(snapshot, *policies, *dst, req, o.root_namespace, /*want_trace=*/true);
  r.allowed = v.allowed;
  if (!v.policy.empty()) r.policy = v.policy;
  r.rule = v.rule;
  r.reason = v.reason;
  for (std::string& line : v.trace) r.trace.push_back(std::move(line));
  for (std::string& line : v.dry_run) r.trace.push_back(std::move(line));
  return r;
}

nlohmann::ordered_json ExplainJson(const ExplainResult& r) {
  nlohmann::ordered_json j;
  j["decision"] = r.allowed ? "allow" : "deny";
  j["status"] = r.status ? nlohmann::ordered_json(*r.status) : nlohmann::ordered_json(nullptr);
  j["hop"] = r.hop;
  j["policy"] = r.policy ? nlohmann::ordered_json(*r.policy) : nlohmann::ordered_json(nullptr);
  j["rule"] = r.rule ? nlohmann::ordered_json(*r.rule) : nlohmann::ordered_json(nullptr);
  j["reason"] = r.reason;
  return j;
}

std::string RenderExplain(const ExplainResult& r) {
  Table t({"DECISION", "STATUS", "HOP", "POLICY", "RULE", "REASON"});
  t.Add({r.allowed ? "allow" : "deny", r.status ? std::to_string(*r.status) : "-", r.hop,
         r.policy.value_or("-"), r.rule ? std::to_string(*r.rule) : "-", r.reason});
  std::string out = t.Render();
  if (!r.trace.empty()) {
    out += "\nEvaluated:\n";
    for (const std::string& line : r.trace) out += StrCat("  ", line, "\n");
  }
  if (!r.warnings.empty()) {
    out += "\nWarnings:\n";
    for (const std::string& line : r.warnings) out += StrCat("  ", line, "\n");
  }
  return out;
}

}  // namespace zm::cli
