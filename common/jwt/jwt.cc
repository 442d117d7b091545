#include "common/jwt/jwt.h"

#include <charconv>
#include <cstdlib>
#include <limits>
#include <utility>

#include "absl/strings/cord.h"
#include "common/base/status.h"
#include "common/base/strings.h"
#include "common/jwt/base64url.h"
#include "common/jwt/json.h"

namespace zm::jwt {
namespace {

constexpr char kFailurePayloadUrl[] = "type.zmesh.io/zmesh.jwt.JwtFailure";

constexpr JwtAlgInfo kAlgs[] = {
    {JwtAlg::kRs256, "RS256", KeyType::kRsa, "SHA256", 32, false},
    {JwtAlg::kRs384, "RS384", KeyType::kRsa, "SHA384", 48, false},
    {JwtAlg::kRs512, "RS512", KeyType::kRsa, "SHA512", 64, false},
    {JwtAlg::kPs256, "PS256", KeyType::kRsa, "SHA256", 32, true},
    {JwtAlg::kPs384, "PS384", KeyType::kRsa, "SHA384", 48, true},
    {JwtAlg::kPs512, "PS512", KeyType::kRsa, "SHA512", 64, true},
    {JwtAlg::kEs256, "ES256", KeyType::kEc, "SHA256", 32, false},
    {JwtAlg::kEs384, "ES384", KeyType::kEc, "SHA384", 48, false},
    {JwtAlg::kEs512, "ES512", KeyType::kEc, "SHA512", 64, false},
    {JwtAlg::kHs256, "HS256", KeyType::kOct, "SHA256", 32, false},
    {JwtAlg::kHs384, "HS384", KeyType::kOct, "SHA384", 48, false},
    {JwtAlg::kHs512, "HS512", KeyType::kOct, "SHA512", 64, false},
    {JwtAlg::kEdDsa, "EdDSA", KeyType::kOkp, nullptr, 0, false},
};

absl::StatusOr<nlohmann::json> DecodeObject(std::string_view segment, JwtFailure bad_base64,
                                            JwtFailure bad_json) {
  auto bytes = Base64UrlDecode(segment);
  if (!bytes.ok()) return JwtError(bad_base64);
  auto json = ParseJson(*bytes);
  if (!json.ok() || !json->is_object()) return JwtError(bad_json);
  return json;
}

// An optional string member; `out` untouched when absent.
absl::Status GetString(const nlohmann::json& obj, const char* name, JwtFailure wrong_type,
                       std::string& out) {
  auto it = obj.find(name);
  if (it == obj.end()) return absl::OkStatus();
  if (!it->is_string()) return JwtError(wrong_type);
  out = it->get<std::string>();
  return absl::OkStatus();
}

// An optional NumericDate. Only JSON integer literals count (1.5 and 1e9 are "not an
// integer"); negative values and values past int64 are out of range.
absl::Status GetTime(const nlohmann::json& obj, const char* name, JwtFailure not_integer,
                     JwtFailure out_of_range, std::optional<int64_t>& out) {
  auto it = obj.find(name);
  if (it == obj.end()) return absl::OkStatus();
  if (it->is_number_unsigned()) {
    auto v = it->get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return JwtError(out_of_range);
    }
    out = static_cast<int64_t>(v);
    return absl::OkStatus();
  }
  if (it->is_number_integer()) return JwtError(out_of_range);  // signed: negative
  return JwtError(not_integer);
}

absl::Status GetAudiences(const nlohmann::json& obj, std::vector<std::string>& out) {
  auto it = obj.find("aud");
  if (it == obj.end()) return absl::OkStatus();
  if (it->is_string()) {
    out.push_back(it->get<std::string>());
    return absl::OkStatus();
  }
  if (!it->is_array()) return JwtError(JwtFailure::kAudNotStringOrList);
  for (const auto& a : *it) {
    if (!a.is_string()) return JwtError(JwtFailure::kAudNotStringOrList);
    out.push_back(a.get<std::string>());
  }
  return absl::OkStatus();
}

}  // namespace

std::string_view JwtFailureText(JwtFailure failure) {
  switch (failure) {
    case JwtFailure::kTooLarge:
      return "Jwt exceeds the size limit of 65536 bytes";
    case JwtFailure::kBadFormat:
      return "Jwt is not in the form of Header.Payload.Signature";
    case JwtFailure::kHeaderBadBase64:
      return "Jwt header is an invalid Base64url encoded";
    case JwtFailure::kHeaderBadJson:
      return "Jwt header is an invalid JSON";
    case JwtFailure::kHeaderBadAlg:
      return "Jwt header [alg] field is required and must be a string";
    case JwtFailure::kHeaderAlgRefused:
      return "Jwt header [alg] field value is invalid";
    case JwtFailure::kHeaderBadKid:
      return "Jwt header [kid] field is not a string";
    case JwtFailure::kHeaderCritUnsupported:
      return "Jwt header [crit] field is not supported";
    case JwtFailure::kPayloadBadBase64:
      return "Jwt payload is an invalid Base64url encoded";
    case JwtFailure::kPayloadBadJson:
      return "Jwt payload is an invalid JSON";
    case JwtFailure::kIssNotString:
      return "Jwt payload [iss] field is not a string";
    case JwtFailure::kSubNotString:
      return "Jwt payload [sub] field is not a string";
    case JwtFailure::kIatNotInteger:
      return "Jwt payload [iat] field is not an integer";
    case JwtFailure::kIatOutOfRange:
      return "Jwt payload [iat] field is not a positive 64 bit integer";
    case JwtFailure::kNbfNotInteger:
      return "Jwt payload [nbf] field is not an integer";
    case JwtFailure::kNbfOutOfRange:
      return "Jwt payload [nbf] field is not a positive 64 bit integer";
    case JwtFailure::kExpNotInteger:
      return "Jwt payload [exp] field is not an integer";
    case JwtFailure::kExpOutOfRange:
      return "Jwt payload [exp] field is not a positive 64 bit integer";
    case JwtFailure::kJtiNotString:
      return "Jwt payload [jti] field is not a string";
    case JwtFailure::kAudNotStringOrList:
      return "Jwt payload [aud] field is not a string or string list";
    case JwtFailure::kSignatureBadBase64:
      return "Jwt signature is an invalid Base64url encoded";
    case JwtFailure::kUnknownIssuer:
      return "Jwt issuer is not configured";
    case JwtFailure::kNotYetValid:
      return "Jwt not yet valid";
    case JwtFailure::kExpired:
      return "Jwt is expired";
    case JwtFailure::kAudienceNotAllowed:
      return "Audiences in Jwt are not allowed";
    case JwtFailure::kKidAlgMismatch:
      return "Jwks doesn't have key to match kid or alg from Jwt";
    case JwtFailure::kVerificationFailed:
      return "Jwt verification fails";
    case JwtFailure::kJwksUnavailable:
      return "Jwks remote fetch is failed";
  }
  return "Jwt verification fails";
}

absl::Status JwtError(JwtFailure failure) {
  std::string_view text = JwtFailureText(failure);
  absl::string_view message(text.data(), text.size());
  absl::Status status = failure == JwtFailure::kAudienceNotAllowed
                            ? absl::PermissionDeniedError(message)
                            : absl::UnauthenticatedError(message);
  status.SetPayload(kFailurePayloadUrl, absl::Cord(std::to_string(static_cast<int>(failure))));
  return status;
}

std::optional<JwtFailure> JwtFailureOf(const absl::Status& status) {
  if (status.ok()) return std::nullopt;
  auto payload = status.GetPayload(kFailurePayloadUrl);
  if (!payload.has_value()) return std::nullopt;
  std::string text(*payload);
  int value = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0 ||
      value > static_cast<int>(JwtFailure::kJwksUnavailable)) {
    return std::nullopt;
  }
  return static_cast<JwtFailure>(value);
}

int JwtHttpStatus(const absl::Status& status) {
  if (status.ok()) return 200;
  return status.code() == absl::StatusCode::kPermissionDenied ? 403 : 401;
}

const JwtAlgInfo& AlgInfo(JwtAlg alg) {
  for (const auto& info : kAlgs) {
    if (info.alg == alg) return info;
  }
  std::abort();  // every enumerator is in the table
}

std::string_view JwtAlgName(JwtAlg alg) { return AlgInfo(alg).name; }

std::optional<JwtAlg> JwtAlgFromName(std::string_view name) {
  for (const auto& info : kAlgs) {
    if (info.name == name) return info.alg;
  }
  return std::nullopt;
}

std::string Jwt::SigningInput() const { return StrCat(header_segment, ".", payload_segment); }

absl::StatusOr<Jwt> Jwt::Parse(std::string_view token) {
  if (token.size() > kMaxJwtBytes) return JwtError(JwtFailure::kTooLarge);
  size_t dot1 = token.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return JwtError(JwtFailure::kBadFormat);
  }
  std::string_view header_b64 = token.substr(0, dot1);
  std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  std::string_view signature_b64 = token.substr(dot2 + 1);
  if (header_b64.empty() || payload_b64.empty() || signature_b64.empty()) {
    return JwtError(JwtFailure::kBadFormat);
  }

  Jwt jwt;
  ZM_ASSIGN_OR_RETURN(jwt.header, DecodeObject(header_b64, JwtFailure::kHeaderBadBase64,
                                               JwtFailure::kHeaderBadJson));
  auto alg = jwt.header.find("alg");
  if (alg == jwt.header.end() || !alg->is_string()) return JwtError(JwtFailure::kHeaderBadAlg);
  std::optional<JwtAlg> known = JwtAlgFromName(alg->get_ref<const std::string&>());
  if (!known.has_value()) return JwtError(JwtFailure::kHeaderAlgRefused);
  jwt.alg = *known;
  if (auto kid = jwt.header.find("kid"); kid != jwt.header.end()) {
    if (!kid->is_string()) return JwtError(JwtFailure::kHeaderBadKid);
    jwt.kid = kid->get<std::string>();
  }
  if (jwt.header.contains("crit")) return JwtError(JwtFailure::kHeaderCritUnsupported);

  ZM_ASSIGN_OR_RETURN(jwt.payload, DecodeObject(payload_b64, JwtFailure::kPayloadBadBase64,
                                                JwtFailure::kPayloadBadJson));
  const nlohmann::json& p = jwt.payload;
  ZM_RETURN_IF_ERROR(GetString(p, "iss", JwtFailure::kIssNotString, jwt.issuer));
  ZM_RETURN_IF_ERROR(GetString(p, "sub", JwtFailure::kSubNotString, jwt.subject));
  ZM_RETURN_IF_ERROR(
      GetTime(p, "iat", JwtFailure::kIatNotInteger, JwtFailure::kIatOutOfRange, jwt.iat));
  ZM_RETURN_IF_ERROR(
      GetTime(p, "nbf", JwtFailure::kNbfNotInteger, JwtFailure::kNbfOutOfRange, jwt.nbf));
  ZM_RETURN_IF_ERROR(
      GetTime(p, "exp", JwtFailure::kExpNotInteger, JwtFailure::kExpOutOfRange, jwt.exp));
  ZM_RETURN_IF_ERROR(GetString(p, "jti", JwtFailure::kJtiNotString, jwt.jti));
  ZM_RETURN_IF_ERROR(GetAudiences(p, jwt.audiences));
  if (auto azp = p.find("azp"); azp != p.end() && azp->is_string()) {
    jwt.presenter = azp->get<std::string>();
  }

  auto signature = Base64UrlDecode(signature_b64);
  if (!signature.ok()) return JwtError(JwtFailure::kSignatureBadBase64);
  jwt.signature = *std::move(signature);
  jwt.header_segment = std::string(header_b64);
  jwt.payload_segment = std::string(payload_b64);
  return jwt;
}

}  // namespace zm::jwt
