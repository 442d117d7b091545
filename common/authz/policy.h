#pragma once
// Istio AuthorizationPolicy (security.istio.io/v1 and v1beta1) as written, after validation
// (policy-semantics §2). The manifest reader (common/k8s) fills it from YAML, the config stream
// carries it to ztunnel, and the engine (engine.h) compiles it per enforcement layer. Every
// value is kept as the user wrote it; meaning is given by match.h and engine.h.
//
// Field tables (kSourceFields, kOperationFields, kConditionKeys) are the one list of the API's
// fields: the reader, the validator, the wire conversion and the engine all iterate them.

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace zm::authz {

using StringMap = std::map<std::string, std::string>;

// A field's positive and negative value lists (`principals` / `notPrincipals`).
struct ValueList {
  std::vector<std::string> values;
  std::vector<std::string> not_values;
  bool empty() const { return values.empty() && not_values.empty(); }
  auto operator<=>(const ValueList&) const = default;
};

struct Source {
  ValueList principals;
  ValueList request_principals;
  ValueList namespaces;
  ValueList ip_blocks;
  ValueList remote_ip_blocks;
  ValueList service_accounts;
  ValueList trust_domains;
  auto operator<=>(const Source&) const = default;
};

struct Operation {
  ValueList hosts;
  ValueList ports;
  ValueList methods;
  ValueList paths;
  auto operator<=>(const Operation&) const = default;
};

struct Condition {
  std::string key;  // "source.ip", "request.headers[x-user]", ...
  ValueList match;  // values / notValues
  auto operator<=>(const Condition&) const = default;
};

// `from`/`to` empty means absent (present-but-empty lists are rejected by the reader).
struct Rule {
  std::vector<Source> from;
  std::vector<Operation> to;
  std::vector<Condition> when;
  auto operator<=>(const Rule&) const = default;
};

struct TargetRef {
  std::string group;
  std::string kind;
  std::string name;
  auto operator<=>(const TargetRef&) const = default;
};

enum class Action { kAllow, kDeny, kAudit, kCustom };

// "ALLOW", "DENY", "AUDIT", "CUSTOM".
std::string_view ActionName(Action action);
std::optional<Action> ParseAction(std::string_view name);

// The istio.io/dry-run annotation.
inline constexpr std::string_view kDryRunAnnotation = "istio.io/dry-run";

struct AuthorizationPolicy {
  std::string name;
  std::string ns;
  // spec.selector.matchLabels; nullopt: no selector. An empty map (`selector: {}`) selects
  // everything in scope, like no selector (with a warning).
  std::optional<StringMap> selector;
  std::vector<TargetRef> target_refs;  // targetRefs, or the deprecated targetRef as one entry
  Action action = Action::kAllow;
  std::string provider;  // provider.name, CUSTOM only
  std::vector<Rule> rules;
  bool dry_run = false;
  std::string source;  // "file.yaml:doc2"
  // Legal but probably unintended (policy-semantics §2.10), one sentence each.
  std::vector<std::string> warnings;

  // "ns/name"
  std::string key() const { return ns + "/" + name; }
  bool has_target_refs() const { return !target_refs.empty(); }
  // Whether a workload-selecting scope (no targetRefs) selects everything in its namespace.
  bool namespace_wide() const { return !selector || selector->empty(); }
  auto operator<=>(const AuthorizationPolicy&) const = default;
};

// A policy that failed validation. It is not dropped: a policy that fails to load must never
// weaken enforcement (policy-semantics §9.8). The engine treats it by what could be read:
//   action ALLOW        -> an ALLOW without rules on its scope (its workloads deny what no other
//                          ALLOW admits)
//   action DENY, CUSTOM, or unreadable -> deny everything on its scope
//   action AUDIT        -> nothing (AUDIT never decides)
// Scope: the selector when readable, else the whole namespace (the whole mesh in the root
// namespace); with readable targetRefs, only the waypoint enforces it.
struct RejectedAuthorizationPolicy {
  std::string name;  // may be empty
  std::string ns;
  std::optional<Action> action;       // nullopt: could not be read
  std::optional<StringMap> selector;  // nullopt: no selector, or it could not be read
  bool selector_unreadable = false;
  bool has_target_refs = false;  // readable targetRefs: a waypoint's policy
  std::string source;
  std::string error;  // the first error

  std::string key() const { return ns + "/" + (name.empty() ? "(unnamed)" : name); }
  auto operator<=>(const RejectedAuthorizationPolicy&) const = default;
};

// What a field or condition key reads.
enum class Attr {
  kPrincipal,         // source.principal: the peer's SPIFFE id without "spiffe://"
  kRequestPrincipal,  // request.auth.principal: iss/sub of the verified JWT
  kNamespace,         // source.namespace: the peer identity's namespace
  kServiceAccount,    // source.serviceAccount: "ns/sa" of the peer identity
  kTrustDomain,       // source.trustDomain
  kSourceIp,          // source.ip: the L3 peer address
  kRemoteIp,          // remote.ip: the original client (XFF), else the peer address
  kDestinationIp,     // destination.ip
  kDestinationPort,   // destination.port
  kHost,              // request host (:authority)
  kMethod,            // request method
  kPath,              // normalized request path without the query
  kHeader,            // request.headers[<name>]
  kAudiences,         // request.auth.audiences
  kPresenter,         // request.auth.presenter
  kClaim,             // request.auth.claims[<a>][<b>]...
  kSni,               // connection.sni
};

// Whether the node tunnel (L4) can evaluate the attribute (policy-semantics §2.9, §9.4).
bool AvailableAtL4(Attr attr);
// How the attribute is named in messages ("source.principal").
std::string_view AttrName(Attr attr);

struct SourceField {
  std::string_view name;      // "principals"
  std::string_view not_name;  // "notPrincipals"
  ValueList Source::*member;
  Attr attr;
};
struct OperationField {
  std::string_view name;
  std::string_view not_name;
  ValueList Operation::*member;
  Attr attr;
};

std::span<const SourceField> SourceFields();
std::span<const OperationField> OperationFields();

// A `when` key split into its attribute and argument: "request.headers[X-User]" -> kHeader,
// {"X-User"}; "request.auth.claims[a][b]" -> kClaim, {"a", "b"}. nullopt: not a key zmesh
// accepts (the error says why).
struct ConditionKey {
  Attr attr;
  std::vector<std::string> args;
};
std::optional<ConditionKey> ParseConditionKey(std::string_view key, std::string* error);

// selector / targetRefs rules shared by the security kinds (policy-semantics §1.3): not both, at
// most 16 refs, each of a supported kind with a name.
void ValidateAttachment(const std::optional<StringMap>& selector,
                        const std::vector<TargetRef>& target_refs,
                        std::vector<std::string>& errors);

// Semantic validation of a policy whose structure was read (policy-semantics §2.10, §9.8):
// values, combinations, targetRefs, CUSTOM/provider. Appends one error per problem, each
// naming the field ("spec.rules[0].from[1].source.ipBlocks[0]: not an IP address or CIDR:
// ..."), and the warnings to `policy.warnings`. Valid when nothing was appended.
// (A GatewayClass targetRef outside the root namespace is the waypoint's to ignore: the reader
// does not know the root namespace.)
void Validate(AuthorizationPolicy& policy, std::vector<std::string>& errors);

}  // namespace zm::authz
