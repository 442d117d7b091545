// security.istio.io/v1 and v1beta1 RequestAuthentication from YAML (policy-semantics §4.1): read
// strictly (unknown fields are errors), validated by jwt::Validate; one that fails is kept as
// rejected with what could be read of its scope and token locations (it fails closed).

#include "common/k8s/request_authentication.h"

#include "common/base/strings.h"
#include "common/jwt/policy.h"
#include "common/k8s/policy_fields.h"

namespace zm::k8s {
namespace {

using namespace yaml;  // NOLINT(google-build-using-namespace): the shared field readers

jwt::JwtRuleSpec ReadRule(const YAML::Node& node, const std::string& field, ObjectContext& ctx) {
  jwt::JwtRuleSpec r;
  if (!node.IsMap()) {
    ctx.Error(field, "not a mapping");
    return r;
  }
  CheckKnownFields(node, field,
                   {"issuer", "audiences", "jwksUri", "jwks", "fromHeaders", "fromParams",
                    "fromCookies", "outputPayloadToHeader", "outputClaimToHeaders",
                    "forwardOriginalToken", "timeout", "spaceDelimitedClaims"},
                   ctx);
  r.issuer = ScalarField(node, "issuer", StrCat(field, ".issuer"), ctx);
  r.audiences = StringList(node, "audiences", StrCat(field, ".audiences"), ctx);
  r.jwks_uri = ScalarField(node, "jwksUri", StrCat(field, ".jwksUri"), ctx);
  r.jwks = ScalarField(node, "jwks", StrCat(field, ".jwks"), ctx);
  YAML::Node headers = ListField(node, "fromHeaders", StrCat(field, ".fromHeaders"), ctx);
  for (size_t i = 0; i < headers.size(); ++i) {
    const std::string h = StrCat(field, ".fromHeaders[", i, "]");
    if (!headers[i].IsMap()) {
      ctx.Error(h, "not a mapping");
      continue;
    }
    CheckKnownFields(headers[i], h, {"name", "prefix"}, ctx);
    r.from_headers.push_back(jwt::FromHeader{
        .name = ScalarField(headers[i], "name", StrCat(h, ".name"), ctx),
        .prefix = ScalarField(headers[i], "prefix", StrCat(h, ".prefix"), ctx)});
  }
  r.from_params = StringList(node, "fromParams", StrCat(field, ".fromParams"), ctx);
  r.from_cookies = StringList(node, "fromCookies", StrCat(field, ".fromCookies"), ctx);
  r.output_payload_to_header =
      ScalarField(node, "outputPayloadToHeader", StrCat(field, ".outputPayloadToHeader"), ctx);
  YAML::Node claims =
      ListField(node, "outputClaimToHeaders", StrCat(field, ".outputClaimToHeaders"), ctx);
  for (size_t i = 0; i < claims.size(); ++i) {
    const std::string c = StrCat(field, ".outputClaimToHeaders[", i, "]");
    if (!claims[i].IsMap()) {
      ctx.Error(c, "not a mapping");
      continue;
    }
    CheckKnownFields(claims[i], c, {"header", "claim"}, ctx);
    r.output_claim_to_headers.push_back(
        jwt::ClaimToHeaderSpec{.header = ScalarField(claims[i], "header", StrCat(c, ".header"), ctx),
                               .claim = ScalarField(claims[i], "claim", StrCat(c, ".claim"), ctx)});
  }
  const std::string forward =
      ScalarField(node, "forwardOriginalToken", StrCat(field, ".forwardOriginalToken"), ctx);
  if (forward == "true") {
    r.forward_original_token = true;
  } else if (!forward.empty() && forward != "false") {
    ctx.Error(StrCat(field, ".forwardOriginalToken"), StrCat("not a boolean: \"", forward, "\""));
  }
  const std::string timeout = ScalarField(node, "timeout", StrCat(field, ".timeout"), ctx);
  if (!timeout.empty()) {
    auto ms = jwt::ParseDurationMs(timeout);
    if (!ms) {
      ctx.Error(StrCat(field, ".timeout"),
                StrCat("not a duration between 1ms and 1h (\"5s\", \"500ms\"): \"", timeout, "\""));
    } else {
      r.timeout_ms = *ms;
    }
  }
  r.space_delimited_claims =
      StringList(node, "spaceDelimitedClaims", StrCat(field, ".spaceDelimitedClaims"), ctx);
  return r;
}

}  // namespace

void ParseRequestAuthentication(const YAML::Node& doc, const std::string& api_version,
                                ObjectContext& ctx, ParsedFile& out) {
  jwt::RequestAuthentication ra;
  Metadata m = ReadMetadata(doc, "RequestAuthentication", /*namespaced=*/true, ctx);
  ra.name = m.name;
  ra.ns = m.namespace_name.empty() ? "default" : m.namespace_name;
  if (api_version != "security.istio.io/v1" && api_version != "security.istio.io/v1beta1") {
    ctx.Error("apiVersion", StrCat("unsupported version \"", api_version,
                                   "\" (security.istio.io/v1, security.istio.io/v1beta1)"));
  }
  CheckKnownFields(doc, "", {"apiVersion", "kind", "metadata", "spec", "status"}, ctx);
  YAML::Node spec = MapField(doc, "spec", "spec", ctx);
  CheckKnownFields(spec, "spec", {"selector", "targetRef", "targetRefs", "jwtRules"}, ctx);
  PolicyScope scope = ReadPolicyScope(spec, ctx);
  ra.selector = scope.selector;
  ra.target_refs = scope.target_refs;
  YAML::Node rules = ListField(spec, "jwtRules", "spec.jwtRules", ctx);
  std::vector<jwt::TokenLocations> readable_locations;
  for (size_t i = 0; i < rules.size(); ++i) {
    const size_t before = ctx.errors().size();
    ra.rules.push_back(ReadRule(rules[i], StrCat("spec.jwtRules[", i, "]"), ctx));
    if (ctx.errors().size() == before) readable_locations.push_back(ra.rules.back().locations());
  }
  ra.source = ctx.Source();
  if (!ctx.failed()) {
    std::vector<std::string> errors;
    jwt::Validate(ra, errors);
    for (const std::string& e : errors) {
      size_t colon = e.find(": ");
      ctx.Error(e.substr(0, colon), colon == std::string::npos ? "" : e.substr(colon + 2));
    }
  }
  if (!ctx.failed()) {
    out.request_authentications.push_back(std::move(ra));
    return;
  }
  out.rejected_request_authentications.push_back(jwt::RejectedRequestAuthentication{
      .name = ra.name,
      .ns = ra.ns,
      .selector = scope.selector_ok ? ra.selector : std::nullopt,
      .selector_unreadable = !scope.selector_ok,
      .target_refs = scope.refs_ok ? ra.target_refs : std::vector<authz::TargetRef>{},
      .target_refs_unreadable = !scope.refs_ok,
      .locations = std::move(readable_locations),
      .source = ra.source,
      .error = ctx.errors().front()});
}

}  // namespace zm::k8s
