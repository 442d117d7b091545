#pragma once
// The waypoint's decision for one HTTP request (DESIGN §6-§7, policy-semantics §1.3, §2, §4,
// §9.1, §9.6). The waypoint's data path and `zmeshctl explain --layer l7` both call
// AuthorizeL7, so they cannot disagree.
//
// Order (Envoy's: the connection manager, then the filters):
//   1. the request itself: an upper-case method, header names without whitespace, a path that
//      normalizes (common/authz/path_normalize.h; BASE, or the MERGE_SLASHES /
//      DECODE_AND_MERGE_SLASHES option) -> else 400 (kBadRequest). The path is replaced by its
//      normalized form (what the backend receives). Normalization comes before
//      RequestAuthentication as in Envoy, so a malformed path with a bad token is a 400;
//   2. RequestAuthentication (common/jwt/authenticator.h): anti-spoofing of output headers,
//      token extraction and verification -> 401 (403 for audiences) with WWW-Authenticate;
//      the token is removed and outputs written unless told otherwise;
//   3. the L7 AuthorizationPolicy engine (common/authz, layer kL7): CUSTOM (providers named for
//      the caller to ask) -> DENY -> ALLOW; 403 "RBAC: access denied".
//
// Attachment at the waypoint (policy-semantics §1.3 "WP ignores every policy that has no
// targetRefs ... RequestAuthentication follows the same rule", §9.1): both kinds apply when a
// targetRef names
//   - the waypoint's Gateway (kind Gateway, the waypoint's namespace and name);
//   - GatewayClass `istio-waypoint` from the root namespace (every waypoint);
//   - a Service whose selector selects the destination workload (DESIGN §9: the Services
//     behind the request), in the Service's namespace.
// Selector, namespace-wide and mesh-wide RequestAuthentications are NOT applied at the
// waypoint (the node tunnel never sees HTTP, so they have no effect anywhere; upstream
// ambient behaves the same).
// A rejected RequestAuthentication fails closed (jwt/policy.h): when its readable targetRefs
// attach it here, or when its selector/targetRefs could not be read and it lives in the
// waypoint's, a destination Service's or the root namespace, a token at any location it
// declared (else the default ones) fails with 401 as if its key set were unavailable.
//
// Threads: L7Policies is immutable after Build and shared by workers
// (std::shared_ptr<const L7Policies>); AuthorizeL7 is const over it. The Clock given to Build
// must outlive the L7Policies (token time checks read it).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/authz/engine.h"
#include "common/authz/path_normalize.h"
#include "common/base/clock.h"
#include "common/base/ip.h"
#include "common/jwt/authenticator.h"
#include "common/jwt/extract.h"
#include "common/jwt/jwks_source.h"
#include "common/jwt/policy.h"
#include "common/mesh/workload.h"

namespace zm::mesh {

// The GatewayClass every waypoint belongs to, as upstream names it (policy-semantics §1.3).
inline constexpr std::string_view kWaypointGatewayClass = "istio-waypoint";

// Provides the key set source for a jwtRules entry with `jwksUri`: the fetcher (waypoint) or a
// fixed/failing source (explain). Build itself turns an inline `jwks` into a StaticJwksSource
// and calls the provider only for jwksUri rules, once per (URI, timeout); nullptr from the
// provider (or no provider) makes tokens for that rule fail with "Jwks remote fetch is failed".
using JwksProvider =
    std::function<std::shared_ptr<const jwt::JwksSource>(const jwt::JwtRuleSpec& rule)>;

struct WaypointRef {
  std::string ns;
  std::string name;
};  // the Gateway the waypoint is

// The waypoint's identity as the destination's node tunnel sees it: a waypoint runs as the
// service account named like its Gateway (deploy/waypoint: ServiceAccount and Gateway
// `waypoint`, Istio's convention). "cluster.local/ns/<ns>/sa/<name>".
std::string WaypointPrincipal(const WaypointRef& waypoint,
                              std::string_view trust_domain = kTrustDomain);

struct L7Options {
  authz::PathNormalization path_normalization = authz::PathNormalization::kBase;
};

class L7Policies {
 public:
  static std::shared_ptr<const L7Policies> Build(const Snapshot& snapshot,
                                                 std::string_view root_namespace,
                                                 const WaypointRef& waypoint,
                                                 const JwksProvider& jwks, const Clock& clock,
                                                 L7Options options = {});

  // Rejected RequestAuthentications and AuthorizationPolicies and rules that cannot be built,
  // each naming the object ("RequestAuthentication demo/jwt: rejected (...); ...").
  std::vector<std::string> warnings() const { return warnings_; }

  // What applies to one destination.
  struct Destination {
    std::vector<authz::TargetKey> targets;  // the Gateway, GatewayClass, Services behind it
    std::vector<const authz::CompiledPolicy*> policies;  // PolicySet::ForTargets(targets)
    // nullptr when no RequestAuthentication applies (tokens pass through unread).
    std::shared_ptr<const jwt::Authenticator> authenticator;
    std::vector<std::string> request_authentications;  // "ns/name" of those that apply
    // For each rule of `authenticator`: its RequestAuthentication and index in its jwtRules
    // (nullopt for the fail-closed rule of a rejected one).
    std::vector<std::pair<std::string, std::optional<int>>> rule_origin;
  };
  // The entry for `destination` (a workload of the snapshot Build saw); nullptr or unknown:
  // the waypoint's own targets only.
  const Destination& For(const Workload* destination) const;

  const authz::PolicySet& policy_set() const { return *policy_set_; }
  const WaypointRef& waypoint() const { return waypoint_; }
  const L7Options& options() const { return options_; }

 private:
  L7Policies() = default;

  WaypointRef waypoint_;
  L7Options options_;
  std::shared_ptr<const authz::PolicySet> policy_set_;
  std::shared_ptr<const Destination> waypoint_only_;
  std::map<std::string, std::shared_ptr<const Destination>, std::less<>> by_workload_;  // ns/name
  std::vector<std::string> warnings_;
};

struct L7Request {
  // Peer SPIFFE id without spiffe:// (the source workload as the waypoint sees it); nullopt =
  // plaintext.
  std::optional<std::string> principal;
  std::optional<IpAddr> source_ip;
  // The original destination pod (may be null: then only policies not needing a workload
  // apply).
  const Workload* destination = nullptr;
  std::optional<IpAddr> destination_ip;
  uint16_t port = 0;
  // Method, origin-form path with query, headers (incl. host / :authority, optional :scheme).
  // EDITED in place: token removal, output headers, normalized path.
  jwt::RequestView* http = nullptr;
};

struct L7Verdict {
  bool allowed = true;
  int status = 200;  // 401 (authn), 403 (authz or audience), 400 (bad request), 200 allowed
  // "RBAC: access denied" for authz denies, jwt_verify_lib text for 401/403 authn.
  std::string body;
  std::vector<std::pair<std::string, std::string>> response_headers;  // WWW-Authenticate
  enum class DecidedBy { kRequestAuthentication, kAuthorizationPolicy, kBadRequest };
  DecidedBy decided_by = DecidedBy::kAuthorizationPolicy;
  std::string policy;  // "ns/name" of the deciding RequestAuthentication or policy; may be empty
  std::optional<int> rule;  // jwtRules index, or AuthorizationPolicy rule index
  std::string reason;       // words, for logs and explain
  std::vector<std::string> audit;             // AUDIT policies that matched
  std::vector<std::string> custom_providers;  // CUSTOM: providers to ask (the caller does)
  std::vector<std::string> dry_run;
  std::vector<std::string> trace;  // when want_trace
  // The verified end-user principal ("iss/sub"), empty when none (access log).
  std::string request_principal;
};

inline constexpr std::string_view kRbacDeniedBody = "RBAC: access denied";

L7Verdict AuthorizeL7(const Snapshot& snapshot, const L7Policies& policies,
                      const L7Request& request, std::string_view root_namespace,
                      bool want_trace = false);

}  // namespace zm::mesh
