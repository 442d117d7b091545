#include "common/jwt/jwks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/common/jwt/jwt_test_util.h"

namespace zm::jwt {
namespace {

using jwttest::Key;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Parses a set of one bad key next to a good one; returns the skipped line for the bad key.
std::string SkippedReason(nlohmann::json bad) {
  auto jwks = Jwks::Parse(jwttest::JwksJson({Key("ES256").Jwk(), std::move(bad)}));
  EXPECT_TRUE(jwks.ok()) << jwks.status();
  if (!jwks.ok()) return "";
  EXPECT_EQ(jwks->keys.size(), 1u);
  EXPECT_EQ(jwks->skipped.size(), 1u);
  return jwks->skipped.empty() ? "" : jwks->skipped[0];
}

TEST(JwksTest, RsaKeyShorterThan2048BitsIsRejected) {
  EXPECT_THAT(SkippedReason(Key("RSA1024").Jwk()),
              HasSubstr("keys[1]: RSA [n]: 1024-bit modulus, at least 2048 bits required"));
}

TEST(JwksTest, RsaBadExponentIsRejected) {
  for (std::string e : {"AQ" /* 1 */, "Ag" /* 2 */, "AQAAAAAAAAAAAQ" /* 2^64+1 */}) {
    nlohmann::json jwk = Key("RS256").Jwk();
    jwk["e"] = e;
    EXPECT_THAT(SkippedReason(jwk), HasSubstr("RSA [e]: exponent must be odd")) << e;
  }
}

TEST(JwksTest, RsaMissingOrMalformedFieldsAreNamed) {
  nlohmann::json jwk = Key("RS256", "r1").Jwk();
  jwk.erase("n");
  EXPECT_THAT(SkippedReason(jwk), HasSubstr("keys[1] (kid \"r1\"): RSA [n] is missing"));
  jwk = Key("RS256").Jwk();
  jwk["e"] = 65537;
  EXPECT_THAT(SkippedReason(jwk), HasSubstr("keys[1]: RSA [e] is not a string"));
  jwk = Key("RS256").Jwk();
  jwk["n"] = jwk["n"].get<std::string>() + "=";
  EXPECT_THAT(SkippedReason(jwk), HasSubstr("RSA [n] is not valid base64url"));
}

TEST(JwksTest, EcPointNotOnCurveIsRejected) {
  nlohmann::json jwk = Key("ES256").Jwk();
  std::string y = *Base64UrlDecode(jwk["y"].get<std::string>());
  y.back() ^= 1;
  jwk["y"] = Base64UrlEncode(y);
  EXPECT_THAT(SkippedReason(jwk), HasSubstr("EC [x],[y]: not"));
}

TEST(JwksTest, EcCoordinateOfWrongLengthIsRejected) {
  nlohmann::json jwk = Key("ES384").Jwk();
  jwk["x"] = Base64UrlEncode(Base64UrlDecode(jwk["x"].get<std::string>())->substr(1));
  EXPECT_THAT(SkippedReason(jwk), HasSubstr("EC [x] has 47 bytes, P-384 needs 48"));
}

TEST(JwksTest, EcCurveAndAlgMustAgree) {
  nlohmann::json jwk = Key("ES256").Jwk();
  jwk["alg"] = "ES384";
  EXPECT_THAT(SkippedReason(jwk), HasSubstr("EC [alg] ES384 does not match [crv] P-256"));
  jwk = Key("ES256").Jwk();
  jwk["crv"] = "secp256k1";
  EXPECT_THAT(SkippedReason(jwk), HasSubstr("EC [crv] \"secp256k1\" is not supported"));
  jwk.erase("crv");
  EXPECT_THAT(SkippedReason(jwk), HasSubstr("EC [crv] is missing"));
}

TEST(JwksTest, OkpOnlyEd25519With32Bytes) {
  nlohmann::json jwk = Key("EdDSA").Jwk();
  jwk["crv"] = "Ed448";
  EXPECT_THAT(SkippedReason(jwk), HasSubstr("OKP [crv] \"Ed448\" is not supported"));
  jwk = Key("EdDSA").Jwk();
  jwk["x"] = Base64UrlEncode(std::string(31, 'x'));
  EXPECT_THAT(SkippedReason(jwk), HasSubstr("OKP [x] has 31 bytes, Ed25519 needs 32"));
}

TEST(JwksTest, ShortHmacKeyIsRejected) {
  EXPECT_THAT(SkippedReason({{"kty", "oct"}, {"k", Base64UrlEncode("secret")}}),
              HasSubstr("oct [k] has 6 bytes, at least 32 required"));
  // HS512 wants a key at least as long as its digest.
  EXPECT_THAT(SkippedReason(
                  {{"kty", "oct"}, {"alg", "HS512"}, {"k", Base64UrlEncode(std::string(32, 'k'))}}),
              HasSubstr("oct [k] has 32 bytes, at least 64 required"));
}

TEST(JwksTest, KeyTypeProblemsAreNamed) {
  EXPECT_THAT(SkippedReason({{"n", "AQAB"}}), HasSubstr("keys[1]: [kty] is missing"));
  EXPECT_THAT(SkippedReason({{"kty", 1}}), HasSubstr("[kty] is not a string"));
  EXPECT_THAT(SkippedReason({{"kty", "rsa"}}), HasSubstr("[kty] \"rsa\" is not supported"));
  EXPECT_THAT(SkippedReason("a string"), HasSubstr("keys[1]: not a JSON object"));
  nlohmann::json jwk = Key("RS256").Jwk();
  jwk["kid"] = 5;
  EXPECT_THAT(SkippedReason(jwk), HasSubstr("[kid] is not a string"));
}

TEST(JwksTest, AlgMustBeASignatureAlgOfTheKeyType) {
  nlohmann::json jwk = Key("RS256").Jwk();
  jwk["alg"] = "RSA-OAEP";
  EXPECT_THAT(SkippedReason(jwk),
              HasSubstr("[alg] \"RSA-OAEP\" is not a signature algorithm for a RSA key"));
  jwk["alg"] = "HS256";
  EXPECT_THAT(SkippedReason(jwk), HasSubstr("[alg] \"HS256\" is not a signature algorithm"));
  jwk = Key("HS256").Jwk();
  jwk["alg"] = "RS256";
  EXPECT_THAT(SkippedReason(jwk), HasSubstr("for a oct key"));
}

TEST(JwksTest, EncryptionKeysAreSkipped) {
  nlohmann::json jwk = Key("RS256").Jwk();
  jwk["use"] = "enc";
  EXPECT_THAT(SkippedReason(jwk), HasSubstr("[use] is \"enc\", not \"sig\""));
}

TEST(JwksTest, PrivateKeyMaterialIsAcceptedWithAWarning) {
  nlohmann::json rsa = Key("RS256", "r").Jwk();
  rsa["d"] = "AQAB";
  rsa["p"] = "AQAB";
  nlohmann::json ec = Key("ES256", "e").Jwk();
  ec["d"] = "AQAB";
  auto jwks = Jwks::Parse(jwttest::JwksJson({rsa, ec, Key("EdDSA").Jwk()}));
  ASSERT_TRUE(jwks.ok()) << jwks.status();
  ASSERT_EQ(jwks->keys.size(), 3u);
  EXPECT_TRUE(jwks->keys[0].had_private_material);
  EXPECT_TRUE(jwks->keys[1].had_private_material);
  EXPECT_FALSE(jwks->keys[2].had_private_material);
  EXPECT_THAT(jwks->warnings,
              ElementsAre(HasSubstr("keys[0] (kid \"r\"): contains private key material"),
                          HasSubstr("keys[1] (kid \"e\"): contains private key material")));
}

TEST(JwksTest, DocumentLevelErrors) {
  struct Bad {
    std::string json;
    const char* message;
  };
  for (const auto& [json, message] : std::vector<Bad>{
           {"not json", "Jwks is an invalid JSON"},
           {"[]", "Jwks is not a JSON object"},
           {"{}", "Jwks does not have [keys] field"},
           {R"({"keys":{}})", "[keys] in Jwks is not an array"},
           {R"({"keys":[]})", "Jwks doesn't have any valid public key: [keys] is empty"},
           {R"({"keys":[{"kty":"EC"}],"keys":[]})", "duplicate member name"},
           {R"({"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}, 5]})",
            "Jwks doesn't have any valid public key: keys[0]: RSA [n]: 17-bit modulus, at least "
            "2048 bits required; keys[1]: not a JSON object"},
           {std::string(kMaxJwksBytes + 1, ' '), "Jwks is larger than"},
       }) {
    auto jwks = Jwks::Parse(json);
    ASSERT_FALSE(jwks.ok()) << json;
    EXPECT_THAT(jwks.status().message(), HasSubstr(message));
  }
}

TEST(JwksTest, ParsesEveryKeyType) {
  std::vector<nlohmann::json> keys;
  for (const char* alg : {"RS256", "ES256", "ES384", "ES512", "EdDSA", "HS256"}) {
    keys.push_back(Key(alg, alg).Jwk(/*with_alg=*/true));
  }
  nlohmann::json rsa_sig = Key("RS256", "sig").Jwk();
  rsa_sig["use"] = "sig";
  keys.push_back(rsa_sig);
  auto jwks = Jwks::Parse(jwttest::JwksJson(keys));
  ASSERT_TRUE(jwks.ok()) << jwks.status();
  EXPECT_THAT(jwks->skipped, IsEmpty());
  EXPECT_THAT(jwks->warnings, IsEmpty());
  ASSERT_EQ(jwks->keys.size(), 7u);
  const auto& k = jwks->keys;
  EXPECT_EQ(k[0].kty, KeyType::kRsa);
  EXPECT_EQ(k[0].kid, "RS256");
  EXPECT_EQ(k[0].alg, JwtAlg::kRs256);
  EXPECT_EQ(EVP_PKEY_get_bits(k[0].key.get()), 2048);
  EXPECT_EQ(k[1].curve, EcCurve::kP256);
  EXPECT_EQ(k[2].curve, EcCurve::kP384);
  EXPECT_EQ(k[3].curve, EcCurve::kP521);
  EXPECT_EQ(EVP_PKEY_get_bits(k[3].key.get()), 521);
  EXPECT_EQ(k[4].kty, KeyType::kOkp);
  EXPECT_EQ(EVP_PKEY_get_base_id(k[4].key.get()), EVP_PKEY_ED25519);
  EXPECT_EQ(k[5].kty, KeyType::kOct);
  EXPECT_EQ(k[5].secret, Key("HS256", "HS256").secret);
  EXPECT_EQ(k[5].key, nullptr);
  EXPECT_EQ(k[6].use, "sig");
  EXPECT_FALSE(k[6].alg.has_value());
  for (size_t i = 0; i < k.size(); ++i) EXPECT_EQ(k[i].index, i);
}

TEST(JwksTest, ParsedPublicKeysEqualTheGeneratedOnes) {
  for (const char* alg : {"RS256", "ES256", "ES384", "ES512", "EdDSA"}) {
    Jwks jwks = jwttest::MustParseJwks(jwttest::JwksJson({Key(alg).Jwk()}));
    EXPECT_EQ(EVP_PKEY_eq(jwks.keys[0].key.get(), Key(alg).key.get()), 1) << alg;
  }
}

}  // namespace
}  // namespace zm::jwt
