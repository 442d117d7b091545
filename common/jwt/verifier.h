#pragma once
// Verifying one token against one rule's issuer, audiences and key set: policy-semantics §4.3
// steps 3-6, in that order, the first failure reported.

#include <chrono>
#include <nlohmann/json.hpp>
#include <memory>
#include <mutex>
#include <unordered_map>
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
// `signature_verified`: the caller knows (SignatureCache) that this token's signature verified
// under `jwks`; every other step still runs.
absl::StatusOr<VerifiedJwt> VerifyJwt(const Jwt& jwt, const Jwks& jwks, const VerifyParams& params,
                                      const Clock& clock, bool signature_verified = false);

// Jwt::Parse, then VerifyJwt.
absl::StatusOr<VerifiedJwt> VerifyToken(std::string_view token, const Jwks& jwks,
                                        const VerifyParams& params, const Clock& clock);

// Tokens whose signature already verified under a key set (Envoy's jwt_cache): for the same
// token bytes under the same Jwks object the signature step can be skipped; issuer, time and
// audiences are still checked on every request. An entry holds its Jwks, so a rotated key set
// (always a new object) never matches an entry made under the old one. Only verified tokens are
// remembered, so a forged token is verified (and fails) every time. Thread-safe; bounded (all
// entries are dropped when it is full).
class SignatureCache {
 public:
  explicit SignatureCache(size_t capacity = 1024, size_t max_token_bytes = 8192)
      : capacity_(capacity), max_token_bytes_(max_token_bytes) {}
  bool Contains(const std::shared_ptr<const Jwks>& jwks, std::string_view token) const;
  void Add(std::shared_ptr<const Jwks> jwks, std::string_view token);
  size_t size() const;

 private:
  const size_t capacity_;
  const size_t max_token_bytes_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const Jwks>> entries_;  // guarded by mu_
};

// Only the signature step over `jwks` (key selection, then every selected key of the right
// type): OK, kKidAlgMismatch or kVerificationFailed.
absl::Status VerifySignature(const Jwt& jwt, const Jwks& jwks);

}  // namespace zm::jwt
