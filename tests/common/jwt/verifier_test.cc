#include "common/jwt/verifier.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/common/jwt/jwt_test_util.h"

namespace zm::jwt {
namespace {

using jwttest::Key;
using jwttest::TestKey;
using ::testing::ElementsAre;

constexpr char kIssuer[] = "https://idp.example.com";

class VerifierTest : public ::testing::Test {
 protected:
  int64_t Now() const { return jwttest::Seconds(clock_); }
  nlohmann::json Claims() const {
    return {{"iss", kIssuer}, {"sub", "alice"}, {"iat", Now()}, {"exp", Now() + 3600}};
  }
  static Jwks JwksOf(std::vector<nlohmann::json> keys) {
    return jwttest::MustParseJwks(jwttest::JwksJson(keys));
  }
  absl::StatusOr<VerifiedJwt> Verify(std::string_view token, const Jwks& jwks,
                                     VerifyParams params = {kIssuer, {}}) const {
    return VerifyToken(token, jwks, params, clock_);
  }
  void ExpectFailure(const absl::StatusOr<VerifiedJwt>& result, JwtFailure failure) const {
    ASSERT_FALSE(result.ok()) << "verified";
    EXPECT_EQ(JwtFailureOf(result.status()), failure) << result.status();
    EXPECT_EQ(std::string(result.status().message()), JwtFailureText(failure));
  }
  // "<header>.<claims>" in base64url: what a signature covers.
  std::string Input(const nlohmann::json& header) const {
    return Base64UrlEncode(header.dump()) + "." + Base64UrlEncode(Claims().dump());
  }
  static std::string Signed(const std::string& input, const std::string& signature) {
    return input + "." + Base64UrlEncode(signature);
  }
  // The token with its payload segment replaced by `payload`'s, signature kept.
  static std::string ReplacePayload(const std::string& token, const nlohmann::json& payload) {
    size_t d1 = token.find('.');
    size_t d2 = token.rfind('.');
    return token.substr(0, d1 + 1) + Base64UrlEncode(payload.dump()) + token.substr(d2);
  }

  FakeClock clock_;
};

// ---- Hostile tokens -------------------------------------------------------------------------

TEST_F(VerifierTest, AlgNoneWithoutSignatureIsRejected) {
  std::string token = Base64UrlEncode(R"({"alg":"none","typ":"JWT"})") + "." +
                      Base64UrlEncode(Claims().dump()) + ".";
  ExpectFailure(Verify(token, JwksOf({Key("RS256").Jwk()})), JwtFailure::kBadFormat);
}

TEST_F(VerifierTest, AlgNoneWithSignatureIsRejected) {
  const TestKey& k = Key("RS256");
  std::string input = Base64UrlEncode(R"({"alg":"none"})") + "." + Base64UrlEncode(Claims().dump());
  std::string token = Signed(input, k.Sign(input));
  ExpectFailure(Verify(token, JwksOf({k.Jwk()})), JwtFailure::kHeaderAlgRefused);
}

// The classic key confusion: the attacker knows the RSA public key and uses its bytes as an
// HMAC secret. An RSA key never verifies an HS* token.
TEST_F(VerifierTest, Hs256SignedWithRsaPublicKeyPemIsRejected) {
  const TestKey& rsa = Key("RS256");
  TestKey forged;
  forged.alg = "HS256";
  forged.secret = jwttest::PublicPem(rsa.key.get());
  std::string token = forged.Token(Claims());
  ExpectFailure(Verify(token, JwksOf({rsa.Jwk()})), JwtFailure::kVerificationFailed);
  // With "alg" on the key the key is not even selected.
  ExpectFailure(Verify(token, JwksOf({rsa.Jwk(/*with_alg=*/true)})), JwtFailure::kKidAlgMismatch);
}

TEST_F(VerifierTest, Hs256SignedWithRsaPublicKeyDerIsRejected) {
  const TestKey& rsa = Key("RS256");
  for (std::string secret :
       {jwttest::PublicDer(rsa.key.get()), jwttest::BnParam(rsa.key.get(), OSSL_PKEY_PARAM_RSA_N),
        rsa.Jwk()["n"].get<std::string>(), rsa.Jwk().dump()}) {
    TestKey forged;
    forged.alg = "HS256";
    forged.secret = secret;
    ExpectFailure(Verify(forged.Token(Claims()), JwksOf({rsa.Jwk()})),
                  JwtFailure::kVerificationFailed);
  }
}

TEST_F(VerifierTest, EcPublicKeyIsNoHmacSecretEither) {
  const TestKey& ec = Key("ES256");
  TestKey forged;
  forged.alg = "HS256";
  forged.secret = jwttest::PublicDer(ec.key.get());
  ExpectFailure(Verify(forged.Token(Claims()), JwksOf({ec.Jwk()})),
                JwtFailure::kVerificationFailed);
}

TEST_F(VerifierTest, TamperedPayloadIsRejected) {
  const TestKey& k = Key("RS256");
  nlohmann::json claims = Claims();
  std::string token = k.Token(claims);
  claims["sub"] = "admin";
  ExpectFailure(Verify(ReplacePayload(token, claims), JwksOf({k.Jwk()})),
                JwtFailure::kVerificationFailed);
}

TEST_F(VerifierTest, TamperedHeaderIsRejected) {
  const TestKey& k = Key("ES256");
  std::string token = k.Token(Claims());
  nlohmann::json header = k.Header();
  header["typ"] = "at+jwt";
  std::string tampered = Base64UrlEncode(header.dump()) + token.substr(token.find('.'));
  ExpectFailure(Verify(tampered, JwksOf({k.Jwk()})), JwtFailure::kVerificationFailed);
}

TEST_F(VerifierTest, TamperedSignatureIsRejected) {
  for (const char* alg : jwttest::kAllAlgs) {
    const TestKey& k = Key(alg);
    std::string input = Input(k.Header());
    std::string sig = k.Sign(input);
    sig[sig.size() / 2] ^= 0x01;
    ExpectFailure(Verify(Signed(input, sig), JwksOf({k.Jwk()})), JwtFailure::kVerificationFailed);
  }
}

TEST_F(VerifierTest, SignatureByAnotherKeyOfTheSameTypeIsRejected) {
  std::string token = Key("RS256", "attacker").Token(Claims());
  ExpectFailure(Verify(token, JwksOf({Key("RS256").Jwk()})), JwtFailure::kVerificationFailed);
}

TEST_F(VerifierTest, UnknownKidIsRejected) {
  std::string token = Key("RS256", "unknown").Token(Claims());
  ExpectFailure(Verify(token, JwksOf({Key("RS256", "k1").Jwk(), Key("ES256", "k2").Jwk()})),
                JwtFailure::kKidAlgMismatch);
}

TEST_F(VerifierTest, KidMatchesButAlgDiffersIsRejected) {
  // The key is declared for RS384; a token of the same kid claiming RS256 may not use it.
  const TestKey& k = Key("RS256", "k1");
  nlohmann::json jwk = k.Jwk();
  jwk["alg"] = "RS384";
  ExpectFailure(Verify(k.Token(Claims()), JwksOf({jwk})), JwtFailure::kKidAlgMismatch);
}

TEST_F(VerifierTest, RsSignaturePresentedAsPsIsRejected) {
  const TestKey& k = Key("RS256");
  nlohmann::json header = {{"alg", "PS256"}};
  std::string input = Input(header);
  std::string token = Signed(input, k.Sign(input, "RS256"));
  ExpectFailure(Verify(token, JwksOf({k.Jwk()})), JwtFailure::kVerificationFailed);
}

TEST_F(VerifierTest, PsWithSaltLengthOtherThanDigestLengthIsRejected) {
  const TestKey& k = Key("PS256");
  std::string input = Input(k.Header());
  for (int salt : {0, 20, RSA_PSS_SALTLEN_MAX}) {
    std::string token = Signed(input, k.Sign(input, "", TestKey::EcFormat::kJose, salt));
    ExpectFailure(Verify(token, JwksOf({k.Jwk()})), JwtFailure::kVerificationFailed);
  }
}

TEST_F(VerifierTest, Sha384SignaturePresentedAsRs256IsRejected) {
  const TestKey& k = Key("RS256");
  std::string input = Input(k.Header());
  std::string token = Signed(input, k.Sign(input, "RS384"));
  ExpectFailure(Verify(token, JwksOf({k.Jwk()})), JwtFailure::kVerificationFailed);
}

TEST_F(VerifierTest, Es256SignatureOfWrongLengthIsRejected) {
  const TestKey& k = Key("ES256");
  std::string input = Input(k.Header());
  std::string sig = k.Sign(input);
  ASSERT_EQ(sig.size(), 64u);
  for (std::string bad : {sig.substr(0, 63), sig + std::string(1, '\0'), std::string(1, '\0') + sig,
                          sig.substr(0, 32), std::string(64, '\0')}) {
    ExpectFailure(Verify(Signed(input, bad), JwksOf({k.Jwk()})), JwtFailure::kVerificationFailed);
  }
}

TEST_F(VerifierTest, Es256DerEncodedSignatureIsRejected) {
  const TestKey& k = Key("ES256");
  std::string input = Input(k.Header());
  std::string der = k.Sign(input, "", TestKey::EcFormat::kDer);
  ExpectFailure(Verify(Signed(input, der), JwksOf({k.Jwk()})), JwtFailure::kVerificationFailed);
}

TEST_F(VerifierTest, Es256TokenWithP384KeyIsRejected) {
  // ES256 means P-256 + SHA-256: a P-384 key signing SHA-256 does not make an ES256 token.
  const TestKey& p384 = Key("ES384");
  nlohmann::json header = {{"alg", "ES256"}};
  std::string input = Input(header);
  std::string token = Signed(input, p384.Sign(input, "ES256"));
  ExpectFailure(Verify(token, JwksOf({p384.Jwk()})), JwtFailure::kVerificationFailed);
  // And a genuine ES256 token does not verify against the P-384 key.
  ExpectFailure(Verify(Key("ES256").Token(Claims()), JwksOf({p384.Jwk()})),
                JwtFailure::kVerificationFailed);
}

TEST_F(VerifierTest, EdDsaSignatureOfWrongLengthIsRejected) {
  const TestKey& k = Key("EdDSA");
  std::string input = Input(k.Header());
  std::string sig = k.Sign(input);
  ExpectFailure(Verify(Signed(input, sig.substr(0, 63)), JwksOf({k.Jwk()})),
                JwtFailure::kVerificationFailed);
}

TEST_F(VerifierTest, HmacTruncatedMacIsRejected) {
  const TestKey& k = Key("HS256");
  std::string input = Input(k.Header());
  std::string mac = k.Sign(input);
  ExpectFailure(Verify(Signed(input, mac.substr(0, 16)), JwksOf({k.Jwk()})),
                JwtFailure::kVerificationFailed);
}

TEST_F(VerifierTest, TokenSignedWithRsa1024KeyHasNoUsableJwks) {
  auto jwks = Jwks::Parse(jwttest::JwksJson({Key("RSA1024").Jwk()}));
  ASSERT_FALSE(jwks.ok());
  EXPECT_THAT(jwks.status().message(), ::testing::HasSubstr("at least 2048 bits required"));
}

TEST_F(VerifierTest, ExpiredJustPastSkewIsRejected) {
  const TestKey& k = Key("ES256");
  nlohmann::json claims = Claims();
  claims["exp"] = Now() - 61;
  ExpectFailure(Verify(k.Token(claims), JwksOf({k.Jwk()})), JwtFailure::kExpired);
}

TEST_F(VerifierTest, ExpiredJustWithinSkewIsAccepted) {
  const TestKey& k = Key("ES256");
  nlohmann::json claims = Claims();
  claims["exp"] = Now() - 60;
  EXPECT_TRUE(Verify(k.Token(claims), JwksOf({k.Jwk()})).ok());
  clock_.Advance(std::chrono::seconds(1));
  ExpectFailure(Verify(k.Token(claims), JwksOf({k.Jwk()})), JwtFailure::kExpired);
}

TEST_F(VerifierTest, NotYetValidBeyondSkewIsRejected) {
  const TestKey& k = Key("ES256");
  nlohmann::json claims = Claims();
  claims["nbf"] = Now() + 61;
  ExpectFailure(Verify(k.Token(claims), JwksOf({k.Jwk()})), JwtFailure::kNotYetValid);
}

TEST_F(VerifierTest, NotYetValidWithinSkewIsAccepted) {
  const TestKey& k = Key("ES256");
  nlohmann::json claims = Claims();
  claims["nbf"] = Now() + 60;
  EXPECT_TRUE(Verify(k.Token(claims), JwksOf({k.Jwk()})).ok());
}

TEST_F(VerifierTest, TimesAtTheEdgeOfInt64DoNotOverflow) {
  const TestKey& k = Key("ES256");
  nlohmann::json claims = Claims();
  claims["exp"] = INT64_MAX;
  EXPECT_TRUE(Verify(k.Token(claims), JwksOf({k.Jwk()})).ok());
  claims["nbf"] = INT64_MAX;
  ExpectFailure(Verify(k.Token(claims), JwksOf({k.Jwk()})), JwtFailure::kNotYetValid);
  claims.erase("nbf");
  claims["exp"] = 0;
  ExpectFailure(Verify(k.Token(claims), JwksOf({k.Jwk()})), JwtFailure::kExpired);
}

TEST_F(VerifierTest, TokenWithoutExpNeverExpires) {
  const TestKey& k = Key("ES256");
  nlohmann::json claims = Claims();
  claims.erase("exp");
  clock_.Advance(std::chrono::hours(24 * 365 * 50));
  EXPECT_TRUE(Verify(k.Token(claims), JwksOf({k.Jwk()})).ok());
}

TEST_F(VerifierTest, WrongAudienceIs403) {
  const TestKey& k = Key("RS256");
  nlohmann::json claims = Claims();
  claims["aud"] = {"other", "another"};
  auto result = Verify(k.Token(claims), JwksOf({k.Jwk()}), {kIssuer, {"svc"}});
  ExpectFailure(result, JwtFailure::kAudienceNotAllowed);
  EXPECT_EQ(JwtHttpStatus(result.status()), 403);
}

TEST_F(VerifierTest, NoAudWhenAudiencesRequiredIs403) {
  const TestKey& k = Key("RS256");
  auto result = Verify(k.Token(Claims()), JwksOf({k.Jwk()}), {kIssuer, {"svc"}});
  ExpectFailure(result, JwtFailure::kAudienceNotAllowed);
  EXPECT_EQ(JwtHttpStatus(result.status()), 403);
}

TEST_F(VerifierTest, AudienceNormalisation) {
  struct Case {
    const char* token_aud;
    const char* configured;
    bool allowed;
  };
  const Case kCases[] = {
      {"svc", "svc", true},
      {"http://svc", "svc", true},
      {"https://svc", "svc", true},
      {"svc/", "svc", true},
      {"https://svc/", "http://svc", true},
      {"svc", "https://svc/", true},
      {"https://api.example.com/v1/", "api.example.com/v1", true},
      {"svc//", "svc", false},        // one trailing slash only
      {"HTTPS://svc", "svc", false},  // scheme match is case-sensitive
      {"ftp://svc", "svc", false},
      {"http://https://svc", "svc", false},  // one scheme only
      {"svc", "svc2", false},
      {"Svc", "svc", false},
      {"", "svc", false},
  };
  const TestKey& k = Key("ES256");
  Jwks jwks = JwksOf({k.Jwk()});
  for (const auto& c : kCases) {
    nlohmann::json claims = Claims();
    claims["aud"] = c.token_aud;
    auto result = Verify(k.Token(claims), jwks, {kIssuer, {"unrelated", c.configured}});
    EXPECT_EQ(result.ok(), c.allowed) << c.token_aud << " vs " << c.configured;
    if (!c.allowed) {
      EXPECT_EQ(JwtFailureOf(result.status()), JwtFailure::kAudienceNotAllowed);
    }
  }
}

TEST_F(VerifierTest, WrongIssuerIsRejected) {
  const TestKey& k = Key("RS256");
  nlohmann::json claims = Claims();
  claims["iss"] = "https://evil.example.com";
  ExpectFailure(Verify(k.Token(claims), JwksOf({k.Jwk()})), JwtFailure::kUnknownIssuer);
  claims["iss"] = std::string(kIssuer) + "/";
  ExpectFailure(Verify(k.Token(claims), JwksOf({k.Jwk()})), JwtFailure::kUnknownIssuer);
  claims.erase("iss");
  ExpectFailure(Verify(k.Token(claims), JwksOf({k.Jwk()})), JwtFailure::kUnknownIssuer);
}

TEST_F(VerifierTest, EmptyConfiguredIssuerAcceptsAnyIssuer) {
  const TestKey& k = Key("RS256");
  nlohmann::json claims = Claims();
  claims["iss"] = "https://anyone";
  EXPECT_TRUE(Verify(k.Token(claims), JwksOf({k.Jwk()}), {"", {}}).ok());
}

// Steps run in policy-semantics §4.3 order: the first failure is the one reported.
TEST_F(VerifierTest, FailuresAreReportedInPipelineOrder) {
  const TestKey& k = Key("RS256");
  Jwks jwks = JwksOf({k.Jwk()});
  nlohmann::json claims = Claims();
  claims["iss"] = "https://evil";
  claims["exp"] = Now() - 3600;
  claims["aud"] = "other";
  std::string forged = ReplacePayload(k.Token(Claims()), claims);  // bad signature too
  ExpectFailure(Verify(forged, jwks, {kIssuer, {"svc"}}), JwtFailure::kUnknownIssuer);
  claims["iss"] = kIssuer;
  forged = ReplacePayload(k.Token(Claims()), claims);
  ExpectFailure(Verify(forged, jwks, {kIssuer, {"svc"}}), JwtFailure::kExpired);
  claims["exp"] = Now() + 60;
  forged = ReplacePayload(k.Token(Claims()), claims);
  ExpectFailure(Verify(forged, jwks, {kIssuer, {"svc"}}), JwtFailure::kAudienceNotAllowed);
  claims["aud"] = "svc";
  forged = ReplacePayload(k.Token(Claims()), claims);
  ExpectFailure(Verify(forged, jwks, {kIssuer, {"svc"}}), JwtFailure::kVerificationFailed);
}

// ---- Accepted tokens ------------------------------------------------------------------------

class EveryAlg : public VerifierTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(EveryAlg, VerifiesWithKidAndAlgOnTheKey) {
  const TestKey& k = Key(GetParam(), "kid-1");
  auto result = Verify(k.Token(Claims()), JwksOf({k.Jwk(/*with_alg=*/true)}));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->principal, std::string(kIssuer) + "/alice");
}

TEST_P(EveryAlg, VerifiesWithoutKidAmongOtherKeys) {
  const TestKey& k = Key(GetParam());
  std::vector<nlohmann::json> keys;
  for (const char* other : jwttest::kAllAlgs) keys.push_back(Key(other, "other").Jwk());
  keys.push_back(k.Jwk());
  auto result = Verify(k.Token(Claims()), JwksOf(keys));
  ASSERT_TRUE(result.ok()) << result.status();
}

TEST_P(EveryAlg, SignatureOverOtherBytesFails) {
  const TestKey& k = Key(GetParam());
  std::string token = k.Token(Claims());
  std::string other = k.Token(nlohmann::json{{"iss", kIssuer}, {"sub", "mallory"}});
  std::string spliced = token.substr(0, token.rfind('.')) + other.substr(other.rfind('.'));
  ExpectFailure(Verify(spliced, JwksOf({k.Jwk()})), JwtFailure::kVerificationFailed);
}

INSTANTIATE_TEST_SUITE_P(Algs, EveryAlg, ::testing::ValuesIn(jwttest::kAllAlgs));

TEST_F(VerifierTest, ResultCarriesIdentityAndClaims) {
  const TestKey& k = Key("EdDSA");
  nlohmann::json claims = Claims();
  claims["aud"] = {"a", "https://svc/"};
  claims["azp"] = "web";
  claims["groups"] = {"dev"};
  std::string token = k.Token(claims);
  auto result = Verify(token, JwksOf({k.Jwk()}), {kIssuer, {"svc"}});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->issuer, kIssuer);
  EXPECT_EQ(result->subject, "alice");
  EXPECT_EQ(result->principal, "https://idp.example.com/alice");
  EXPECT_THAT(result->audiences, ElementsAre("a", "https://svc/"));
  EXPECT_EQ(result->presenter, "web");
  EXPECT_EQ(result->claims, claims);
  EXPECT_EQ(result->payload_segment,
            token.substr(token.find('.') + 1, token.rfind('.') - token.find('.') - 1));
}

TEST_F(VerifierTest, NoPrincipalWithoutSub) {
  const TestKey& k = Key("ES256");
  nlohmann::json claims = Claims();
  claims.erase("sub");
  auto result = Verify(k.Token(claims), JwksOf({k.Jwk()}));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->principal, "");
  claims["sub"] = "";
  result = Verify(k.Token(claims), JwksOf({k.Jwk()}));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->principal, "");
}

TEST_F(VerifierTest, TokenWithoutKidTriesEveryKey) {
  const TestKey& k = Key("RS256", "second");
  nlohmann::json header = {{"alg", "RS256"}};
  std::string token = k.Token(header, Claims());
  EXPECT_TRUE(Verify(token, JwksOf({Key("RS256", "first").Jwk(), k.Jwk()})).ok());
}

TEST_F(VerifierTest, KeyWithoutKidMatchesAnyTokenKid) {
  const TestKey& k = Key("ES384", "whatever");
  nlohmann::json jwk = k.Jwk();
  jwk.erase("kid");
  EXPECT_TRUE(Verify(k.Token(Claims()), JwksOf({jwk})).ok());
}

}  // namespace
}  // namespace zm::jwt
