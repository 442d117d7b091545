#pragma once
// Istio RequestAuthentication (security.istio.io/v1 and v1beta1) as written, after validation
// (policy-semantics §4.1). The manifest reader (common/k8s) fills it; the waypoint turns the
// rules that apply to a destination into JwtRule (authenticator.h) with a key source each.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/authz/policy.h"
#include "common/jwt/extract.h"

namespace zm::jwt {

struct ClaimToHeaderSpec {
  std::string header;
  std::string claim;
  auto operator<=>(const ClaimToHeaderSpec&) const = default;
};

// One `jwtRules` entry as written.
struct JwtRuleSpec {
  std::string issuer;
  std::vector<std::string> audiences;
  std::string jwks_uri;  // one of jwks_uri / jwks
  std::string jwks;      // inline JWKS JSON
  std::vector<FromHeader> from_headers;
  std::vector<std::string> from_params;
  std::vector<std::string> from_cookies;
  std::string output_payload_to_header;
  std::vector<ClaimToHeaderSpec> output_claim_to_headers;
  bool forward_original_token = false;
  uint32_t timeout_ms = 5000;  // JWKS fetch timeout (`timeout: 5s`)
  std::vector<std::string> space_delimited_claims;

  TokenLocations locations() const { return {from_headers, from_params, from_cookies}; }
  bool operator==(const JwtRuleSpec& o) const;
};

struct RequestAuthentication {
  std::string name;
  std::string ns;
  std::optional<authz::StringMap> selector;  // nullopt: none
  std::vector<authz::TargetRef> target_refs;
  std::vector<JwtRuleSpec> rules;
  std::string source;
  std::vector<std::string> warnings;

  std::string key() const { return ns + "/" + name; }
  bool has_target_refs() const { return !target_refs.empty(); }
  // Cluster mode's informer skips an update that changes nothing (common/kube/informer.h).
  bool operator==(const RequestAuthentication&) const = default;
};

// A RequestAuthentication that failed validation. It never weakens enforcement: at its scope a
// token at any location it could be read to declare (else the default locations) fails with
// 401, as if its key set were unavailable; requests without a token are unaffected.
struct RejectedRequestAuthentication {
  std::string name;
  std::string ns;
  std::optional<authz::StringMap> selector;
  bool selector_unreadable = false;
  std::vector<authz::TargetRef> target_refs;  // as far as readable
  bool target_refs_unreadable = false;        // targetRef(s) present but not readable
  std::vector<TokenLocations> locations;      // of the rules that could be read
  std::string source;
  std::string error;

  std::string key() const { return ns + "/" + (name.empty() ? "(unnamed)" : name); }
  bool operator==(const RejectedRequestAuthentication&) const = default;
};

// Semantic validation (policy-semantics §4.1, §1.3): issuer or jwksUri, exactly one of
// jwksUri / jwks (an inline jwks must parse; private keys are a warning), jwksUri http(s),
// output header names ^[-_A-Za-z0-9]+$ and unique, claims non-empty, timeout > 0, at most 4096
// rules, selector and targetRefs exclusive, supported targetRefs. Appends "field: message"
// errors; warnings go to `ra.warnings`.
void Validate(RequestAuthentication& ra, std::vector<std::string>& errors);

// Parses a `timeout` duration as Istio writes it ("5s", "1.5s", "500ms", "1m"); nullopt if not
// a positive duration.
std::optional<uint32_t> ParseDurationMs(std::string_view text);

}  // namespace zm::jwt
