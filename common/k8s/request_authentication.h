#pragma once
// Reading security.istio.io RequestAuthentication objects (common/k8s internal; the manifest
// parser dispatches here). See request_authentication.cc.

#include <yaml-cpp/yaml.h>

#include <string>

#include "common/k8s/manifest.h"
#include "common/k8s/yaml_fields.h"

namespace zm::k8s {

void ParseRequestAuthentication(const YAML::Node& doc, const std::string& api_version,
                                yaml::ObjectContext& ctx, ParsedFile& out);

}  // namespace zm::k8s
