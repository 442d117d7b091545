#pragma once
// Reading security.istio.io AuthorizationPolicy objects (common/k8s internal; the manifest
// parser dispatches here). See authorization_policy.cc.

#include <yaml-cpp/yaml.h>

#include <string>

#include "common/k8s/manifest.h"
#include "common/k8s/yaml_fields.h"

namespace zm::k8s {

// Appends the policy to `out.authorization_policies`, or, when it fails, a rejected entry to
// `out.rejected_authorization_policies` (errors go to `ctx`).
void ParseAuthorizationPolicy(const YAML::Node& doc, const std::string& api_version,
                              yaml::ObjectContext& ctx, ParsedFile& out);

}  // namespace zm::k8s
