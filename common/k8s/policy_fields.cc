#include "common/k8s/policy_fields.h"

#include "common/base/strings.h"

namespace zm::k8s {
namespace {

using namespace yaml;  // NOLINT(google-build-using-namespace): the shared field readers

authz::TargetRef ReadTargetRef(const YAML::Node& node, const std::string& field,
                               ObjectContext& ctx) {
  authz::TargetRef r;
  if (!node.IsMap()) {
    ctx.Error(field, "not a mapping");
    return r;
  }
  CheckKnownFields(node, field, {"group", "kind", "name", "namespace"}, ctx);
  r.group = ScalarField(node, "group", StrCat(field, ".group"), ctx);
  r.kind = ScalarField(node, "kind", StrCat(field, ".kind"), ctx);
  r.name = ScalarField(node, "name", StrCat(field, ".name"), ctx);
  if (!ScalarField(node, "namespace", StrCat(field, ".namespace"), ctx).empty()) {
    ctx.Error(StrCat(field, ".namespace"),
              "cross-namespace references are not allowed (leave it out: the target is in the "
              "policy's namespace)");
  }
  return r;
}

}  // namespace

std::vector<std::string> StringList(const YAML::Node& parent, const std::string& key,
                                    const std::string& field, ObjectContext& ctx) {
  std::vector<std::string> out;
  YAML::Node list = ListField(parent, key.c_str(), field, ctx);
  for (size_t i = 0; i < list.size(); ++i) {
    if (!list[i].IsScalar()) {
      ctx.Error(StrCat(field, "[", i, "]"), "not a string");
      continue;
    }
    out.push_back(list[i].Scalar());
  }
  return out;
}

PolicyScope ReadPolicyScope(const YAML::Node& spec, ObjectContext& ctx) {
  PolicyScope scope;
  size_t before = ctx.errors().size();
  const YAML::Node sel = spec.IsMap() ? spec["selector"] : YAML::Node();
  if (sel.IsDefined() && !sel.IsNull()) {
    YAML::Node selector = MapField(spec, "selector", "spec.selector", ctx);
    CheckKnownFields(selector, "spec.selector", {"matchLabels"}, ctx);
    scope.selector =
        ReadStringMap(MapField(selector, "matchLabels", "spec.selector.matchLabels", ctx),
                      "spec.selector.matchLabels", /*is_labels=*/true, ctx);
  }
  scope.selector_ok = ctx.errors().size() == before;

  before = ctx.errors().size();
  const YAML::Node one_ref = spec.IsMap() ? spec["targetRef"] : YAML::Node();
  if (one_ref.IsDefined() && !one_ref.IsNull()) {
    scope.target_refs.push_back(ReadTargetRef(one_ref, "spec.targetRef", ctx));
  }
  YAML::Node refs = ListField(spec, "targetRefs", "spec.targetRefs", ctx);
  if (refs.size() > 0 && !scope.target_refs.empty()) {
    ctx.Error("spec.targetRefs", "use targetRefs or the deprecated targetRef, not both");
  }
  for (size_t i = 0; i < refs.size(); ++i) {
    scope.target_refs.push_back(ReadTargetRef(refs[i], StrCat("spec.targetRefs[", i, "]"), ctx));
  }
  scope.refs_ok = ctx.errors().size() == before;
  return scope;
}

}  // namespace zm::k8s
