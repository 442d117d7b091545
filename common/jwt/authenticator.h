#pragma once
// RequestAuthentication at the waypoint (policy-semantics §4): the rules that apply to a
// workload, run over one request: anti-spoofing, extraction, verification, the requirement
// semantics of several rules (§4.4), and the outputs (§4.6).

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/jwt/extract.h"
#include "common/jwt/jwks_source.h"
#include "common/jwt/jwt.h"
#include "common/jwt/verifier.h"

namespace zm::jwt {

struct ClaimToHeader {
  std::string header;
  std::string claim;  // nested with '.'
};

// One `jwtRules` entry, converted from the policy.
struct JwtRule {
  // How logs and failure details name the rule ("RequestAuthentication demo/jwt jwtRules[0]");
  // empty: "jwtRules[<index>]".
  std::string name;
  std::string issuer;  // "" accepts any issuer
  std::vector<std::string> audiences;
  std::shared_ptr<const JwksSource> jwks;  // required
  TokenLocations locations;                // none set: Authorization Bearer + access_token
  std::string output_payload_to_header;
  std::vector<ClaimToHeader> output_claim_to_headers;
  bool forward_original_token = false;
  std::vector<std::string> space_delimited_claims;
};

// What a verified token contributes to authorization.
struct RequestIdentity {
  VerifiedJwt jwt;
  std::vector<std::string> space_delimited_claims;  // of the rule that verified it

  // request.auth.claims[...]: `brackets` like "[groups]" or "[a][b]"; see ClaimValues.
  std::optional<std::vector<std::string>> Claim(std::string_view brackets) const;
};

struct AuthnResult {
  bool ok = true;
  int http_status = 200;  // on failure 401, or 403 for an audience failure
  std::string reason;     // the response body on failure (jwt_verify_lib's text)
  std::optional<JwtFailure> failure;
  std::string detail;  // for the `jwt` log: where the token was, which rule, why
  // Index (in the rules given to Create) of the rule whose failure is reported, or on pass of
  // the rule that verified the first token; nullopt when no rule was tried.
  std::optional<size_t> rule;
  // On pass: the first verified token; nullopt when no token was presented.
  std::optional<RequestIdentity> identity;
};

// Maximum number of rules (the API's limit on jwtRules).
inline constexpr size_t kMaxJwtRules = 4096;

class Authenticator {
 public:
  // Validates the rules: a JWKS source each; output header names match ^[-_A-Za-z0-9]+$ and
  // are unique within a rule; claims non-empty; location names non-empty. Errors name the rule
  // and field. Rules are evaluated in the given order (Istio sorts them by issuer).
  static absl::StatusOr<Authenticator> Create(std::vector<JwtRule> rules, const Clock& clock);

  // Authenticates `request` and edits it:
  //  1. every header any rule outputs to is removed (anti-spoofing), token or not;
  //  2. a CORS preflight passes unauthenticated;
  //  3. every token at every location must be valid for at least one rule that reads that
  //     location and names its issuer (or none): Jwt::Parse, then issuer, time, audiences and
  //     signature under that rule's current JWKS (JWKS unavailable: kJwksUnavailable). The
  //     first invalid token fails the request, reporting the last matching rule's failure
  //     (kUnknownIssuer when no rule names its issuer);
  //  4. on pass, for each verified token its rule's outputs are written and, unless
  //     forwardOriginalToken, the token's header / query parameter removed.
  // No token anywhere: pass without identity.
  AuthnResult Authenticate(RequestView& request) const;

  // Thread-safety: immutable after Create; Authenticate may run on many workers at once.
 private:
  struct BoundLocation {
    Location location;
    std::vector<size_t> rules;  // indices of the rules reading it
  };
  Authenticator(std::vector<JwtRule> rules, const Clock& clock);

  std::vector<JwtRule> rules_;
  std::vector<BoundLocation> locations_;
  std::vector<std::string> output_headers_;
  const Clock* clock_;
  // Shared by copies of this Authenticator (workers); see SignatureCache.
  std::shared_ptr<SignatureCache> signatures_ = std::make_shared<SignatureCache>();
};

// OPTIONS with Origin and Access-Control-Request-Method: JWT checks are skipped.
bool IsCorsPreflight(const RequestView& request);

// `Bearer realm="<scheme>://<authority><path without query>", error="invalid_token"`, for
// 401/403 JWT responses. The query is left out (it may hold the token); '"' and '\' escaped,
// control characters dropped.
std::string WwwAuthenticate(std::string_view scheme, std::string_view authority,
                            std::string_view path);

}  // namespace zm::jwt
