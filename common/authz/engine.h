#pragma once
// The AuthorizationPolicy engine (policy-semantics §2.7-§2.9, §9): policies compiled once per
// enforcement layer into an indexed, immutable PolicySet, evaluated per connection (node
// tunnel, L4) or per request (waypoint, L7). ztunnel's data path and `zmeshctl explain` call
// the same code.
//
// Compilation for L4 (the node tunnel, §2.9):
//   - policies with targetRefs are the waypoint's: skipped; AUDIT and CUSTOM: skipped;
//   - ALLOW: a rule with any HTTP-only field is dropped (it never matches; if every rule is
//     dropped the policy still exists and admits nothing: fail closed);
//   - DENY: HTTP-only fields are removed; a source, operation or condition left without fields
//     matches everything (zmesh's fail-closed choice, §9.2);
//   - each policy changed that way gets a warning naming it (warnings()).
// Rejected policies fail closed (policy.h). With the zero-trust default, an implicit ALLOW
// applies to every workload and admits peers whose identity is in the destination's namespace.
//
// Decision (§2.8): CUSTOM (L7 only, later) -> any DENY matches: deny -> no ALLOW applies:
// allow -> any ALLOW matches: allow -> deny. Dry-run policies are evaluated and reported, never
// enforced. AUDIT matches are reported.
//
// Threads: a PolicySet is immutable and shared (std::shared_ptr<const PolicySet>); Evaluate is
// const and allocation-light.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/authz/match.h"
#include "common/authz/policy.h"
#include "common/base/ip.h"

namespace zm::authz {

enum class Layer { kL4, kL7 };

// What a request looks like at the waypoint (L7).
struct HttpRequest {
  std::string method;
  std::string path;                                          // normalized, without query
  std::string host;                                          // :authority / Host
  std::vector<std::pair<std::string, std::string>> headers;  // names in any case
  std::optional<IpAddr> remote_ip;                           // XFF-derived, else the peer
  std::string sni;
};

// A verified end-user token (RequestAuthentication).
struct JwtIdentity {
  std::string issuer;
  std::string subject;
  std::vector<std::string> audiences;
  std::optional<std::string> presenter;  // azp
  // request.auth.claims[a][b]: the string values at that path (lists flattened, scope-like
  // claims split on spaces), or nullopt when absent or not a string / list of strings.
  std::function<std::optional<std::vector<std::string>>(std::span<const std::string> path)> claim;
};

struct Attributes {
  // The peer's SPIFFE id without "spiffe://" ("cluster.local/ns/foo/sa/bar"); nullopt for a
  // plaintext peer (no principal, namespace, service account or trust domain).
  std::optional<std::string> principal;
  std::optional<IpAddr> source_ip;
  std::optional<IpAddr> destination_ip;
  uint16_t destination_port = 0;
  const HttpRequest* http = nullptr;  // L7 only
  const JwtIdentity* jwt = nullptr;   // L7, when a token was verified
};

struct PolicySetOptions {
  Layer layer = Layer::kL4;
  std::string root_namespace = "zmesh-system";
  // --default-policy=zero-trust: traffic only within a namespace unless a policy allows more.
  bool zero_trust = false;
};

// One compiled value of a field.
using ValueMatcher =
    std::variant<StringMatcher, Cidr, uint16_t, PathTemplate, RequestPrincipalMatcher>;

struct FieldMatch {
  Attr attr;
  std::vector<std::string> args;  // header name (lower case) or claim path
  std::vector<ValueMatcher> values;
  std::vector<ValueMatcher> not_values;
};

// One source, operation or condition: every field must hold; no fields: matches everything.
struct Match {
  std::vector<FieldMatch> fields;
};

struct CompiledRule {
  int index = 0;  // in spec.rules as written
  bool has_from = false;
  bool has_to = false;
  std::vector<Match> from;  // any
  std::vector<Match> to;    // any
  std::vector<Match> when;  // all
};

struct CompiledPolicy {
  // kZeroTrustDefault: the implicit same-namespace ALLOW; kZeroTrustJwt: the waypoint's implicit
  // DENY of requests without a verified end-user JWT (both with --default-policy=zero-trust).
  enum class Origin { kWritten, kRejected, kZeroTrustDefault, kZeroTrustJwt };
  std::string key;  // "ns/name"
  std::string ns;
  std::optional<StringMap> selector;  // nullopt or empty: namespace-wide (mesh-wide in root)
  Action action = Action::kAllow;
  bool dry_run = false;
  Origin origin = Origin::kWritten;
  std::vector<CompiledRule> rules;
  std::string note;  // why it was changed at this layer, or the rejection
  int order = 0;     // position in the set (sorted by key): ForWorkload's order
  std::vector<TargetRef> target_refs;  // L7: what the policy attaches to
  std::string provider;                // CUSTOM: provider.name
};

// A targetRefs destination a waypoint enforces for (policy-semantics §1.3, §9.1).
struct TargetKey {
  std::string kind;  // "Gateway", "GatewayClass", "Service", "ServiceEntry"
  std::string ns;    // the policy's namespace (GatewayClass: the root namespace)
  std::string name;
  auto operator<=>(const TargetKey&) const = default;
};

struct Decision {
  bool allowed = true;
  // The policy that decided ("ns/name"); empty when no policy did (default allow, no ALLOW
  // matched) or the zero-trust default did (implicit set).
  std::string policy;
  std::optional<int> rule;           // index in that policy's spec.rules
  bool implicit = false;             // decided by the zero-trust default
  std::string reason;                // words, for logs and explain
  std::vector<std::string> dry_run;  // what dry-run policies would have done
  std::vector<std::string> audit;    // AUDIT policies that matched (L7)
  // L7: CUSTOM policies that matched, whose providers must be asked (an allow from a provider
  // does not bypass the decision above; a deny from one denies). Provider names, deduplicated.
  std::vector<std::string> custom_providers;
  std::vector<std::string> custom_policies;  // "ns/name" of those policies
  std::vector<std::string> trace;    // every applicable policy and its outcome (when asked)
};

class PolicySet {
 public:
  static std::shared_ptr<const PolicySet> Build(
      std::span<const AuthorizationPolicy> policies,
      std::span<const RejectedAuthorizationPolicy> rejected, PolicySetOptions options);

  // The policies the node tunnel enforces on a workload: mesh-wide (root namespace, no
  // selector), root-namespace selector policies matching its labels, its namespace's
  // namespace-wide and selector policies; plus the zero-trust default. Sorted by key.
  std::vector<const CompiledPolicy*> ForWorkload(std::string_view ns,
                                                 const StringMap& labels) const;

  // L7 (the waypoint): the policies attached through targetRefs to any of `targets`; sorted by
  // key; plus the zero-trust default's waypoint rule when on.
  std::vector<const CompiledPolicy*> ForTargets(std::span<const TargetKey> targets) const;

  // The decision over `applicable` for a destination in `dest_ns`.
  Decision Evaluate(std::span<const CompiledPolicy* const> applicable, std::string_view dest_ns,
                    const Attributes& attrs, bool want_trace = false) const;

  Decision EvaluateForWorkload(std::string_view ns, const StringMap& labels,
                               const Attributes& attrs, bool want_trace = false) const {
    auto applicable = ForWorkload(ns, labels);
    return Evaluate(applicable, ns, attrs, want_trace);
  }

  // Per-policy warnings of this layer: "demo/deny-post: enforced at L4 as a broader deny ...".
  const std::vector<std::string>& warnings() const { return warnings_; }
  const PolicySetOptions& options() const { return options_; }
  // Compiled policies (zero-trust default excluded).
  size_t size() const { return policies_.size(); }

 private:
  struct LabelIndex {
    // Keyed by the first label of each policy's selector; candidates are checked in full.
    std::map<std::pair<std::string, std::string>, std::vector<const CompiledPolicy*>> by_label;
    void Add(const CompiledPolicy* p);
    void Collect(const StringMap& labels, std::vector<const CompiledPolicy*>& out) const;
  };
  struct NamespaceIndex {
    std::vector<const CompiledPolicy*> wide;
    LabelIndex selected;
  };

  PolicySetOptions options_;
  std::vector<std::unique_ptr<CompiledPolicy>> policies_;
  std::unique_ptr<CompiledPolicy> zero_trust_;
  std::unique_ptr<CompiledPolicy> zero_trust_jwt_;  // L7
  std::vector<const CompiledPolicy*> mesh_wide_;
  LabelIndex root_selected_;
  std::map<std::string, NamespaceIndex, std::less<>> by_ns_;
  std::map<TargetKey, std::vector<const CompiledPolicy*>> by_target_;  // L7
  std::vector<std::string> warnings_;
};

// Compiles one policy for a layer; nullopt when the layer ignores it (targetRefs or
// AUDIT/CUSTOM at L4). `warning` is set when the layer changed its meaning.
std::optional<CompiledPolicy> CompilePolicy(const AuthorizationPolicy& policy, Layer layer,
                                            std::string* warning);

}  // namespace zm::authz
