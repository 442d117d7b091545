#include "common/jwt/authenticator.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "common/base/status.h"
#include "common/base/strings.h"
#include "common/jwt/claims.h"

namespace zm::jwt {
namespace {

bool IsValidOutputHeaderName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(c) || c == '-' || c == '_';
  });
}

absl::Status RuleError(size_t i, std::string_view field, std::string_view problem) {
  return absl::InvalidArgumentError(StrCat("jwtRules[", i, "].", field, ": ", problem));
}

absl::Status ValidateRule(const JwtRule& r, size_t i) {
  if (r.jwks == nullptr) return RuleError(i, "jwks", "no JWKS source");
  std::vector<std::string> headers;
  auto check_header = [&](std::string_view field, std::string_view name) -> absl::Status {
    if (!IsValidOutputHeaderName(name)) {
      return RuleError(i, field, StrCat("\"", name, "\" is not a valid header name"));
    }
    for (const auto& h : headers) {
      if (HeaderNameEquals(h, name)) {
        return RuleError(i, field, StrCat("header \"", name, "\" is written twice"));
      }
    }
    headers.emplace_back(name);
    return absl::OkStatus();
  };
  if (!r.output_payload_to_header.empty()) {
    ZM_RETURN_IF_ERROR(check_header("outputPayloadToHeader", r.output_payload_to_header));
  }
  for (size_t k = 0; k < r.output_claim_to_headers.size(); ++k) {
    const auto& c = r.output_claim_to_headers[k];
    std::string field = StrCat("outputClaimToHeaders[", k, "]");
    ZM_RETURN_IF_ERROR(check_header(field + ".header", c.header));
    if (c.claim.empty()) return RuleError(i, field + ".claim", "empty");
  }
  for (size_t k = 0; k < r.locations.headers.size(); ++k) {
    if (r.locations.headers[k].name.empty()) {
      return RuleError(i, StrCat("fromHeaders[", k, "].name"), "empty");
    }
  }
  for (size_t k = 0; k < r.locations.params.size(); ++k) {
    if (r.locations.params[k].empty()) return RuleError(i, StrCat("fromParams[", k, "]"), "empty");
  }
  for (size_t k = 0; k < r.locations.cookies.size(); ++k) {
    if (r.locations.cookies[k].empty()) {
      return RuleError(i, StrCat("fromCookies[", k, "]"), "empty");
    }
  }
  return absl::OkStatus();
}

std::string RuleName(const JwtRule& r, size_t i) {
  return StrCat(r.name.empty() ? StrCat("jwtRules[", i, "]") : r.name, " (issuer \"", r.issuer,
                "\")");
}

AuthnResult Fail(const absl::Status& status, std::string detail,
                 std::optional<size_t> rule = std::nullopt) {
  AuthnResult out;
  out.rule = rule;
  out.ok = false;
  out.http_status = JwtHttpStatus(status);
  out.reason = std::string(status.message());
  out.failure = JwtFailureOf(status);
  out.detail = std::move(detail);
  return out;
}

}  // namespace

std::optional<std::vector<std::string>> RequestIdentity::Claim(std::string_view brackets) const {
  auto path = ParseClaimPath(brackets);
  if (!path.ok()) return std::nullopt;
  return ClaimValues(jwt.claims, *path, space_delimited_claims);
}

absl::StatusOr<Authenticator> Authenticator::Create(std::vector<JwtRule> rules,
                                                    const Clock& clock) {
  if (rules.size() > kMaxJwtRules) {
    return absl::InvalidArgumentError(
        StrCat(rules.size(), " jwtRules, at most ", kMaxJwtRules, " allowed"));
  }
  for (size_t i = 0; i < rules.size(); ++i) ZM_RETURN_IF_ERROR(ValidateRule(rules[i], i));
  return Authenticator(std::move(rules), clock);
}

Authenticator::Authenticator(std::vector<JwtRule> rules, const Clock& clock)
    : rules_(std::move(rules)), clock_(&clock) {
  for (size_t i = 0; i < rules_.size(); ++i) {
    const JwtRule& r = rules_[i];
    for (Location& l : EffectiveLocations(r.locations)) {
      auto it = std::find_if(locations_.begin(), locations_.end(),
                             [&](const BoundLocation& b) { return b.location == l; });
      if (it == locations_.end()) {
        locations_.push_back({std::move(l), {i}});
      } else {
        it->rules.push_back(i);
      }
    }
    auto add_output = [&](const std::string& h) {
      if (std::none_of(output_headers_.begin(), output_headers_.end(),
                       [&](const std::string& o) { return HeaderNameEquals(o, h); })) {
        output_headers_.push_back(h);
      }
    };
    if (!r.output_payload_to_header.empty()) add_output(r.output_payload_to_header);
    for (const auto& c : r.output_claim_to_headers) add_output(c.header);
  }
}

AuthnResult Authenticator::Authenticate(RequestView& request) const {
  for (const auto& h : output_headers_) request.RemoveHeader(h);
  if (IsCorsPreflight(request)) return AuthnResult{};

  struct Verified {
    Location location;
    size_t rule;
    VerifiedJwt jwt;
  };
  std::vector<Verified> verified;
  for (const BoundLocation& bound : locations_) {
    for (ExtractedToken& token : ExtractTokens(request, bound.location)) {
      std::string where = token.location.ToString();
      auto jwt = Jwt::Parse(token.token);
      if (!jwt.ok()) return Fail(jwt.status(), StrCat("token in ", where));

      // Try every rule reading this location that names the token's issuer (or none); the
      // first that verifies it wins, else the last one's failure is reported.
      bool issuer_named = false;
      absl::Status failure;
      std::string failure_detail;
      std::optional<size_t> failed_rule;
      std::optional<Verified> ok;
      for (size_t i : bound.rules) {
        const JwtRule& rule = rules_[i];
        if (!rule.issuer.empty() && rule.issuer != jwt->issuer) continue;
        issuer_named = true;
        failed_rule = i;
        std::string rule_detail = StrCat("token in ", where, ", ", RuleName(rule, i));
        auto jwks = rule.jwks->Current();
        if (!jwks.ok() || *jwks == nullptr) {
          failure = JwtError(JwtFailure::kJwksUnavailable);
          failure_detail =
              StrCat(rule_detail,
                     ": JWKS unavailable: ", jwks.ok() ? "no key set" : jwks.status().message());
          continue;
        }
        const bool known_good = signatures_->Contains(*jwks, token.token);
        auto v = VerifyJwt(*jwt, **jwks, VerifyParams{rule.issuer, rule.audiences}, *clock_,
                           known_good);
        if (v.ok() && !known_good) signatures_->Add(*jwks, token.token);
        if (v.ok()) {
          ok = Verified{token.location, i, *std::move(v)};
          break;
        }
        failure = v.status();
        failure_detail = std::move(rule_detail);
      }
      if (ok.has_value()) {
        verified.push_back(*std::move(ok));
        continue;
      }
      if (!issuer_named) {
        return Fail(
            JwtError(JwtFailure::kUnknownIssuer),
            StrCat("token in ", where, ": no rule reading it names issuer ",
                   nlohmann::json(jwt->issuer).dump()));  // quoted, control characters escaped
      }
      return Fail(failure, failure_detail, failed_rule);
    }
  }

  AuthnResult result;
  for (const Verified& v : verified) {
    const JwtRule& rule = rules_[v.rule];
    if (!rule.output_payload_to_header.empty()) {
      request.SetHeader(rule.output_payload_to_header, v.jwt.payload_segment);
    }
    for (const auto& c : rule.output_claim_to_headers) {
      if (auto value = ClaimHeaderValue(v.jwt.claims, c.claim)) {
        request.SetHeader(c.header, *std::move(value));
      }
    }
    if (!rule.forward_original_token) RemoveTokenLocation(request, v.location);
  }
  if (!verified.empty()) {
    result.identity =
        RequestIdentity{verified.front().jwt, rules_[verified.front().rule].space_delimited_claims};
    result.rule = verified.front().rule;
  }
  return result;
}

bool IsCorsPreflight(const RequestView& request) {
  return request.method == "OPTIONS" && request.HasHeader("origin") &&
         request.HasHeader("access-control-request-method");
}

std::string WwwAuthenticate(std::string_view scheme, std::string_view authority,
                            std::string_view path) {
  path = path.substr(0, path.find_first_of("?#"));
  std::string realm = StrCat(scheme, "://", authority, path);
  std::string escaped;
  for (char c : realm) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) continue;
    if (c == '"' || c == '\\') escaped += '\\';
    escaped += c;
  }
  return StrCat("Bearer realm=\"", escaped, "\", error=\"invalid_token\"");
}

}  // namespace zm::jwt
