// security.istio.io/v1 and v1beta1 AuthorizationPolicy from YAML (policy-semantics §2.1, §2.10,
// §9.8): the structure is read here, strictly (unknown fields are errors, as Istio's webhook
// rejects them), the values are validated by authz::Validate. A policy that fails either step
// is kept as rejected, with whatever of its scope and action could be read, so that it fails
// closed instead of disappearing.

#include "common/k8s/authorization_policy.h"

#include "common/k8s/policy_fields.h"

#include "common/authz/policy.h"
#include "common/base/strings.h"

namespace zm::k8s {
namespace {

using namespace yaml;  // NOLINT(google-build-using-namespace): the shared field readers

// Reads the fields of one source or operation through a field table.
template <typename Obj, typename Fields>
void ReadValueLists(const YAML::Node& node, const Fields& fields, const std::string& field,
                    Obj& obj, ObjectContext& ctx) {
  if (!node.IsMap()) return;
  for (const auto& kv : node) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "(not a string)";
    bool known = false;
    for (const auto& f : fields) {
      if (key == f.name) {
        (obj.*f.member).values = StringList(node, key, StrCat(field, ".", key), ctx);
        known = true;
      } else if (key == f.not_name) {
        (obj.*f.member).not_values = StringList(node, key, StrCat(field, ".", key), ctx);
        known = true;
      }
    }
    if (!known) {
      std::string list;
      for (const auto& f : fields)
        list += StrCat(list.empty() ? "" : ", ", f.name, ", ", f.not_name);
      ctx.Error(StrCat(field, ".", key), StrCat("unknown field (known: ", list, ")"));
    }
  }
}

// `from: [{source: {...}}]` or `to: [{operation: {...}}]` of a rule into `out`.
template <typename Obj, typename Fields>
void ReadClauses(const YAML::Node& rule, const char* key, const char* inner, const Fields& fields,
                 const std::string& rule_field, std::string_view empty_error, std::vector<Obj>& out,
                 ObjectContext& ctx) {
  const std::string field = StrCat(rule_field, ".", key);
  const YAML::Node present = rule[key];
  if (present.IsDefined() && (present.IsNull() || (present.IsSequence() && present.size() == 0))) {
    ctx.Error(field, empty_error);
  }
  YAML::Node list = ListField(rule, key, field, ctx);
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string item = StrCat(field, "[", i, "]");
    const std::string inner_field = StrCat(item, ".", inner);
    Obj obj;
    if (!list[i].IsMap()) {
      ctx.Error(item, "not a mapping");
    } else {
      CheckKnownFields(list[i], item, {inner}, ctx);
      YAML::Node n = list[i][inner];
      if (!n.IsDefined() || n.IsNull()) {
        ctx.Error(inner_field, "missing");
      } else if (!n.IsMap()) {
        ctx.Error(inner_field, "not a mapping");
      } else {
        ReadValueLists(n, fields, inner_field, obj, ctx);
      }
    }
    out.push_back(std::move(obj));
  }
}

authz::Rule ReadRule(const YAML::Node& node, const std::string& field, ObjectContext& ctx) {
  authz::Rule rule;
  if (node.IsNull()) return rule;  // `- {}` written as `-`: a rule that matches everything
  if (!node.IsMap()) {
    ctx.Error(field, "not a mapping");
    return rule;
  }
  CheckKnownFields(node, field, {"from", "to", "when"}, ctx);
  ReadClauses(node, "from", "source", authz::SourceFields(), field,
              "empty (leave it out to match any source)", rule.from, ctx);
  ReadClauses(node, "to", "operation", authz::OperationFields(), field,
              "empty (leave it out to match any operation)", rule.to, ctx);
  const std::string wfield = StrCat(field, ".when");
  YAML::Node when = ListField(node, "when", wfield, ctx);
  for (size_t i = 0; i < when.size(); ++i) {
    const std::string item = StrCat(wfield, "[", i, "]");
    authz::Condition c;
    if (!when[i].IsMap()) {
      ctx.Error(item, "not a mapping");
    } else {
      CheckKnownFields(when[i], item, {"key", "values", "notValues"}, ctx);
      c.key = ScalarField(when[i], "key", StrCat(item, ".key"), ctx);
      c.match.values = StringList(when[i], "values", StrCat(item, ".values"), ctx);
      c.match.not_values = StringList(when[i], "notValues", StrCat(item, ".notValues"), ctx);
    }
    rule.when.push_back(std::move(c));
  }
  return rule;
}

}  // namespace

void ParseAuthorizationPolicy(const YAML::Node& doc, const std::string& api_version,
                              ObjectContext& ctx, ParsedFile& out) {
  authz::AuthorizationPolicy p;
  Metadata m = ReadMetadata(doc, "AuthorizationPolicy", /*namespaced=*/true, ctx);
  p.name = m.name;
  p.ns = m.namespace_name.empty() ? "default" : m.namespace_name;
  if (api_version != "security.istio.io/v1" && api_version != "security.istio.io/v1beta1") {
    ctx.Error("apiVersion", StrCat("unsupported version ", Quote(api_version),
                                   " (security.istio.io/v1, security.istio.io/v1beta1)"));
  }
  CheckKnownFields(doc, "", {"apiVersion", "kind", "metadata", "spec", "status"}, ctx);
  if (auto it = m.annotations.find(std::string(authz::kDryRunAnnotation));
      it != m.annotations.end()) {
    if (it->second == "true") {
      p.dry_run = true;
    } else if (it->second != "false") {
      ctx.Error(StrCat("metadata.annotations[", Quote(authz::kDryRunAnnotation), "]"),
                StrCat("not \"true\" or \"false\": ", Quote(it->second)));
    }
  }

  YAML::Node spec = MapField(doc, "spec", "spec", ctx);
  CheckKnownFields(spec, "spec",
                   {"selector", "targetRef", "targetRefs", "action", "provider", "rules"}, ctx);

  // Scope first: what a rejected policy still knows.
  PolicyScope scope = ReadPolicyScope(spec, ctx);
  p.selector = scope.selector;
  p.target_refs = scope.target_refs;

  std::optional<authz::Action> action = authz::Action::kAllow;
  const std::string action_text = ScalarField(spec, "action", "spec.action", ctx);
  if (!action_text.empty()) {
    action = authz::ParseAction(action_text);
    if (!action) {
      ctx.Error("spec.action",
                StrCat("unknown action ", Quote(action_text), " (ALLOW, DENY, AUDIT, CUSTOM)"));
    }
  }
  if (action) p.action = *action;

  YAML::Node provider = MapField(spec, "provider", "spec.provider", ctx);
  CheckKnownFields(provider, "spec.provider", {"name"}, ctx);
  p.provider = ScalarField(provider, "name", "spec.provider.name", ctx);

  YAML::Node rules = ListField(spec, "rules", "spec.rules", ctx);
  for (size_t i = 0; i < rules.size(); ++i) {
    p.rules.push_back(ReadRule(rules[i], StrCat("spec.rules[", i, "]"), ctx));
  }
  p.source = ctx.Source();

  if (!ctx.failed()) {
    std::vector<std::string> errors;
    authz::Validate(p, errors);
    for (const std::string& e : errors) {
      size_t colon = e.find(": ");
      ctx.Error(e.substr(0, colon), colon == std::string::npos ? "" : e.substr(colon + 2));
    }
  }
  if (!ctx.failed()) {
    out.authorization_policies.push_back(std::move(p));
    return;
  }
  authz::RejectedAuthorizationPolicy r{.name = p.name,
                                       .ns = p.ns,
                                       .action = action,
                                       .selector = scope.selector_ok ? p.selector : std::nullopt,
                                       .selector_unreadable = !scope.selector_ok,
                                       .has_target_refs = scope.refs_ok && !p.target_refs.empty(),
                                       .source = p.source,
                                       .error = ctx.errors().front()};
  out.rejected_authorization_policies.push_back(std::move(r));
}

}  // namespace zm::k8s
