#pragma once
// A compact JWS as RequestAuthentication accepts it (policy-semantics §4.3 steps 1-2), and the
// failure reasons of the whole verification pipeline, with jwt_verify_lib's texts.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace zm::jwt {

// Every reason a token is refused. The text (JwtFailureText) is the response body; it is
// jwt_verify_lib's where policy-semantics §4.3/§5 name one.
enum class JwtFailure {
  kTooLarge,
  kBadFormat,
  kHeaderBadBase64,
  kHeaderBadJson,
  kHeaderBadAlg,
  kHeaderAlgRefused,  // `alg` not on the allow-list (none, unknown names): refused by design
  kHeaderBadKid,
  kHeaderCritUnsupported,
  kPayloadBadBase64,
  kPayloadBadJson,
  kIssNotString,
  kSubNotString,
  kIatNotInteger,
  kIatOutOfRange,
  kNbfNotInteger,
  kNbfOutOfRange,
  kExpNotInteger,
  kExpOutOfRange,
  kJtiNotString,
  kAudNotStringOrList,
  kSignatureBadBase64,
  kUnknownIssuer,
  kNotYetValid,
  kExpired,
  kAudienceNotAllowed,
  kKidAlgMismatch,
  kVerificationFailed,
  kJwksUnavailable,  // the last one
};

std::string_view JwtFailureText(JwtFailure failure);

// A Status for `failure`: message = JwtFailureText, code PermissionDenied for
// kAudienceNotAllowed (HTTP 403) and Unauthenticated for everything else (HTTP 401); the
// failure itself rides along as a payload (JwtFailureOf).
absl::Status JwtError(JwtFailure failure);

// The failure a JwtError carries; nullopt for any other status (including OK).
std::optional<JwtFailure> JwtFailureOf(const absl::Status& status);

// 403 for an audience failure, 401 for every other failure, 200 for OK.
int JwtHttpStatus(const absl::Status& status);

// Tokens longer than this are refused before any decoding (kTooLarge).
inline constexpr size_t kMaxJwtBytes = 64 * 1024;

enum class JwtAlg {
  kRs256,
  kRs384,
  kRs512,
  kPs256,
  kPs384,
  kPs512,
  kEs256,
  kEs384,
  kEs512,
  kHs256,
  kHs384,
  kHs512,
  kEdDsa,
};

// The kind of key that verifies an algorithm (JWK "kty": RSA, EC, OKP, oct).
enum class KeyType { kRsa, kEc, kOkp, kOct };

// What an algorithm is made of: the one table every part of common/jwt reads.
struct JwtAlgInfo {
  JwtAlg alg;
  std::string_view name;  // JOSE name
  KeyType key_type;
  const char* digest;   // OpenSSL digest name; nullptr for EdDSA (hashes internally)
  size_t digest_bytes;  // 0 for EdDSA
  bool pss;             // PS*: RSASSA-PSS, salt length = digest length
};
const JwtAlgInfo& AlgInfo(JwtAlg alg);

// The JOSE name ("RS256", ..., "EdDSA").
std::string_view JwtAlgName(JwtAlg alg);
// The algorithm named exactly `name` (case-sensitive); nullopt for "none" and anything else.
std::optional<JwtAlg> JwtAlgFromName(std::string_view name);

// A parsed, not yet verified token.
struct Jwt {
  JwtAlg alg = JwtAlg::kRs256;
  std::optional<std::string> kid;
  // Registered claims, type-checked; absent ones are empty / nullopt.
  std::string issuer;
  std::string subject;
  std::string jti;
  std::optional<int64_t> iat;
  std::optional<int64_t> nbf;
  std::optional<int64_t> exp;
  std::vector<std::string> audiences;  // `aud` as a string or a list of strings
  std::string presenter;               // `azp`, when it is a string

  nlohmann::json header;        // the decoded header object
  nlohmann::json payload;       // the decoded payload object: the claims
  std::string header_segment;   // base64url, as in the token
  std::string payload_segment;  // base64url, as in the token (outputPayloadToHeader)
  std::string signature;        // decoded bytes

  // "<header_segment>.<payload_segment>": the bytes the signature covers.
  std::string SigningInput() const;

  // Parses a compact JWS: size limit, exactly three non-empty strict base64url parts, header
  // and payload JSON objects, `alg` in the supported set, `kid` a string, no `crit` header
  // (RFC 7515 §4.1.11: we understand no extension, so any is refused), claim types as
  // jwt_verify_lib checks them (iss/sub/jti strings; iat/nbf/exp non-negative 64-bit integers;
  // aud a string or a list of strings). Fails with a JwtError.
  static absl::StatusOr<Jwt> Parse(std::string_view token);
};

}  // namespace zm::jwt
