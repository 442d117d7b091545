#include "common/jwt/policy.h"

#include <algorithm>
#include <charconv>
#include <set>

#include "common/base/strings.h"
#include "common/jwt/authenticator.h"
#include "common/jwt/jwks.h"

namespace zm::jwt {
namespace {

bool IsHeaderName(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
  });
}

}  // namespace

bool JwtRuleSpec::operator==(const JwtRuleSpec& o) const {
  auto headers = [](const std::vector<FromHeader>& h) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const FromHeader& f : h) out.emplace_back(f.name, f.prefix);
    return out;
  };
  return issuer == o.issuer && audiences == o.audiences && jwks_uri == o.jwks_uri &&
         jwks == o.jwks && headers(from_headers) == headers(o.from_headers) &&
         from_params == o.from_params && from_cookies == o.from_cookies &&
         output_payload_to_header == o.output_payload_to_header &&
         output_claim_to_headers == o.output_claim_to_headers &&
         forward_original_token == o.forward_original_token && timeout_ms == o.timeout_ms &&
         space_delimited_claims == o.space_delimited_claims;
}

std::optional<uint32_t> ParseDurationMs(std::string_view text) {
  // "<number><unit>" with unit ms, s, m, h (protobuf Duration as Istio's YAML writes it).
  size_t unit_at = text.find_first_not_of("0123456789.");
  if (unit_at == 0 || unit_at == std::string_view::npos) return std::nullopt;
  std::string_view number = text.substr(0, unit_at), unit = text.substr(unit_at);
  double v = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), v);
  if (ec != std::errc() || end != number.data() + number.size()) return std::nullopt;
  double ms;
  if (unit == "ms") {
    ms = v;
  } else if (unit == "s") {
    ms = v * 1000;
  } else if (unit == "m") {
    ms = v * 60'000;
  } else if (unit == "h") {
    ms = v * 3'600'000;
  } else {
    return std::nullopt;
  }
  if (ms < 1 || ms > 3'600'000) return std::nullopt;
  return static_cast<uint32_t>(ms);
}

void Validate(RequestAuthentication& ra, std::vector<std::string>& errors) {
  authz::ValidateAttachment(ra.selector, ra.target_refs, errors);
  if (ra.selector && ra.selector->empty()) {
    ra.warnings.push_back(
        "spec.selector has no labels: it selects every workload in scope (leave it out to say so)");
  }
  if (ra.rules.size() > kMaxJwtRules) {
    errors.push_back(StrCat("spec.jwtRules: more than ", kMaxJwtRules, " rules"));
  }
  for (size_t i = 0; i < ra.rules.size(); ++i) {
    const JwtRuleSpec& r = ra.rules[i];
    const std::string where = StrCat("spec.jwtRules[", i, "]");
    if (r.issuer.empty() && r.jwks_uri.empty()) {
      errors.push_back(StrCat(where, ".issuer: required (unless jwksUri is set)"));
    }
    if (r.jwks_uri.empty() == r.jwks.empty()) {
      errors.push_back(StrCat(where, ": set exactly one of jwksUri and jwks (zmesh does no OIDC "
                                     "discovery)"));
    }
    if (!r.jwks_uri.empty() && !r.jwks_uri.starts_with("https://") &&
        !r.jwks_uri.starts_with("http://")) {
      errors.push_back(StrCat(where, ".jwksUri: not an http(s) URL: \"", r.jwks_uri, "\""));
    }
    if (!r.jwks.empty()) {
      auto parsed = Jwks::Parse(r.jwks);
      if (!parsed.ok()) {
        errors.push_back(StrCat(where, ".jwks: ", parsed.status().message()));
      } else if (!parsed->warnings.empty()) {
        ra.warnings.push_back(StrCat(where, ".jwks: ", parsed->warnings.front()));
      }
    }
    for (size_t a = 0; a < r.audiences.size(); ++a) {
      if (r.audiences[a].empty()) errors.push_back(StrCat(where, ".audiences[", a, "]: empty"));
    }
    for (size_t h = 0; h < r.from_headers.size(); ++h) {
      if (r.from_headers[h].name.empty()) {
        errors.push_back(StrCat(where, ".fromHeaders[", h, "].name: required"));
      }
    }
    for (size_t p = 0; p < r.from_params.size(); ++p) {
      if (r.from_params[p].empty()) errors.push_back(StrCat(where, ".fromParams[", p, "]: empty"));
    }
    for (size_t c = 0; c < r.from_cookies.size(); ++c) {
      if (r.from_cookies[c].empty()) {
        errors.push_back(StrCat(where, ".fromCookies[", c, "]: empty"));
      }
    }
    std::set<std::string> outputs;
    if (!r.output_payload_to_header.empty()) {
      if (!IsHeaderName(r.output_payload_to_header)) {
        errors.push_back(StrCat(where, ".outputPayloadToHeader: not a header name (",
                                "^[-_A-Za-z0-9]+$): \"", r.output_payload_to_header, "\""));
      }
      outputs.insert(r.output_payload_to_header);
    }
    for (size_t o = 0; o < r.output_claim_to_headers.size(); ++o) {
      const ClaimToHeaderSpec& c = r.output_claim_to_headers[o];
      const std::string owhere = StrCat(where, ".outputClaimToHeaders[", o, "]");
      if (!IsHeaderName(c.header)) {
        errors.push_back(StrCat(owhere, ".header: not a header name (^[-_A-Za-z0-9]+$): \"",
                                c.header, "\""));
      } else if (!outputs.insert(c.header).second) {
        errors.push_back(StrCat(owhere, ".header: \"", c.header, "\" used twice"));
      }
      if (c.claim.empty()) errors.push_back(StrCat(owhere, ".claim: required"));
    }
  }
}

}  // namespace zm::jwt
