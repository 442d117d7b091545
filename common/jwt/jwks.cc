#include "common/jwt/jwks.h"

#include <openssl/core_names.h>

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "common/base/status.h"
#include "common/base/strings.h"
#include "common/jwt/base64url.h"
#include "common/jwt/json.h"

namespace zm::jwt {
namespace {

using tls::BignumPtr;
using tls::EvpPkeyCtxPtr;
using tls::EvpPkeyPtr;
using tls::OsslParamBldPtr;
using tls::OsslParamPtr;

constexpr int kMaxRsaBits = 16384;

// The problem with one key, as the text after "keys[i] (kid ...): ".
absl::Status KeyError(std::string_view what) {
  return absl::InvalidArgumentError(absl::string_view(what.data(), what.size()));
}

// A required base64url member of `jwk`, decoded.
absl::StatusOr<std::string> Bytes(const nlohmann::json& jwk, std::string_view kty,
                                  const char* name) {
  auto it = jwk.find(name);
  if (it == jwk.end()) return KeyError(StrCat(kty, " [", name, "] is missing"));
  if (!it->is_string()) return KeyError(StrCat(kty, " [", name, "] is not a string"));
  auto bytes = Base64UrlDecode(it->get_ref<const std::string&>());
  if (!bytes.ok()) {
    return KeyError(
        StrCat(kty, " [", name, "] is not valid base64url (", bytes.status().message(), ")"));
  }
  if (bytes->empty()) return KeyError(StrCat(kty, " [", name, "] is empty"));
  return bytes;
}

// An optional string member ("" when absent).
absl::StatusOr<std::string> OptionalString(const nlohmann::json& jwk, const char* name) {
  auto it = jwk.find(name);
  if (it == jwk.end()) return std::string();
  if (!it->is_string()) return KeyError(StrCat("[", name, "] is not a string"));
  return it->get<std::string>();
}

absl::StatusOr<BignumPtr> ToBignum(const std::string& bytes) {
  BignumPtr bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                         static_cast<int>(bytes.size()), nullptr));
  if (bn == nullptr) return tls::OpenSslError("BN_bin2bn");
  return bn;
}

// EVP_PKEY_fromdata for a public key of `type` ("RSA", "EC") from `params`.
absl::StatusOr<EvpPkeyPtr> FromData(const char* type, OSSL_PARAM_BLD* bld) {
  OsslParamPtr params(OSSL_PARAM_BLD_to_param(bld));
  if (params == nullptr) return tls::OpenSslError("OSSL_PARAM_BLD_to_param");
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  if (ctx == nullptr) return tls::OpenSslError(StrCat("EVP_PKEY_CTX_new_from_name(", type, ")"));
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return KeyError(StrCat(type, " key rejected by OpenSSL: ", tls::OpenSslErrors()));
  }
  return EvpPkeyPtr(raw);
}

bool HasAny(const nlohmann::json& jwk, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (jwk.contains(n)) return true;
  }
  return false;
}

absl::Status ParseRsa(const nlohmann::json& j, Jwk& jwk) {
  ZM_ASSIGN_OR_RETURN(std::string n_bytes, Bytes(j, "RSA", "n"));
  ZM_ASSIGN_OR_RETURN(std::string e_bytes, Bytes(j, "RSA", "e"));
  ZM_ASSIGN_OR_RETURN(BignumPtr n, ToBignum(n_bytes));
  ZM_ASSIGN_OR_RETURN(BignumPtr e, ToBignum(e_bytes));
  int bits = BN_num_bits(n.get());
  if (bits < kMinRsaBits) {
    return KeyError(
        StrCat("RSA [n]: ", bits, "-bit modulus, at least ", kMinRsaBits, " bits required"));
  }
  if (bits > kMaxRsaBits) {
    return KeyError(StrCat("RSA [n]: ", bits, "-bit modulus, at most ", kMaxRsaBits, " bits"));
  }
  if (!BN_is_odd(n.get())) return KeyError("RSA [n]: modulus is even");
  if (!BN_is_odd(e.get()) || BN_num_bits(e.get()) < 2 || BN_num_bits(e.get()) > 64) {
    return KeyError("RSA [e]: exponent must be odd, at least 3 and below 2^64");
  }
  OsslParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (bld == nullptr || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
    return tls::OpenSslError("OSSL_PARAM_BLD (RSA)");
  }
  ZM_ASSIGN_OR_RETURN(jwk.key, FromData("RSA", bld.get()));
  jwk.had_private_material = HasAny(j, {"d", "p", "q", "dp", "dq", "qi", "oth"});
  return absl::OkStatus();
}

constexpr EcCurveInfo kCurves[] = {
    {EcCurve::kP256, "P-256", "prime256v1", 32, JwtAlg::kEs256},
    {EcCurve::kP384, "P-384", "secp384r1", 48, JwtAlg::kEs384},
    {EcCurve::kP521, "P-521", "secp521r1", 66, JwtAlg::kEs512},
};

absl::Status ParseEc(const nlohmann::json& j, Jwk& jwk) {
  ZM_ASSIGN_OR_RETURN(std::string crv, OptionalString(j, "crv"));
  const EcCurveInfo* info = nullptr;
  for (const auto& c : kCurves) {
    if (crv == c.jwk_name) info = &c;
  }
  if (info == nullptr) {
    return KeyError(crv.empty() ? "EC [crv] is missing"
                                : StrCat("EC [crv] \"", crv, "\" is not supported"));
  }
  if (jwk.alg.has_value() && *jwk.alg != info->alg) {
    return KeyError(StrCat("EC [alg] ", JwtAlgName(*jwk.alg), " does not match [crv] ", crv));
  }
  ZM_ASSIGN_OR_RETURN(std::string x, Bytes(j, "EC", "x"));
  ZM_ASSIGN_OR_RETURN(std::string y, Bytes(j, "EC", "y"));
  for (const auto& [name, value] : {std::pair{"x", &x}, std::pair{"y", &y}}) {
    if (value->size() != info->coordinate_bytes) {
      return KeyError(StrCat("EC [", name, "] has ", value->size(), " bytes, ", crv, " needs ",
                             info->coordinate_bytes));
    }
  }
  std::string point = StrCat("\x04", x, y);  // uncompressed SEC1 point
  OsslParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (bld == nullptr ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, info->group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return tls::OpenSslError("OSSL_PARAM_BLD (EC)");
  }
  auto key = FromData("EC", bld.get());
  if (!key.ok()) return KeyError(StrCat("EC [x],[y]: not a point on ", crv));
  // Not the point at infinity, on the curve, of the right order.
  EvpPkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key->get(), nullptr));
  if (check == nullptr || EVP_PKEY_public_check(check.get()) != 1) {
    tls::ClearOpenSslErrors();
    return KeyError(StrCat("EC [x],[y]: not a valid public point on ", crv));
  }
  jwk.key = *std::move(key);
  jwk.curve = info->curve;
  jwk.had_private_material = j.contains("d");
  return absl::OkStatus();
}

absl::Status ParseOkp(const nlohmann::json& j, Jwk& jwk) {
  ZM_ASSIGN_OR_RETURN(std::string crv, OptionalString(j, "crv"));
  if (crv != "Ed25519") {
    return KeyError(crv.empty() ? "OKP [crv] is missing"
                                : StrCat("OKP [crv] \"", crv, "\" is not supported"));
  }
  ZM_ASSIGN_OR_RETURN(std::string x, Bytes(j, "OKP", "x"));
  if (x.size() != 32) return KeyError(StrCat("OKP [x] has ", x.size(), " bytes, Ed25519 needs 32"));
  EvpPkeyPtr key(EVP_PKEY_new_raw_public_key_ex(
      nullptr, "ED25519", nullptr, reinterpret_cast<const unsigned char*>(x.data()), x.size()));
  if (key == nullptr) {
    return KeyError(StrCat("OKP [x] rejected by OpenSSL: ", tls::OpenSslErrors()));
  }
  jwk.key = std::move(key);
  jwk.had_private_material = j.contains("d");
  return absl::OkStatus();
}

absl::Status ParseOct(const nlohmann::json& j, Jwk& jwk) {
  ZM_ASSIGN_OR_RETURN(jwk.secret, Bytes(j, "oct", "k"));
  size_t min = std::max(kMinHmacBytes, jwk.alg.has_value() ? AlgInfo(*jwk.alg).digest_bytes : 0);
  if (jwk.secret.size() < min) {
    return KeyError(StrCat("oct [k] has ", jwk.secret.size(), " bytes, at least ", min,
                           " required (RFC 7518 3.2)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Jwk> ParseKey(const nlohmann::json& j, size_t index) {
  Jwk jwk;
  jwk.index = index;
  if (!j.is_object()) return KeyError("not a JSON object");
  ZM_ASSIGN_OR_RETURN(jwk.kid, OptionalString(j, "kid"));
  auto kty_it = j.find("kty");
  if (kty_it == j.end()) return KeyError("[kty] is missing");
  if (!kty_it->is_string()) return KeyError("[kty] is not a string");
  const std::string& kty = kty_it->get_ref<const std::string&>();
  if (kty == "RSA") {
    jwk.kty = KeyType::kRsa;
  } else if (kty == "EC") {
    jwk.kty = KeyType::kEc;
  } else if (kty == "OKP") {
    jwk.kty = KeyType::kOkp;
  } else if (kty == "oct") {
    jwk.kty = KeyType::kOct;
  } else {
    return KeyError(StrCat("[kty] \"", kty, "\" is not supported"));
  }
  ZM_ASSIGN_OR_RETURN(std::string alg, OptionalString(j, "alg"));
  if (!alg.empty()) {
    jwk.alg = JwtAlgFromName(alg);
    if (!jwk.alg.has_value() || AlgInfo(*jwk.alg).key_type != jwk.kty) {
      return KeyError(
          StrCat("[alg] \"", alg, "\" is not a signature algorithm for a ", kty, " key"));
    }
  }
  ZM_ASSIGN_OR_RETURN(jwk.use, OptionalString(j, "use"));
  if (!jwk.use.empty() && jwk.use != "sig") {
    return KeyError(StrCat("[use] is \"", jwk.use, "\", not \"sig\""));
  }
  switch (jwk.kty) {
    case KeyType::kRsa:
      ZM_RETURN_IF_ERROR(ParseRsa(j, jwk));
      break;
    case KeyType::kEc:
      ZM_RETURN_IF_ERROR(ParseEc(j, jwk));
      break;
    case KeyType::kOkp:
      ZM_RETURN_IF_ERROR(ParseOkp(j, jwk));
      break;
    case KeyType::kOct:
      ZM_RETURN_IF_ERROR(ParseOct(j, jwk));
      break;
  }
  return jwk;
}

}  // namespace

const EcCurveInfo& CurveInfo(EcCurve curve) {
  for (const auto& c : kCurves) {
    if (c.curve == curve) return c;
  }
  std::abort();  // every enumerator is in the table
}

Jwk::~Jwk() {
  if (!secret.empty()) OPENSSL_cleanse(secret.data(), secret.size());
}

absl::StatusOr<Jwks> Jwks::Parse(std::string_view json) {
  if (json.size() > kMaxJwksBytes) {
    return absl::InvalidArgumentError(
        StrCat("Jwks is larger than ", kMaxJwksBytes, " bytes (", json.size(), ")"));
  }
  auto doc = ParseJson(json);
  if (!doc.ok()) {
    return absl::InvalidArgumentError(StrCat("Jwks is an invalid JSON: ", doc.status().message()));
  }
  if (!doc->is_object()) return absl::InvalidArgumentError("Jwks is not a JSON object");
  auto keys = doc->find("keys");
  if (keys == doc->end()) return absl::InvalidArgumentError("Jwks does not have [keys] field");
  if (!keys->is_array()) return absl::InvalidArgumentError("[keys] in Jwks is not an array");

  Jwks jwks;
  for (size_t i = 0; i < keys->size(); ++i) {
    const nlohmann::json& j = (*keys)[i];
    std::string label = StrCat("keys[", i, "]");
    if (j.is_object()) {
      if (auto kid = j.find("kid"); kid != j.end() && kid->is_string()) {
        label += StrCat(" (kid \"", kid->get_ref<const std::string&>(), "\")");
      }
    }
    auto jwk = ParseKey(j, i);
    if (!jwk.ok()) {
      jwks.skipped.push_back(StrCat(label, ": ", jwk.status().message()));
      continue;
    }
    if (jwk->had_private_material) {
      jwks.warnings.push_back(
          StrCat(label, ": contains private key material; only the public key is used"));
    }
    jwks.keys.push_back(*std::move(jwk));
  }
  if (jwks.keys.empty()) {
    std::string why = jwks.skipped.empty() ? "[keys] is empty" : "";
    for (const auto& s : jwks.skipped) why += (why.empty() ? "" : "; ") + s;
    return absl::InvalidArgumentError(StrCat("Jwks doesn't have any valid public key: ", why));
  }
  return jwks;
}

}  // namespace zm::jwt
