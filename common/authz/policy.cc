#include "common/authz/policy.h"

#include <array>
#include <charconv>

#include "common/authz/match.h"
#include "common/base/ip.h"
#include "common/base/strings.h"

namespace zm::authz {
namespace {

constexpr std::array kSourceFields = {
    SourceField{"principals", "notPrincipals", &Source::principals, Attr::kPrincipal},
    SourceField{"requestPrincipals", "notRequestPrincipals", &Source::request_principals,
                Attr::kRequestPrincipal},
    SourceField{"namespaces", "notNamespaces", &Source::namespaces, Attr::kNamespace},
    SourceField{"ipBlocks", "notIpBlocks", &Source::ip_blocks, Attr::kSourceIp},
    SourceField{"remoteIpBlocks", "notRemoteIpBlocks", &Source::remote_ip_blocks, Attr::kRemoteIp},
    SourceField{"serviceAccounts", "notServiceAccounts", &Source::service_accounts,
                Attr::kServiceAccount},
    SourceField{"trustDomains", "notTrustDomains", &Source::trust_domains, Attr::kTrustDomain},
};

constexpr std::array kOperationFields = {
    OperationField{"hosts", "notHosts", &Operation::hosts, Attr::kHost},
    OperationField{"ports", "notPorts", &Operation::ports, Attr::kDestinationPort},
    OperationField{"methods", "notMethods", &Operation::methods, Attr::kMethod},
    OperationField{"paths", "notPaths", &Operation::paths, Attr::kPath},
};

// Plain `when` keys (no argument).
struct PlainKey {
  std::string_view key;
  Attr attr;
};
constexpr std::array kPlainKeys = {
    PlainKey{"source.ip", Attr::kSourceIp},
    PlainKey{"remote.ip", Attr::kRemoteIp},
    PlainKey{"source.namespace", Attr::kNamespace},
    PlainKey{"source.principal", Attr::kPrincipal},
    PlainKey{"source.serviceAccount", Attr::kServiceAccount},
    PlainKey{"source.trustDomain", Attr::kTrustDomain},
    PlainKey{"request.auth.principal", Attr::kRequestPrincipal},
    PlainKey{"request.auth.audiences", Attr::kAudiences},
    PlainKey{"request.auth.presenter", Attr::kPresenter},
    PlainKey{"destination.ip", Attr::kDestinationIp},
    PlainKey{"destination.port", Attr::kDestinationPort},
    PlainKey{"connection.sni", Attr::kSni},
};

std::string Quote(std::string_view s) { return StrCat("\"", s, "\""); }

bool IsPort(std::string_view s) {
  if (s.empty() || s.size() > 5) return false;
  unsigned v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size() && v <= 65535;
}

// "[a][b]" -> {"a", "b"}; false when the text is not a sequence of non-empty bracketed names.
bool ParseBrackets(std::string_view text, std::vector<std::string>& out) {
  if (text.empty()) return false;
  while (!text.empty()) {
    if (text.front() != '[') return false;
    size_t close = text.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    std::string_view name = text.substr(1, close - 1);
    if (name.find('[') != std::string_view::npos) return false;
    out.emplace_back(name);
    text.remove_prefix(close + 1);
  }
  return true;
}

// Checks for the values of one attribute; `field` names the list in errors.
class ValueChecker {
 public:
  ValueChecker(std::vector<std::string>& errors, std::string_view policy_ns)
      : errors_(errors), policy_ns_(policy_ns) {}

  void Check(Attr attr, const std::vector<std::string>& values, std::string_view field) {
    for (size_t i = 0; i < values.size(); ++i) {
      const std::string& v = values[i];
      const std::string where = StrCat(field, "[", i, "]");
      if (v.empty()) {
        Error(where, "empty string (leave it out, or use \"*\" for any value)");
        continue;
      }
      CheckOne(attr, v, where);
    }
  }

  void Error(std::string_view where, std::string_view what) {
    errors_.push_back(StrCat(where, ": ", what));
  }

 private:
  // A '*' that is neither the first nor the last character.
  static bool HasInnerStar(std::string_view v) {
    return v.size() > 2 && v.substr(1, v.size() - 2).find('*') != std::string_view::npos;
  }

  void CheckOne(Attr attr, const std::string& v, const std::string& where) {
    switch (attr) {
      case Attr::kSourceIp:
      case Attr::kRemoteIp:
      case Attr::kDestinationIp:
        if (!Cidr::Parse(v).ok()) Error(where, StrCat("not an IP address or CIDR: ", Quote(v)));
        return;
      case Attr::kDestinationPort:
        if (!IsPort(v)) Error(where, StrCat("not a port (0-65535): ", Quote(v)));
        return;
      case Attr::kServiceAccount: {
        if (v.size() > 320) Error(where, "longer than 320 characters");
        if (v.find('*') != std::string::npos) {
          Error(where, StrCat("wildcards are not allowed in service accounts: ", Quote(v)));
        }
        size_t slashes = std::count(v.begin(), v.end(), '/');
        if (slashes > 1 || v.front() == '/' || v.back() == '/') {
          Error(where, StrCat("not \"<namespace>/<service account>\" or \"<service account>\": ",
                              Quote(v)));
        }
        return;
      }
      case Attr::kTrustDomain:
        if (v.find('/') != std::string::npos) {
          Error(where, StrCat("a trust domain has no '/': ", Quote(v)));
        } else if (HasInnerStar(v) || (v.size() > 1 && v.starts_with('*') && v.ends_with('*'))) {
          Error(where, StrCat("at most one '*', at the start or the end: ", Quote(v)));
        }
        return;
      case Attr::kPath:
        if (IsPathTemplate(v)) {
          auto t = PathTemplate::Parse(v);
          if (!t.ok())
            Error(where, StrCat("invalid path template ", Quote(v), ": ", t.status().message()));
        } else if (v.find('{') != std::string::npos || v.find('}') != std::string::npos) {
          Error(where, StrCat("'{' and '}' only in the operators {*} and {**}: ", Quote(v)));
        } else if (HasInnerStar(v)) {
          Error(where, StrCat("'*' only at the start or the end: ", Quote(v)));
        }
        return;
      case Attr::kNamespace:
        return;  // '*' anywhere: upstream's glob
      case Attr::kRequestPrincipal:
      case Attr::kPrincipal:
      case Attr::kHost:
      case Attr::kMethod:
      case Attr::kHeader:
      case Attr::kAudiences:
      case Attr::kPresenter:
      case Attr::kClaim:
      case Attr::kSni:
        if (HasInnerStar(v)) {
          Error(where, StrCat("'*' only at the start or the end (it is not a glob): ", Quote(v)));
        }
        return;
    }
  }

  std::vector<std::string>& errors_;
  std::string_view policy_ns_;
};

}  // namespace

std::string_view ActionName(Action action) {
  switch (action) {
    case Action::kAllow:
      return "ALLOW";
    case Action::kDeny:
      return "DENY";
    case Action::kAudit:
      return "AUDIT";
    case Action::kCustom:
      return "CUSTOM";
  }
  return "ALLOW";
}

std::optional<Action> ParseAction(std::string_view name) {
  for (Action a : {Action::kAllow, Action::kDeny, Action::kAudit, Action::kCustom}) {
    if (name == ActionName(a)) return a;
  }
  return std::nullopt;
}

bool AvailableAtL4(Attr attr) {
  switch (attr) {
    case Attr::kPrincipal:
    case Attr::kNamespace:
    case Attr::kServiceAccount:
    case Attr::kTrustDomain:
    case Attr::kSourceIp:
    case Attr::kDestinationIp:
    case Attr::kDestinationPort:
      return true;
    default:
      return false;
  }
}

std::string_view AttrName(Attr attr) {
  switch (attr) {
    case Attr::kPrincipal:
      return "source.principal";
    case Attr::kRequestPrincipal:
      return "request.auth.principal";
    case Attr::kNamespace:
      return "source.namespace";
    case Attr::kServiceAccount:
      return "source.serviceAccount";
    case Attr::kTrustDomain:
      return "source.trustDomain";
    case Attr::kSourceIp:
      return "source.ip";
    case Attr::kRemoteIp:
      return "remote.ip";
    case Attr::kDestinationIp:
      return "destination.ip";
    case Attr::kDestinationPort:
      return "destination.port";
    case Attr::kHost:
      return "request.host";
    case Attr::kMethod:
      return "request.method";
    case Attr::kPath:
      return "request.path";
    case Attr::kHeader:
      return "request.headers";
    case Attr::kAudiences:
      return "request.auth.audiences";
    case Attr::kPresenter:
      return "request.auth.presenter";
    case Attr::kClaim:
      return "request.auth.claims";
    case Attr::kSni:
      return "connection.sni";
  }
  return "?";
}

std::span<const SourceField> SourceFields() { return kSourceFields; }
std::span<const OperationField> OperationFields() { return kOperationFields; }

std::optional<ConditionKey> ParseConditionKey(std::string_view key, std::string* error) {
  for (const PlainKey& k : kPlainKeys) {
    if (key == k.key) return ConditionKey{k.attr, {}};
  }
  auto with_args = [&](std::string_view prefix, Attr attr) -> std::optional<ConditionKey> {
    ConditionKey out{attr, {}};
    if (!ParseBrackets(key.substr(prefix.size()), out.args)) {
      *error = StrCat("not in the form ", prefix, "[name]: ", Quote(key));
      return std::nullopt;
    }
    if (attr == Attr::kHeader && out.args.size() != 1) {
      *error = StrCat("a header key names one header: ", Quote(key));
      return std::nullopt;
    }
    return out;
  };
  if (key.starts_with("request.headers")) return with_args("request.headers", Attr::kHeader);
  if (key.starts_with("request.auth.claims")) {
    return with_args("request.auth.claims", Attr::kClaim);
  }
  if (key.starts_with("experimental.envoy.filters.")) {
    *error = StrCat("experimental Envoy metadata keys are not supported by zmesh: ", Quote(key));
  } else if (key.starts_with("destination.labels")) {
    *error = StrCat("not supported: ", Quote(key), " (use spec.selector)");
  } else if (key == "destination.namespace") {
    *error = "not supported: \"destination.namespace\" (use metadata.namespace)";
  } else if (key == "destination.name" || key == "destination.user") {
    *error = StrCat("not supported: ", Quote(key), " (removed from Istio)");
  } else {
    *error = StrCat("unknown condition key ", Quote(key));
  }
  return std::nullopt;
}

void ValidateAttachment(const std::optional<StringMap>& selector,
                        const std::vector<TargetRef>& target_refs,
                        std::vector<std::string>& errors) {
  if (selector && !target_refs.empty()) {
    errors.push_back("spec.selector: cannot be used together with spec.targetRefs");
  }
  if (target_refs.size() > 16) errors.push_back("spec.targetRefs: more than 16 entries");
  for (size_t i = 0; i < target_refs.size(); ++i) {
    const TargetRef& r = target_refs[i];
    const std::string where = StrCat("spec.targetRefs[", i, "]");
    if (r.name.empty()) errors.push_back(StrCat(where, ".name: missing"));
    const bool ok = (r.kind == "Gateway" && r.group == "gateway.networking.k8s.io") ||
                    (r.kind == "GatewayClass" && r.group == "gateway.networking.k8s.io") ||
                    (r.kind == "Service" && (r.group.empty() || r.group == "core")) ||
                    (r.kind == "ServiceEntry" && r.group == "networking.istio.io");
    if (!ok) {
      errors.push_back(StrCat(where, ": unsupported target ", Quote(StrCat(r.group, "/", r.kind)),
                              " (gateway.networking.k8s.io Gateway or GatewayClass, core Service, "
                              "networking.istio.io ServiceEntry)"));
    }
  }
}

void Validate(AuthorizationPolicy& p, std::vector<std::string>& errors) {
  ValueChecker check(errors, p.ns);

  ValidateAttachment(p.selector, p.target_refs, errors);
  if (p.selector && p.selector->empty()) {
    p.warnings.push_back(
        "spec.selector has no labels: it selects every workload in scope (leave it out to say so)");
  }

  // Action and provider.
  if (p.action == Action::kCustom) {
    if (p.provider.empty()) errors.push_back("spec.provider.name: required with action CUSTOM");
    if (p.rules.empty()) errors.push_back("spec.rules: required with action CUSTOM");
  } else if (!p.provider.empty()) {
    errors.push_back(
        StrCat("spec.provider: only with action CUSTOM (action is ", ActionName(p.action), ")"));
  }
  if (p.action == Action::kDeny && p.rules.empty()) {
    errors.push_back(
        "spec.rules: a DENY policy without rules is meaningless (write `rules: [{}]` to deny "
        "everything)");
  }
  if (p.rules.size() > 512) errors.push_back("spec.rules: more than 512 rules");

  for (size_t ri = 0; ri < p.rules.size(); ++ri) {
    const Rule& rule = p.rules[ri];
    const std::string rwhere = StrCat("spec.rules[", ri, "]");
    if (rule.from.size() > 512) errors.push_back(StrCat(rwhere, ".from: more than 512 entries"));
    for (size_t si = 0; si < rule.from.size(); ++si) {
      const Source& s = rule.from[si];
      const std::string swhere = StrCat(rwhere, ".from[", si, "].source");
      bool empty = true;
      for (const SourceField& f : kSourceFields) {
        const ValueList& vl = s.*f.member;
        if (vl.empty()) continue;
        empty = false;
        check.Check(f.attr, vl.values, StrCat(swhere, ".", f.name));
        check.Check(f.attr, vl.not_values, StrCat(swhere, ".", f.not_name));
      }
      if (empty) errors.push_back(StrCat(swhere, ": empty source (remove it, or add a field)"));
      const bool has_sa = !s.service_accounts.empty();
      if (has_sa && (!s.principals.empty() || !s.namespaces.empty())) {
        errors.push_back(StrCat(swhere,
                                ": serviceAccounts cannot be combined with principals or "
                                "namespaces in the same source"));
      }
      if (s.service_accounts.values.size() + s.service_accounts.not_values.size() > 16) {
        errors.push_back(StrCat(swhere, ".serviceAccounts: more than 16 entries"));
      }
      if (p.action == Action::kCustom &&
          (!s.principals.empty() || !s.namespaces.empty() || !s.service_accounts.empty() ||
           !s.trust_domains.empty() || !s.request_principals.empty())) {
        errors.push_back(StrCat(swhere,
                                ": a CUSTOM policy cannot use principals, namespaces, "
                                "serviceAccounts, trustDomains or requestPrincipals"));
      }
    }
    for (size_t oi = 0; oi < rule.to.size(); ++oi) {
      const Operation& o = rule.to[oi];
      const std::string owhere = StrCat(rwhere, ".to[", oi, "].operation");
      bool empty = true;
      for (const OperationField& f : kOperationFields) {
        const ValueList& vl = o.*f.member;
        if (vl.empty()) continue;
        empty = false;
        check.Check(f.attr, vl.values, StrCat(owhere, ".", f.name));
        check.Check(f.attr, vl.not_values, StrCat(owhere, ".", f.not_name));
      }
      if (empty) {
        errors.push_back(StrCat(owhere, ": empty operation (remove it, or add a field)"));
      }
    }
    for (size_t ci = 0; ci < rule.when.size(); ++ci) {
      const Condition& c = rule.when[ci];
      const std::string cwhere = StrCat(rwhere, ".when[", ci, "]");
      if (c.key.empty()) {
        errors.push_back(StrCat(cwhere, ".key: missing"));
        continue;
      }
      if (c.match.empty()) {
        errors.push_back(StrCat(cwhere, ": needs values or notValues"));
      }
      std::string error;
      auto key = ParseConditionKey(c.key, &error);
      if (!key) {
        errors.push_back(StrCat(cwhere, ".key: ", error));
        continue;
      }
      check.Check(key->attr, c.match.values, StrCat(cwhere, ".values"));
      check.Check(key->attr, c.match.not_values, StrCat(cwhere, ".notValues"));
      if (p.action == Action::kCustom &&
          (c.key.starts_with("source.") || c.key.starts_with("request.auth."))) {
        errors.push_back(StrCat(cwhere, ".key: a CUSTOM policy cannot use ", Quote(c.key)));
      }
    }
  }
}

}  // namespace zm::authz
