#pragma once
// Shared by the common/jwt tests and the fuzz corpus generator: keys of every kind, their
// public JWKs, and a signer that produces JOSE signatures and compact tokens with them.
// Test code: it signs with EVP_DigestSign / EVP_Q_mac, never with anything hand-rolled.

#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base/clock.h"
#include "common/jwt/base64url.h"
#include "common/jwt/jwks.h"
#include "common/tls/ossl.h"

namespace zm::jwt::jwttest {

using tls::EvpPkeyPtr;

[[noreturn]] inline void Die(std::string_view what) {
  std::fprintf(stderr, "jwt test helper: %.*s: %s\n", static_cast<int>(what.size()), what.data(),
               tls::OpenSslErrors().c_str());
  std::abort();
}

// `clock`'s time in whole seconds since the epoch, as JWT claims write it.
inline int64_t Seconds(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::seconds>(clock.Now().time_since_epoch()).count();
}

inline EvpPkeyPtr GenerateRsa(unsigned bits) {
  EvpPkeyPtr k(EVP_RSA_gen(bits));
  if (k == nullptr) Die("EVP_RSA_gen");
  return k;
}
inline EvpPkeyPtr GenerateEc(const char* curve) {
  EvpPkeyPtr k(EVP_EC_gen(curve));
  if (k == nullptr) Die("EVP_EC_gen");
  return k;
}
inline EvpPkeyPtr GenerateEd25519() {
  EvpPkeyPtr k(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (k == nullptr) Die("EVP_PKEY_Q_keygen(ED25519)");
  return k;
}

inline std::string BnParam(EVP_PKEY* key, const char* name, int pad_to = 0) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &raw) != 1) Die(name);
  tls::BignumPtr bn(raw);
  std::string out(pad_to > 0 ? pad_to : BN_num_bytes(bn.get()), '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(out.data());
  if (pad_to > 0 ? BN_bn2binpad(bn.get(), p, pad_to) < 0 : BN_bn2bin(bn.get(), p) < 0) {
    Die("BN_bn2bin");
  }
  return out;
}

inline std::string B64(std::string_view s) { return Base64UrlEncode(s); }

// DER public key (SubjectPublicKeyInfo) and its PEM: what an attacker has of an RSA key.
inline std::string PublicDer(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(key, &der);
  if (n <= 0) Die("i2d_PUBKEY");
  tls::OpenSslBytesPtr owner(der);
  return std::string(reinterpret_cast<char*>(der), n);
}
inline std::string PublicPem(EVP_PKEY* key) {
  tls::BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PUBKEY(bio.get(), key) != 1) Die("PEM_write_bio_PUBKEY");
  return tls::BioContents(bio.get());
}

// One signing key: an asymmetric private key or an HMAC secret, the JOSE alg it signs with,
// and its kid.
struct TestKey {
  std::string alg;
  std::string kid;
  EvpPkeyPtr key;      // RSA / EC / Ed25519
  std::string secret;  // HMAC

  // The public JWK; `with_alg` adds "alg".
  nlohmann::json Jwk(bool with_alg = false) const {
    nlohmann::json j;
    if (!secret.empty()) {
      j = {{"kty", "oct"}, {"k", B64(secret)}};
    } else {
      switch (EVP_PKEY_get_base_id(key.get())) {
        case EVP_PKEY_RSA:
          j = {{"kty", "RSA"},
               {"n", B64(BnParam(key.get(), OSSL_PKEY_PARAM_RSA_N))},
               {"e", B64(BnParam(key.get(), OSSL_PKEY_PARAM_RSA_E))}};
          break;
        case EVP_PKEY_EC: {
          int bits = EVP_PKEY_get_bits(key.get());
          int size = (bits + 7) / 8;
          j = {{"kty", "EC"},
               {"crv", bits == 256   ? "P-256"
                       : bits == 384 ? "P-384"
                                     : "P-521"},
               {"x", B64(BnParam(key.get(), OSSL_PKEY_PARAM_EC_PUB_X, size))},
               {"y", B64(BnParam(key.get(), OSSL_PKEY_PARAM_EC_PUB_Y, size))}};
          break;
        }
        case EVP_PKEY_ED25519: {
          std::string pub(32, '\0');
          size_t len = pub.size();
          if (EVP_PKEY_get_raw_public_key(key.get(), reinterpret_cast<unsigned char*>(pub.data()),
                                          &len) != 1) {
            Die("EVP_PKEY_get_raw_public_key");
          }
          j = {{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", B64(pub)}};
          break;
        }
        default:
          Die("unknown key type");
      }
    }
    if (!kid.empty()) j["kid"] = kid;
    if (with_alg) j["alg"] = alg;
    return j;
  }

  // How ECDSA signatures are written.
  enum class EcFormat { kJose, kDer };

  // The JOSE signature of `input` under `alg` (default: the key's own).
  std::string Sign(std::string_view input, std::string_view as_alg = {},
                   EcFormat ec = EcFormat::kJose, int pss_salt = RSA_PSS_SALTLEN_DIGEST) const {
    std::string a(as_alg.empty() ? std::string_view(alg) : as_alg);
    const char* md = a.ends_with("256") ? "SHA256" : a.ends_with("384") ? "SHA384" : "SHA512";
    const auto* data = reinterpret_cast<const unsigned char*>(input.data());
    if (a.starts_with("HS")) {
      unsigned char mac[EVP_MAX_MD_SIZE];
      size_t len = 0;
      if (EVP_Q_mac(nullptr, "HMAC", nullptr, md, nullptr, secret.data(), secret.size(), data,
                    input.size(), mac, sizeof(mac), &len) == nullptr) {
        Die("EVP_Q_mac");
      }
      return std::string(reinterpret_cast<char*>(mac), len);
    }
    tls::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
    EVP_PKEY_CTX* pctx = nullptr;
    if (EVP_DigestSignInit_ex(ctx.get(), &pctx, a == "EdDSA" ? nullptr : md, nullptr, nullptr,
                              key.get(), nullptr) != 1) {
      Die("EVP_DigestSignInit_ex");
    }
    if (a.starts_with("PS") && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                                EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, pss_salt) != 1)) {
      Die("PSS parameters");
    }
    size_t len = 0;
    if (EVP_DigestSign(ctx.get(), nullptr, &len, data, input.size()) != 1) Die("EVP_DigestSign");
    std::string sig(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, data,
                       input.size()) != 1) {
      Die("EVP_DigestSign");
    }
    sig.resize(len);
    if (!a.starts_with("ES") || ec == EcFormat::kDer) return sig;
    // DER -> R || S, each padded to the curve's size.
    const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
    tls::EcdsaSigPtr es(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size())));
    if (es == nullptr) Die("d2i_ECDSA_SIG");
    int half = (EVP_PKEY_get_bits(key.get()) + 7) / 8;
    std::string raw(2 * half, '\0');
    auto* out = reinterpret_cast<unsigned char*>(raw.data());
    if (BN_bn2binpad(ECDSA_SIG_get0_r(es.get()), out, half) < 0 ||
        BN_bn2binpad(ECDSA_SIG_get0_s(es.get()), out + half, half) < 0) {
      Die("BN_bn2binpad");
    }
    return raw;
  }

  // The default header: {"alg": alg, "typ": "JWT"} plus "kid" when the key has one.
  nlohmann::json Header() const {
    nlohmann::json h = {{"alg", alg}, {"typ", "JWT"}};
    if (!kid.empty()) h["kid"] = kid;
    return h;
  }

  // A compact token with `payload`, signed by this key.
  std::string Token(const nlohmann::json& payload) const { return Token(Header(), payload); }
  std::string Token(const nlohmann::json& header, const nlohmann::json& payload) const {
    std::string input = B64(header.dump()) + "." + B64(payload.dump());
    return input + "." + B64(Sign(input));
  }
};

// Keys are expensive to generate (RSA): one per (kind, kid), made on first use.
// kind: RS256..PS512 share RSA-2048 keys; "RSA1024"; ES256/ES384/ES512 on P-256/P-384/P-521;
// HS256/384/512 with a 64-byte secret; EdDSA on Ed25519.
inline const TestKey& Key(const std::string& alg, const std::string& kid = "") {
  static auto* cache = new std::map<std::pair<std::string, std::string>, TestKey>();
  auto it = cache->find({alg, kid});
  if (it != cache->end()) return it->second;
  TestKey k;
  k.alg = alg;
  k.kid = kid;
  if (alg == "RSA1024") {
    k.alg = "RS256";
    k.key = GenerateRsa(1024);
  } else if (alg.starts_with("RS") || alg.starts_with("PS")) {
    // RS256 and PS256 of one kid share the modulus (one RSA key serves both).
    std::string family_alg = "RS256";
    if (alg != family_alg) {
      k.key = tls::UpRef(Key(family_alg, kid).key.get());
    } else {
      k.key = GenerateRsa(2048);
    }
  } else if (alg == "ES256") {
    k.key = GenerateEc("P-256");
  } else if (alg == "ES384") {
    k.key = GenerateEc("P-384");
  } else if (alg == "ES512") {
    k.key = GenerateEc("P-521");
  } else if (alg.starts_with("HS")) {
    k.secret = std::string(64, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(k.secret.data()), 64) != 1) Die("RAND_bytes");
  } else if (alg == "EdDSA") {
    k.key = GenerateEd25519();
  } else {
    Die("unknown test key kind");
  }
  return cache->emplace(std::pair{alg, kid}, std::move(k)).first->second;
}

inline std::string JwksJson(const std::vector<nlohmann::json>& keys) {
  return nlohmann::json{{"keys", keys}}.dump();
}

// Parses a JWKS that must parse.
inline Jwks MustParseJwks(const std::string& json) {
  auto jwks = Jwks::Parse(json);
  if (!jwks.ok()) {
    std::fprintf(stderr, "JWKS does not parse: %s\n", std::string(jwks.status().message()).c_str());
    std::abort();
  }
  return *std::move(jwks);
}

inline constexpr const char* kAllAlgs[] = {"RS256", "RS384", "RS512", "PS256", "PS384",
                                           "PS512", "ES256", "ES384", "ES512", "HS256",
                                           "HS384", "HS512", "EdDSA"};

}  // namespace zm::jwt::jwttest
