#pragma once
// Field readers shared by the security.istio.io kinds (common/k8s internal): string lists,
// selector and targetRef(s), read so that a rejected policy still knows what of its scope
// could be read.

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <vector>

#include "common/authz/policy.h"
#include "common/k8s/yaml_fields.h"

namespace zm::k8s {

// A list of strings (`principals: [a, b]`). Numbers are accepted as their text (`ports: [80]`).
std::vector<std::string> StringList(const YAML::Node& parent, const std::string& key,
                                    const std::string& field, yaml::ObjectContext& ctx);

struct PolicyScope {
  std::optional<authz::StringMap> selector;  // spec.selector.matchLabels; nullopt: none
  bool selector_ok = true;                   // false: the selector could not be read
  std::vector<authz::TargetRef> target_refs;  // targetRefs, or the deprecated targetRef
  bool refs_ok = true;
};

// spec.selector and spec.targetRef / spec.targetRefs of `spec`; errors go to `ctx`.
PolicyScope ReadPolicyScope(const YAML::Node& spec, yaml::ObjectContext& ctx);

}  // namespace zm::k8s
