#pragma once
// Verifying one token against one rule's issuer, audiences and key set: policy-semantics §4.3
// steps 3-6, in that order, the first failure reported.

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/jwt/jwks.h"
#include "common/jwt/jwt.h"

namespace zm::jwt {

// Clock skew allowed on `exp` and `nbf` (not configurable through Istio).
inline constexpr std::chrono::seconds kClockSkew{60};

struct VerifyParams {
  std::string issuer;                  // token `iss` must equal it; "" accepts any issuer
  std::vector<std::string> audiences;  // empty: no audience check
};

// What a verified token tells about the request.
struct VerifiedJwt {
  std::string issuer;
  std::string subject;
  std::string principal;  // "<iss>/<sub>", "" unless both are non-empty
  std::vector<std::string> audiences;
  std::string presenter;  // azp
  nlohmann::json claims;  // the payload object
  std::string payload_segment;
};

// Audience comparison form: a leading "http://" or "https://" and one trailing "/" removed.
std::string_view NormalizeAudience(std::string_view aud);

// Steps after parsing: issuer (kUnknownIssuer) -> time with kClockSkew against `clock`
// (kNotYetValid when now + 60 < nbf, kExpired when exp is present and now > exp + 60) ->
// audiences (kAudienceNotAllowed) -> key selection (kKidAlgMismatch when no key's kid/alg
// fits) -> signature with keys of the algorithm's type only (kVerificationFailed).
absl::StatusOr<VerifiedJwt> VerifyJwt(const Jwt& jwt, const Jwks& jwks, const VerifyParams& params,
                                      const Clock& clock);

// Jwt::Parse, then VerifyJwt.
absl::StatusOr<VerifiedJwt> VerifyToken(std::string_view token, const Jwks& jwks,
                                        const VerifyParams& params, const Clock& clock);

// Only the signature step over `jwks` (key selection, then every selected key of the right
// type): OK, kKidAlgMismatch or kVerificationFailed.
absl::Status VerifySignature(const Jwt& jwt, const Jwks& jwks);

}  // namespace zm::jwt
