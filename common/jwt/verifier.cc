#include "common/jwt/verifier.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/rsa.h>

#include <algorithm>

#include "common/base/status.h"
#include "common/base/strings.h"

namespace zm::jwt {
namespace {

using tls::BignumPtr;
using tls::EcdsaSigPtr;
using tls::EvpMdCtxPtr;
using tls::OpenSslBytesPtr;

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

enum class Padding { kNone, kPkcs1, kPss };

// One-shot EVP_DigestVerify of `signature` (in OpenSSL's encoding) over `data`.
bool DigestVerify(EVP_PKEY* key, const char* digest, Padding padding, std::string_view data,
                  std::string_view signature) {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr) return false;
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (EVP_DigestVerifyInit_ex(ctx.get(), &pctx, digest, nullptr, nullptr, key, nullptr) != 1) {
    return false;
  }
  if (padding == Padding::kPkcs1 && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
    return false;
  }
  if (padding == Padding::kPss &&
      (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
       EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, digest, nullptr) != 1 ||
       EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1)) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), Bytes(signature), signature.size(), Bytes(data),
                          data.size()) == 1;
}

bool VerifyRsa(const Jwk& jwk, JwtAlg alg, std::string_view data, std::string_view signature) {
  // An RSA signature is exactly as long as the modulus.
  if (signature.size() != static_cast<size_t>(EVP_PKEY_get_size(jwk.key.get()))) return false;
  const JwtAlgInfo& info = AlgInfo(alg);
  return DigestVerify(jwk.key.get(), info.digest, info.pss ? Padding::kPss : Padding::kPkcs1, data,
                      signature);
}

// JOSE writes an ECDSA signature as R || S, each the size of the curve's order (RFC 7518
// 3.4); OpenSSL wants DER.
bool VerifyEc(const Jwk& jwk, JwtAlg alg, std::string_view data, std::string_view signature) {
  if (!jwk.curve.has_value()) return false;
  const EcCurveInfo& curve = CurveInfo(*jwk.curve);
  const size_t half = curve.coordinate_bytes;
  if (curve.alg != alg || signature.size() != 2 * half) return false;
  BignumPtr r(BN_bin2bn(Bytes(signature), static_cast<int>(half), nullptr));
  BignumPtr s(BN_bin2bn(Bytes(signature) + half, static_cast<int>(half), nullptr));
  EcdsaSigPtr sig(ECDSA_SIG_new());
  if (r == nullptr || s == nullptr || sig == nullptr) return false;
  if (ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) return false;
  (void)r.release();  // now owned by sig
  (void)s.release();
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(sig.get(), &der);
  if (der_len <= 0) return false;
  OpenSslBytesPtr der_owner(der);
  return DigestVerify(jwk.key.get(), AlgInfo(alg).digest, Padding::kNone, data,
                      std::string_view(reinterpret_cast<const char*>(der), der_len));
}

bool VerifyHmac(const Jwk& jwk, JwtAlg alg, std::string_view data, std::string_view signature) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  size_t mac_len = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, AlgInfo(alg).digest, nullptr, jwk.secret.data(),
                jwk.secret.size(), Bytes(data), data.size(), mac, sizeof(mac),
                &mac_len) == nullptr) {
    return false;
  }
  bool ok = mac_len == signature.size() && CRYPTO_memcmp(mac, signature.data(), mac_len) == 0;
  OPENSSL_cleanse(mac, sizeof(mac));
  return ok;
}

bool VerifyEd25519(const Jwk& jwk, std::string_view data, std::string_view signature) {
  if (signature.size() != 64) return false;
  return DigestVerify(jwk.key.get(), nullptr, Padding::kNone, data, signature);
}

// Whether `jwk` verifies the token. A key of another type than the algorithm's never does.
bool VerifyWithKey(const Jwk& jwk, const Jwt& jwt, std::string_view data) {
  const KeyType type = AlgInfo(jwt.alg).key_type;
  if (jwk.kty != type) return false;
  switch (type) {
    case KeyType::kRsa:
      return VerifyRsa(jwk, jwt.alg, data, jwt.signature);
    case KeyType::kEc:
      return VerifyEc(jwk, jwt.alg, data, jwt.signature);
    case KeyType::kOct:
      return VerifyHmac(jwk, jwt.alg, data, jwt.signature);
    case KeyType::kOkp:
      return VerifyEd25519(jwk, data, jwt.signature);
  }
  return false;
}

bool AudienceAllowed(const std::vector<std::string>& token_auds,
                     const std::vector<std::string>& allowed) {
  for (const auto& t : token_auds) {
    std::string_view nt = NormalizeAudience(t);
    for (const auto& a : allowed) {
      if (nt == NormalizeAudience(a)) return true;
    }
  }
  return false;
}

}  // namespace

std::string_view NormalizeAudience(std::string_view aud) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (aud.starts_with(scheme)) {
      aud.remove_prefix(scheme.size());
      break;
    }
  }
  if (aud.ends_with('/')) aud.remove_suffix(1);
  return aud;
}

absl::Status VerifySignature(const Jwt& jwt, const Jwks& jwks) {
  std::string data = jwt.SigningInput();
  bool selected = false;
  for (const Jwk& jwk : jwks.keys) {
    if (jwt.kid.has_value() && !jwt.kid->empty() && !jwk.kid.empty() && jwk.kid != *jwt.kid) {
      continue;
    }
    if (jwk.alg.has_value() && *jwk.alg != jwt.alg) continue;
    selected = true;
    if (VerifyWithKey(jwk, jwt, data)) return absl::OkStatus();
  }
  tls::ClearOpenSslErrors();
  return JwtError(selected ? JwtFailure::kVerificationFailed : JwtFailure::kKidAlgMismatch);
}

bool SignatureCache::Contains(const std::shared_ptr<const Jwks>& jwks,
                              std::string_view token) const {
  if (token.size() > max_token_bytes_) return false;
  std::lock_guard lock(mu_);
  auto it = entries_.find(std::string(token));
  return it != entries_.end() && it->second == jwks;
}

void SignatureCache::Add(std::shared_ptr<const Jwks> jwks, std::string_view token) {
  if (token.size() > max_token_bytes_ || capacity_ == 0) return;
  std::lock_guard lock(mu_);
  if (entries_.size() >= capacity_) entries_.clear();
  entries_[std::string(token)] = std::move(jwks);
}

size_t SignatureCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

absl::StatusOr<VerifiedJwt> VerifyJwt(const Jwt& jwt, const Jwks& jwks, const VerifyParams& params,
                                      const Clock& clock, bool signature_verified) {
  if (!params.issuer.empty() && jwt.issuer != params.issuer) {
    return JwtError(JwtFailure::kUnknownIssuer);
  }
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(clock.Now().time_since_epoch()).count();
  const int64_t skew = kClockSkew.count();
  // Written so that no sum can overflow: nbf and exp may be up to INT64_MAX.
  if (jwt.nbf.has_value() && now + skew < *jwt.nbf) return JwtError(JwtFailure::kNotYetValid);
  if (jwt.exp.has_value() && now - skew > *jwt.exp) return JwtError(JwtFailure::kExpired);
  if (!params.audiences.empty() && !AudienceAllowed(jwt.audiences, params.audiences)) {
    return JwtError(JwtFailure::kAudienceNotAllowed);
  }
  if (!signature_verified) ZM_RETURN_IF_ERROR(VerifySignature(jwt, jwks));
  VerifiedJwt out;
  out.issuer = jwt.issuer;
  out.subject = jwt.subject;
  if (!jwt.issuer.empty() && !jwt.subject.empty()) {
    out.principal = StrCat(jwt.issuer, "/", jwt.subject);
  }
  out.audiences = jwt.audiences;
  out.presenter = jwt.presenter;
  out.claims = jwt.payload;
  out.payload_segment = jwt.payload_segment;
  return out;
}

absl::StatusOr<VerifiedJwt> VerifyToken(std::string_view token, const Jwks& jwks,
                                        const VerifyParams& params, const Clock& clock) {
  ZM_ASSIGN_OR_RETURN(Jwt jwt, Jwt::Parse(token));
  return VerifyJwt(jwt, jwks, params, clock);
}

}  // namespace zm::jwt
