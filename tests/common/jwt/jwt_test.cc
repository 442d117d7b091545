#include "common/jwt/jwt.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "common/jwt/base64url.h"

namespace zm::jwt {
namespace {

using ::testing::ElementsAre;

constexpr char kHeader[] = R"({"alg":"RS256","typ":"JWT"})";
constexpr char kPayload[] = R"({"iss":"https://idp","sub":"alice"})";

// A token from raw JSON texts, with a placeholder signature (parsing never checks it).
std::string Raw(std::string_view header, std::string_view payload,
                std::string_view signature = "sig") {
  return Base64UrlEncode(header) + "." + Base64UrlEncode(payload) + "." +
         Base64UrlEncode(signature);
}

struct Case {
  const char* name;
  std::string token;
  JwtFailure failure;
};

class JwtParseRejects : public ::testing::TestWithParam<Case> {};

TEST_P(JwtParseRejects, Token) {
  auto jwt = Jwt::Parse(GetParam().token);
  ASSERT_FALSE(jwt.ok());
  EXPECT_EQ(JwtFailureOf(jwt.status()), GetParam().failure) << jwt.status();
  EXPECT_EQ(std::string(jwt.status().message()), JwtFailureText(GetParam().failure));
  EXPECT_EQ(JwtHttpStatus(jwt.status()), 401);
}

std::string H() { return Base64UrlEncode(kHeader); }
std::string P() { return Base64UrlEncode(kPayload); }

INSTANTIATE_TEST_SUITE_P(
    Shape, JwtParseRejects,
    ::testing::Values(
        Case{"Empty", "", JwtFailure::kBadFormat}, Case{"OnePart", H(), JwtFailure::kBadFormat},
        Case{"TwoParts", H() + "." + P(), JwtFailure::kBadFormat},
        Case{"FourParts", H() + "." + P() + ".c2ln.c2ln", JwtFailure::kBadFormat},
        Case{"EmptyHeader", "." + P() + ".c2ln", JwtFailure::kBadFormat},
        Case{"EmptyPayload", H() + "..c2ln", JwtFailure::kBadFormat},
        Case{"EmptySignature", H() + "." + P() + ".", JwtFailure::kBadFormat},
        Case{"OnlyDots", "..", JwtFailure::kBadFormat},
        Case{"PaddedHeader", Base64UrlEncode(R"({"alg":"RS256"})") + "=." + P() + ".c2ln",
             JwtFailure::kHeaderBadBase64},
        Case{"PaddedPayload", H() + "." + Base64UrlEncode(R"({"a":1})") + "=.c2ln",
             JwtFailure::kPayloadBadBase64},
        Case{"PaddedSignature", H() + "." + P() + ".c2lnbg==", JwtFailure::kSignatureBadBase64},
        Case{"StandardAlphabetInSignature", H() + "." + P() + ".ab+/",
             JwtFailure::kSignatureBadBase64},
        Case{"BadCharInHeader", "ey!." + P() + ".c2ln", JwtFailure::kHeaderBadBase64},
        Case{"SpaceInPayload", H() + ".ey J9.c2ln", JwtFailure::kPayloadBadBase64},
        Case{"TooLarge", H() + "." + std::string(kMaxJwtBytes, 'a') + ".c2ln",
             JwtFailure::kTooLarge}),
    [](const auto& info) { return info.param.name; });

INSTANTIATE_TEST_SUITE_P(
    Header, JwtParseRejects,
    ::testing::Values(
        Case{"NotJson", Raw("not json", kPayload), JwtFailure::kHeaderBadJson},
        Case{"JsonArray", Raw(R"(["alg","RS256"])", kPayload), JwtFailure::kHeaderBadJson},
        Case{"JsonString", Raw(R"("RS256")", kPayload), JwtFailure::kHeaderBadJson},
        Case{"DuplicateAlg", Raw(R"({"alg":"none","alg":"RS256"})", kPayload),
             JwtFailure::kHeaderBadJson},
        Case{"NoAlg", Raw(R"({"typ":"JWT"})", kPayload), JwtFailure::kHeaderBadAlg},
        Case{"AlgNumber", Raw(R"({"alg":256})", kPayload), JwtFailure::kHeaderBadAlg},
        Case{"AlgNull", Raw(R"({"alg":null})", kPayload), JwtFailure::kHeaderBadAlg},
        Case{"AlgNone", Raw(R"({"alg":"none"})", kPayload), JwtFailure::kHeaderAlgRefused},
        Case{"AlgNoneCapitalised", Raw(R"({"alg":"None"})", kPayload),
             JwtFailure::kHeaderAlgRefused},
        Case{"AlgLowerCase", Raw(R"({"alg":"rs256"})", kPayload),
             JwtFailure::kHeaderAlgRefused},
        Case{"AlgUnknown", Raw(R"({"alg":"ES256K"})", kPayload),
             JwtFailure::kHeaderAlgRefused},
        Case{"AlgEmpty", Raw(R"({"alg":""})", kPayload), JwtFailure::kHeaderAlgRefused},
        Case{"KidNumber", Raw(R"({"alg":"RS256","kid":7})", kPayload), JwtFailure::kHeaderBadKid},
        Case{"Crit", Raw(R"({"alg":"RS256","crit":["b64"],"b64":false})", kPayload),
             JwtFailure::kHeaderCritUnsupported}),
    [](const auto& info) { return info.param.name; });

INSTANTIATE_TEST_SUITE_P(
    Payload, JwtParseRejects,
    ::testing::Values(
        Case{"NotJson", Raw(kHeader, "{iss:1}"), JwtFailure::kPayloadBadJson},
        Case{"JsonArray", Raw(kHeader, "[1,2]"), JwtFailure::kPayloadBadJson},
        Case{"JsonNumber", Raw(kHeader, "12"), JwtFailure::kPayloadBadJson},
        Case{"DuplicateSub", Raw(kHeader, R"({"sub":"a","sub":"b"})"), JwtFailure::kPayloadBadJson},
        Case{"TooDeep", Raw(kHeader, "{\"a\":" + std::string(40, '[') + std::string(40, ']') + "}"),
             JwtFailure::kPayloadBadJson},
        Case{"IssNumber", Raw(kHeader, R"({"iss":1})"), JwtFailure::kIssNotString},
        Case{"SubObject", Raw(kHeader, R"({"sub":{}})"), JwtFailure::kSubNotString},
        Case{"JtiNumber", Raw(kHeader, R"({"jti":5})"), JwtFailure::kJtiNotString},
        Case{"ExpString", Raw(kHeader, R"({"exp":"1800000000"})"), JwtFailure::kExpNotInteger},
        Case{"ExpFloat", Raw(kHeader, R"({"exp":1800000000.5})"), JwtFailure::kExpNotInteger},
        Case{"ExpExponent", Raw(kHeader, R"({"exp":1.8e9})"), JwtFailure::kExpNotInteger},
        Case{"ExpHuge", Raw(kHeader, R"({"exp":123456789012345678901234567890})"),
             JwtFailure::kExpNotInteger},
        Case{"ExpAboveInt64", Raw(kHeader, R"({"exp":9223372036854775808})"),
             JwtFailure::kExpOutOfRange},
        Case{"ExpNegative", Raw(kHeader, R"({"exp":-1})"), JwtFailure::kExpOutOfRange},
        Case{"ExpBool", Raw(kHeader, R"({"exp":true})"), JwtFailure::kExpNotInteger},
        Case{"NbfString", Raw(kHeader, R"({"nbf":"0"})"), JwtFailure::kNbfNotInteger},
        Case{"NbfNegative", Raw(kHeader, R"({"nbf":-5})"), JwtFailure::kNbfOutOfRange},
        Case{"IatNull", Raw(kHeader, R"({"iat":null})"), JwtFailure::kIatNotInteger},
        Case{"AudNumber", Raw(kHeader, R"({"aud":42})"), JwtFailure::kAudNotStringOrList},
        Case{"AudListWithNumber", Raw(kHeader, R"({"aud":["a",1]})"),
             JwtFailure::kAudNotStringOrList},
        Case{"AudObject", Raw(kHeader, R"({"aud":{"a":"b"}})"), JwtFailure::kAudNotStringOrList}),
    [](const auto& info) { return info.param.name; });

TEST(JwtParseTest, HeaderIsCheckedBeforePayload) {
  auto jwt = Jwt::Parse(Raw(R"({"alg":"none"})", "not json"));
  EXPECT_EQ(JwtFailureOf(jwt.status()), JwtFailure::kHeaderAlgRefused);
}

TEST(JwtParseTest, ReadsRegisteredClaims) {
  std::string payload =
      R"({"iss":"https://idp","sub":"alice","jti":"j1","iat":1700000000,"nbf":1700000001,)"
      R"("exp":9223372036854775807,"aud":["a","b"],"azp":"cli","extra":{"x":[1,2]}})";
  std::string token = Raw(R"({"alg":"ES384","kid":"k1","typ":"JWT"})", payload, "\x01\x02");
  auto jwt = Jwt::Parse(token);
  ASSERT_TRUE(jwt.ok()) << jwt.status();
  EXPECT_EQ(jwt->alg, JwtAlg::kEs384);
  EXPECT_EQ(jwt->kid, "k1");
  EXPECT_EQ(jwt->issuer, "https://idp");
  EXPECT_EQ(jwt->subject, "alice");
  EXPECT_EQ(jwt->jti, "j1");
  EXPECT_EQ(jwt->iat, 1700000000);
  EXPECT_EQ(jwt->nbf, 1700000001);
  EXPECT_EQ(jwt->exp, INT64_MAX);
  EXPECT_THAT(jwt->audiences, ElementsAre("a", "b"));
  EXPECT_EQ(jwt->presenter, "cli");
  EXPECT_EQ(jwt->payload["extra"]["x"][1], 2);
  EXPECT_EQ(jwt->signature, "\x01\x02");
  EXPECT_EQ(jwt->payload_segment, Base64UrlEncode(payload));
  EXPECT_EQ(jwt->SigningInput(), token.substr(0, token.rfind('.')));
}

TEST(JwtParseTest, OptionalClaimsMayBeAbsent) {
  auto jwt = Jwt::Parse(Raw(R"({"alg":"EdDSA"})", "{}"));
  ASSERT_TRUE(jwt.ok()) << jwt.status();
  EXPECT_EQ(jwt->alg, JwtAlg::kEdDsa);
  EXPECT_FALSE(jwt->kid.has_value());
  EXPECT_FALSE(jwt->exp.has_value());
  EXPECT_FALSE(jwt->nbf.has_value());
  EXPECT_TRUE(jwt->issuer.empty());
  EXPECT_TRUE(jwt->audiences.empty());
}

TEST(JwtParseTest, AudienceMayBeAString) {
  auto jwt = Jwt::Parse(Raw(kHeader, R"({"aud":"svc"})"));
  ASSERT_TRUE(jwt.ok());
  EXPECT_THAT(jwt->audiences, ElementsAre("svc"));
}

TEST(JwtParseTest, AcceptsEverySupportedAlgAndNothingElse) {
  for (const char* alg : {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                          "ES512", "HS256", "HS384", "HS512", "EdDSA"}) {
    auto parsed = JwtAlgFromName(alg);
    ASSERT_TRUE(parsed.has_value()) << alg;
    EXPECT_EQ(JwtAlgName(*parsed), alg);
  }
  for (const char* alg : {"none", "NONE", "HS1", "RS1", "EdDSA ", "Ed25519", "ES256K", "PS"}) {
    EXPECT_FALSE(JwtAlgFromName(alg).has_value()) << alg;
  }
}

TEST(JwtFailureTest, AudienceIs403EverythingElse401) {
  for (int f = 0; f <= static_cast<int>(JwtFailure::kJwksUnavailable); ++f) {
    auto failure = static_cast<JwtFailure>(f);
    absl::Status s = JwtError(failure);
    EXPECT_EQ(JwtFailureOf(s), failure);
    EXPECT_EQ(std::string(s.message()), JwtFailureText(failure));
    EXPECT_EQ(JwtHttpStatus(s), failure == JwtFailure::kAudienceNotAllowed ? 403 : 401);
  }
  EXPECT_EQ(JwtFailureOf(absl::OkStatus()), std::nullopt);
  EXPECT_EQ(JwtFailureOf(absl::UnauthenticatedError("Jwt is expired")), std::nullopt);
}

TEST(JwtFailureTest, TextsAreJwtVerifyLibs) {
  EXPECT_EQ(JwtFailureText(JwtFailure::kBadFormat),
            "Jwt is not in the form of Header.Payload.Signature");
  EXPECT_EQ(JwtFailureText(JwtFailure::kHeaderAlgRefused),
            "Jwt header [alg] field value is invalid");
  EXPECT_EQ(JwtFailureText(JwtFailure::kExpired), "Jwt is expired");
  EXPECT_EQ(JwtFailureText(JwtFailure::kNotYetValid), "Jwt not yet valid");
  EXPECT_EQ(JwtFailureText(JwtFailure::kUnknownIssuer), "Jwt issuer is not configured");
  EXPECT_EQ(JwtFailureText(JwtFailure::kVerificationFailed), "Jwt verification fails");
  EXPECT_EQ(JwtFailureText(JwtFailure::kKidAlgMismatch),
            "Jwks doesn't have key to match kid or alg from Jwt");
  EXPECT_EQ(JwtFailureText(JwtFailure::kAudienceNotAllowed), "Audiences in Jwt are not allowed");
}

}  // namespace
}  // namespace zm::jwt
