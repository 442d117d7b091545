#include "common/jwt/authenticator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/common/jwt/jwt_test_util.h"

namespace zm::jwt {
namespace {

using jwttest::Key;
using jwttest::TestKey;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kIssA[] = "https://a.example.com";
constexpr char kIssB[] = "https://b.example.com";

class AuthenticatorTest : public ::testing::Test {
 protected:
  int64_t Now() const { return jwttest::Seconds(clock_); }
  nlohmann::json Claims(const char* iss, const char* sub = "alice") const {
    return {{"iss", iss}, {"sub", sub}, {"exp", Now() + 600}};
  }
  static std::shared_ptr<StaticJwksSource> Source(std::vector<nlohmann::json> keys) {
    auto source = StaticJwksSource::FromJson(jwttest::JwksJson(keys));
    EXPECT_TRUE(source->Current().ok()) << source->Current().status();
    return source;
  }
  JwtRule Rule(const char* iss, const TestKey& key) const {
    JwtRule r;
    r.issuer = iss;
    r.jwks = Source({key.Jwk()});
    return r;
  }
  Authenticator Make(std::vector<JwtRule> rules) const {
    auto a = Authenticator::Create(std::move(rules), clock_);
    EXPECT_TRUE(a.ok()) << a.status();
    return *std::move(a);
  }
  static RequestView Get(std::string path, std::vector<HeaderEntry> headers = {}) {
    return RequestView{"GET", std::move(path), std::move(headers)};
  }
  static HeaderEntry Bearer(const std::string& token) {
    return {"Authorization", "Bearer " + token};
  }
  // Issuer A (RS256 key) at the default locations, issuer B (ES256 key) in header x-b-token.
  Authenticator TwoIssuers() const {
    JwtRule b_rule = Rule(kIssB, Key("ES256"));
    b_rule.locations = {.headers = {{"x-b-token", ""}}};
    return Make({Rule(kIssA, Key("RS256")), b_rule});
  }
  // GET / with `token` as its Bearer token.
  static AuthnResult RunBearer(const Authenticator& a, const std::string& token) {
    RequestView r = Get("/", {Bearer(token)});
    return a.Authenticate(r);
  }
  static void ExpectFail(const AuthnResult& r, JwtFailure failure) {
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.failure, failure) << r.reason << " / " << r.detail;
    EXPECT_EQ(r.reason, JwtFailureText(failure));
    EXPECT_EQ(r.http_status, failure == JwtFailure::kAudienceNotAllowed ? 403 : 401);
    EXPECT_FALSE(r.identity.has_value());
  }

  FakeClock clock_;
};

// ---- Hostile requests -----------------------------------------------------------------------

TEST_F(AuthenticatorTest, InvalidTokenFailsWith401AndTheReason) {
  Authenticator a = Make({Rule(kIssA, Key("RS256"))});
  ExpectFail(RunBearer(a, "not-a-jwt"), JwtFailure::kBadFormat);
}

TEST_F(AuthenticatorTest, ExpiredTokenFails) {
  Authenticator a = Make({Rule(kIssA, Key("RS256"))});
  nlohmann::json claims = Claims(kIssA);
  claims["exp"] = Now() - 61;
  ExpectFail(RunBearer(a, Key("RS256").Token(claims)), JwtFailure::kExpired);
}

TEST_F(AuthenticatorTest, AudienceMismatchFailsWith403) {
  JwtRule rule = Rule(kIssA, Key("RS256"));
  rule.audiences = {"svc"};
  Authenticator a = Make({rule});
  nlohmann::json claims = Claims(kIssA);
  claims["aud"] = "other";
  ExpectFail(RunBearer(a, Key("RS256").Token(claims)), JwtFailure::kAudienceNotAllowed);
}

TEST_F(AuthenticatorTest, TwoTokensOneBadFails) {
  JwtRule rule = Rule(kIssA, Key("RS256"));
  rule.locations = {.headers = {{"Authorization", "Bearer "}}, .params = {"access_token"}};
  Authenticator a = Make({rule});
  std::string good = Key("RS256").Token(Claims(kIssA));
  std::string bad = Key("RS256", "other-key").Token(Claims(kIssA));
  RequestView r = Get("/?access_token=" + bad, {Bearer(good)});
  ExpectFail(a.Authenticate(r), JwtFailure::kVerificationFailed);
  RequestView r2 = Get("/", {Bearer(bad), Bearer(good)});
  ExpectFail(a.Authenticate(r2), JwtFailure::kVerificationFailed);
}

TEST_F(AuthenticatorTest, BadTokenAtAnotherRulesLocationFailsEvenWithAGoodOne) {
  Authenticator a = TwoIssuers();
  nlohmann::json expired = Claims(kIssB);
  expired["exp"] = Now() - 3600;
  RequestView r = Get(
      "/", {Bearer(Key("RS256").Token(Claims(kIssA))), {"x-b-token", Key("ES256").Token(expired)}});
  ExpectFail(a.Authenticate(r), JwtFailure::kExpired);
}

TEST_F(AuthenticatorTest, TokenAtALocationItsIssuerDidNotDeclareFails) {
  // Issuer B reads only x-b-token; a valid B token in Authorization (read only by A's rule)
  // names an issuer no rule reading Authorization is configured for.
  Authenticator a = TwoIssuers();
  AuthnResult result = RunBearer(a, Key("ES256").Token(Claims(kIssB)));
  ExpectFail(result, JwtFailure::kUnknownIssuer);
  EXPECT_THAT(result.detail, HasSubstr("header authorization"));
  // In its own location the same token passes.
  RequestView ok = Get("/", {{"x-b-token", Key("ES256").Token(Claims(kIssB))}});
  EXPECT_TRUE(a.Authenticate(ok).ok);
}

TEST_F(AuthenticatorTest, OutputHeadersFromTheClientAreRemoved) {
  JwtRule rule = Rule(kIssA, Key("RS256"));
  rule.output_payload_to_header = "x-jwt-payload";
  rule.output_claim_to_headers = {{"x-jwt-sub", "sub"}, {"x-jwt-missing", "nope"}};
  Authenticator a = Make({rule});
  std::vector<HeaderEntry> spoofed = {{"X-Jwt-Payload", "eyJzdWIiOiJhZG1pbiJ9"},
                                      {"x-jwt-sub", "admin"},
                                      {"X-JWT-MISSING", "admin"},
                                      {"x-jwt-sub", "root"}};
  // Without a token: removed, request passes unauthenticated.
  RequestView r = Get("/", spoofed);
  AuthnResult result = a.Authenticate(r);
  EXPECT_TRUE(result.ok);
  EXPECT_FALSE(r.HasHeader("x-jwt-payload"));
  EXPECT_FALSE(r.HasHeader("x-jwt-sub"));
  EXPECT_FALSE(r.HasHeader("x-jwt-missing"));
  // With a token: replaced by the verified values, the unset one stays absent.
  std::vector<HeaderEntry> with_token = spoofed;
  with_token.push_back(Bearer(Key("RS256").Token(Claims(kIssA))));
  RequestView r2 = Get("/", with_token);
  ASSERT_TRUE(a.Authenticate(r2).ok);
  EXPECT_THAT(r2.HeaderValues("x-jwt-sub"), ElementsAre("alice"));
  EXPECT_FALSE(r2.HasHeader("x-jwt-missing"));
  EXPECT_THAT(r2.HeaderValues("x-jwt-payload"), ElementsAre(::testing::Ne("eyJzdWIiOiJhZG1pbiJ9")));
  // And with an invalid token they are gone too.
  std::vector<HeaderEntry> bad = spoofed;
  bad.push_back(Bearer("a.b.c"));
  RequestView r3 = Get("/", bad);
  EXPECT_FALSE(a.Authenticate(r3).ok);
  EXPECT_FALSE(r3.HasHeader("x-jwt-sub"));
}

TEST_F(AuthenticatorTest, JwksUnavailableFailsTokensButMissingTokensPass) {
  JwtRule rule;
  rule.issuer = kIssA;
  rule.jwks = std::make_shared<StaticJwksSource>(
      absl::UnavailableError("GET https://a.example.com/jwks: timeout after 5s"));
  Authenticator a = Make({rule});
  AuthnResult result = RunBearer(a, Key("RS256").Token(Claims(kIssA)));
  ExpectFail(result, JwtFailure::kJwksUnavailable);
  EXPECT_THAT(result.detail, HasSubstr("timeout after 5s"));
  RequestView none = Get("/");
  AuthnResult pass = a.Authenticate(none);
  EXPECT_TRUE(pass.ok);
  EXPECT_FALSE(pass.identity.has_value());
}

TEST_F(AuthenticatorTest, UnparsableInlineJwksFailsTokens) {
  JwtRule rule;
  rule.issuer = kIssA;
  rule.jwks = StaticJwksSource::FromJson(R"({"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]})");
  Authenticator a = Make({rule});
  AuthnResult result = RunBearer(a, Key("RS256").Token(Claims(kIssA)));
  ExpectFail(result, JwtFailure::kJwksUnavailable);
  EXPECT_THAT(result.detail, HasSubstr("17-bit modulus"));
}

TEST_F(AuthenticatorTest, KeyRotation) {
  auto source = Source({Key("RS256", "old").Jwk()});
  JwtRule rule;
  rule.issuer = kIssA;
  rule.jwks = source;
  Authenticator a = Make({rule});
  std::string old_token = Key("RS256", "old").Token(Claims(kIssA));
  std::string new_token = Key("RS256", "new").Token(Claims(kIssA));
  auto run = [&](const std::string& t) { return RunBearer(a, t); };
  EXPECT_TRUE(run(old_token).ok);
  ExpectFail(run(new_token), JwtFailure::kKidAlgMismatch);
  // New key published next to the old one: both verify.
  source->SetJson(jwttest::JwksJson({Key("RS256", "old").Jwk(), Key("RS256", "new").Jwk()}));
  EXPECT_TRUE(run(old_token).ok);
  EXPECT_TRUE(run(new_token).ok);
  // Old key withdrawn: its tokens stop verifying.
  source->SetJson(jwttest::JwksJson({Key("RS256", "new").Jwk()}));
  ExpectFail(run(old_token), JwtFailure::kKidAlgMismatch);
  EXPECT_TRUE(run(new_token).ok);
}

TEST_F(AuthenticatorTest, CreateRejectsBadRules) {
  struct Case {
    std::function<void(JwtRule&)> edit;
    const char* message;
  };
  const Case kCases[] = {
      {[](JwtRule& r) { r.jwks = nullptr; }, "jwtRules[0].jwks: no JWKS source"},
      {[](JwtRule& r) { r.output_payload_to_header = "x payload"; },
       "jwtRules[0].outputPayloadToHeader: \"x payload\" is not a valid header name"},
      {[](JwtRule& r) {
         r.output_claim_to_headers = {{"x-a:", "sub"}};
       },
       "outputClaimToHeaders[0].header: \"x-a:\" is not a valid header name"},
      {[](JwtRule& r) {
         r.output_claim_to_headers = {{"x-a", "sub"}, {"X-A", "iss"}};
       },
       "outputClaimToHeaders[1].header: header \"X-A\" is written twice"},
      {[](JwtRule& r) {
         r.output_payload_to_header = "x-a";
         r.output_claim_to_headers = {{"x-a", "sub"}};
       },
       "written twice"},
      {[](JwtRule& r) {
         r.output_claim_to_headers = {{"x-a", ""}};
       },
       "outputClaimToHeaders[0].claim: empty"},
      {[](JwtRule& r) {
         r.locations.headers = {{"", "Bearer "}};
       },
       "fromHeaders[0].name: empty"},
      {[](JwtRule& r) { r.locations.params = {""}; }, "fromParams[0]: empty"},
      {[](JwtRule& r) { r.locations.cookies = {""}; }, "fromCookies[0]: empty"},
  };
  for (const auto& c : kCases) {
    JwtRule rule = Rule(kIssA, Key("RS256"));
    c.edit(rule);
    auto a = Authenticator::Create({rule}, clock_);
    ASSERT_FALSE(a.ok()) << c.message;
    EXPECT_THAT(a.status().message(), HasSubstr(c.message));
  }
  EXPECT_FALSE(Authenticator::Create(
                   std::vector<JwtRule>(kMaxJwtRules + 1, Rule(kIssA, Key("RS256"))), clock_)
                   .ok());
}

// ---- Passing requests -----------------------------------------------------------------------

TEST_F(AuthenticatorTest, NoTokenPassesUnauthenticated) {
  Authenticator a = Make({Rule(kIssA, Key("RS256"))});
  RequestView r = Get("/", {{"Authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l"}});
  AuthnResult result = a.Authenticate(r);
  EXPECT_TRUE(result.ok);
  EXPECT_EQ(result.http_status, 200);
  EXPECT_FALSE(result.identity.has_value());
  // A header without the prefix is not a token, and is not removed.
  EXPECT_TRUE(r.HasHeader("authorization"));
}

TEST_F(AuthenticatorTest, ValidTokenPassesWithItsIdentity) {
  Authenticator a = Make({Rule(kIssA, Key("RS256")), Rule(kIssB, Key("ES256"))});
  RequestView r = Get("/", {Bearer(Key("ES256").Token(Claims(kIssB, "bob")))});
  AuthnResult result = a.Authenticate(r);
  ASSERT_TRUE(result.ok) << result.reason << " " << result.detail;
  ASSERT_TRUE(result.identity.has_value());
  EXPECT_EQ(result.identity->jwt.principal, "https://b.example.com/bob");
  // forwardOriginalToken defaults to false: the header is gone.
  EXPECT_FALSE(r.HasHeader("authorization"));
}

TEST_F(AuthenticatorTest, LowercaseBearerIsAccepted) {
  Authenticator a = Make({Rule(kIssA, Key("RS256"))});
  RequestView r = Get("/", {{"authorization", "bearer " + Key("RS256").Token(Claims(kIssA))}});
  EXPECT_TRUE(a.Authenticate(r).identity.has_value());
}

TEST_F(AuthenticatorTest, TwoValidTokensPass) {
  JwtRule a_rule = Rule(kIssA, Key("RS256"));
  JwtRule b_rule = Rule(kIssB, Key("ES256"));
  b_rule.locations = {.cookies = {"b"}};
  Authenticator a = Make({a_rule, b_rule});
  RequestView r = Get("/", {Bearer(Key("RS256").Token(Claims(kIssA))),
                            {"Cookie", "b=" + Key("ES256").Token(Claims(kIssB))}});
  AuthnResult result = a.Authenticate(r);
  ASSERT_TRUE(result.ok) << result.reason;
  EXPECT_EQ(result.identity->jwt.issuer, kIssA);
  EXPECT_TRUE(r.HasHeader("cookie"));  // cookies are not stripped
}

TEST_F(AuthenticatorTest, SameIssuerDifferentAudiencesAreAlternatives) {
  JwtRule one = Rule(kIssA, Key("RS256"));
  one.audiences = {"svc-one"};
  JwtRule two = Rule(kIssA, Key("RS256"));
  two.audiences = {"svc-two"};
  Authenticator a = Make({one, two});
  for (const char* aud : {"svc-one", "svc-two"}) {
    nlohmann::json claims = Claims(kIssA);
    claims["aud"] = aud;
    EXPECT_TRUE(RunBearer(a, Key("RS256").Token(claims)).ok) << aud;
  }
  nlohmann::json claims = Claims(kIssA);
  claims["aud"] = "svc-three";
  ExpectFail(RunBearer(a, Key("RS256").Token(claims)), JwtFailure::kAudienceNotAllowed);
}

TEST_F(AuthenticatorTest, LastMatchingRulesFailureIsReported) {
  // Same issuer, two key sets: an audience failure under the first, a signature failure under
  // the second; the second (last) is reported.
  JwtRule one = Rule(kIssA, Key("RS256"));
  one.audiences = {"other"};
  JwtRule two = Rule(kIssA, Key("RS256", "unrelated"));
  Authenticator a = Make({one, two});
  ExpectFail(RunBearer(a, Key("RS256").Token(Claims(kIssA))), JwtFailure::kVerificationFailed);
}

TEST_F(AuthenticatorTest, RuleWithoutIssuerAcceptsAnyIssuer) {
  Authenticator a = Make({Rule("", Key("ES256"))});
  EXPECT_TRUE(RunBearer(a, Key("ES256").Token(Claims("https://whoever"))).ok);
}

TEST_F(AuthenticatorTest, QueryParameterTokenIsRemovedFromThePath) {
  Authenticator a = Make({Rule(kIssA, Key("RS256"))});
  RequestView r = Get("/p?x=1&access_token=" + Key("RS256").Token(Claims(kIssA)) + "&y=2");
  ASSERT_TRUE(a.Authenticate(r).ok);
  EXPECT_EQ(r.path, "/p?x=1&y=2");
}

TEST_F(AuthenticatorTest, ForwardOriginalTokenKeepsIt) {
  JwtRule rule = Rule(kIssA, Key("RS256"));
  rule.forward_original_token = true;
  Authenticator a = Make({rule});
  std::string token = Key("RS256").Token(Claims(kIssA));
  RequestView r = Get("/?access_token=" + token, {Bearer(token)});
  ASSERT_TRUE(a.Authenticate(r).ok);
  EXPECT_THAT(r.HeaderValues("authorization"), ElementsAre("Bearer " + token));
  EXPECT_EQ(r.path, "/?access_token=" + token);
}

TEST_F(AuthenticatorTest, OutputsPayloadVerbatimAndClaimsAsText) {
  JwtRule rule = Rule(kIssA, Key("ES256"));
  rule.output_payload_to_header = "x-jwt-payload";
  rule.output_claim_to_headers = {
      {"x-sub", "sub"},     {"x-int", "n"},        {"x-float-int", "f"},
      {"x-float", "g"},     {"x-true", "t"},       {"x-false", "u"},
      {"x-list", "groups"}, {"x-obj", "org"},      {"x-nested", "org.team.name"},
      {"x-crlf", "evil"},   {"x-null", "nothing"}, {"x-big", "big"}};
  Authenticator a = Make({rule});
  nlohmann::json claims = Claims(kIssA);
  claims["n"] = 42;
  claims["f"] = 3.0;
  claims["g"] = 1.5;
  claims["t"] = true;
  claims["u"] = false;
  claims["groups"] = {"a", "b"};
  claims["org"] = {{"team", {{"name", "core"}}}};
  claims["evil"] = "x\r\nx-admin: true";
  claims["nothing"] = nullptr;
  claims["big"] = 18446744073709551615u;
  std::string token = Key("ES256").Token(claims);
  RequestView r = Get("/", {Bearer(token)});
  ASSERT_TRUE(a.Authenticate(r).ok);
  EXPECT_THAT(
      r.HeaderValues("x-jwt-payload"),
      ElementsAre(token.substr(token.find('.') + 1, token.rfind('.') - token.find('.') - 1)));
  EXPECT_THAT(r.HeaderValues("x-sub"), ElementsAre("alice"));
  EXPECT_THAT(r.HeaderValues("x-int"), ElementsAre("42"));
  EXPECT_THAT(r.HeaderValues("x-float-int"), ElementsAre("3"));
  EXPECT_THAT(r.HeaderValues("x-float"), ElementsAre("1.5"));
  EXPECT_THAT(r.HeaderValues("x-true"), ElementsAre("true"));
  EXPECT_THAT(r.HeaderValues("x-false"), ElementsAre("false"));
  EXPECT_THAT(r.HeaderValues("x-nested"), ElementsAre("core"));
  EXPECT_THAT(r.HeaderValues("x-big"), ElementsAre("18446744073709551615"));
  EXPECT_THAT(r.HeaderValues("x-list"), IsEmpty());
  EXPECT_THAT(r.HeaderValues("x-obj"), IsEmpty());
  EXPECT_THAT(r.HeaderValues("x-crlf"), IsEmpty());
  EXPECT_THAT(r.HeaderValues("x-null"), IsEmpty());
}

TEST_F(AuthenticatorTest, IdentityExposesClaimsWithSpaceDelimitedSplitting) {
  JwtRule rule = Rule(kIssA, Key("RS256"));
  rule.space_delimited_claims = {"roles"};
  Authenticator a = Make({rule});
  nlohmann::json claims = Claims(kIssA);
  claims["scope"] = "read  write";
  claims["roles"] = "admin dev";
  claims["name"] = "Alice Liddell";
  RequestView r = Get("/", {Bearer(Key("RS256").Token(claims))});
  AuthnResult result = a.Authenticate(r);
  ASSERT_TRUE(result.identity.has_value());
  EXPECT_THAT(*result.identity->Claim("[scope]"), ElementsAre("read", "write"));
  EXPECT_THAT(*result.identity->Claim("[roles]"), ElementsAre("admin", "dev"));
  EXPECT_THAT(*result.identity->Claim("[name]"), ElementsAre("Alice Liddell"));
  EXPECT_EQ(result.identity->Claim("[absent]"), std::nullopt);
  EXPECT_EQ(result.identity->Claim("bad"), std::nullopt);
}

TEST_F(AuthenticatorTest, CorsPreflightSkipsJwtChecks) {
  JwtRule rule = Rule(kIssA, Key("RS256"));
  rule.output_claim_to_headers = {{"x-sub", "sub"}};
  Authenticator a = Make({rule});
  RequestView r{"OPTIONS",
                "/",
                {Bearer("garbage"),
                 {"Origin", "https://app"},
                 {"Access-Control-Request-Method", "POST"},
                 {"x-sub", "spoofed"}}};
  AuthnResult result = a.Authenticate(r);
  EXPECT_TRUE(result.ok);
  EXPECT_FALSE(r.HasHeader("x-sub"));
  // OPTIONS without the CORS headers is an ordinary request.
  RequestView plain{"OPTIONS", "/", {Bearer("garbage")}};
  EXPECT_FALSE(a.Authenticate(plain).ok);
}

TEST(WwwAuthenticateTest, NamesTheRealmWithoutQuery) {
  EXPECT_EQ(WwwAuthenticate("https", "api.example.com", "/v1/items?access_token=secret#x"),
            "Bearer realm=\"https://api.example.com/v1/items\", error=\"invalid_token\"");
  EXPECT_EQ(WwwAuthenticate("http", "h\"o\\st", "/a\r\nb"),
            "Bearer realm=\"http://h\\\"o\\\\st/ab\", error=\"invalid_token\"");
}

}  // namespace
}  // namespace zm::jwt

// ---- The signature cache (Envoy's jwt_cache) ------------------------------------------------

namespace zm::jwt {
namespace {

// A verified token is remembered, but only its signature: time is checked on every request.
TEST_F(AuthenticatorTest, ACachedTokenIsStillRejectedOnceExpired) {
  Authenticator a = Make({Rule(kIssA, Key("ES256"))});
  nlohmann::json claims = Claims(kIssA);
  claims["exp"] = Now() + 100;
  const std::string token = Key("ES256").Token(claims);
  EXPECT_TRUE(RunBearer(a, token).ok);
  EXPECT_TRUE(RunBearer(a, token).ok);  // from the cache
  clock_.Advance(std::chrono::seconds(161));
  ExpectFail(RunBearer(a, token), JwtFailure::kExpired);
}

// A rotated key set is a new Jwks object: a token verified under the old one is verified again
// and fails when its key is gone.
TEST_F(AuthenticatorTest, ACachedTokenFailsAfterItsKeyIsRotatedOut) {
  auto source = Source({Key("ES256", "old").Jwk()});
  JwtRule rule;
  rule.issuer = kIssA;
  rule.jwks = source;
  Authenticator a = Make({rule});
  const std::string token = Key("ES256", "old").Token(Claims(kIssA));
  EXPECT_TRUE(RunBearer(a, token).ok);
  EXPECT_TRUE(RunBearer(a, token).ok);
  source->SetJson(jwttest::JwksJson({Key("ES256", "new").Jwk()}));
  EXPECT_FALSE(RunBearer(a, token).ok);
}

// Forged tokens are never remembered: the same forgery fails every time.
TEST_F(AuthenticatorTest, AForgedTokenFailsEveryTime) {
  Authenticator a = Make({Rule(kIssA, Key("ES256"))});
  const std::string forged = Key("ES256", "attacker").Token(Claims(kIssA));
  for (int i = 0; i < 3; ++i) ExpectFail(RunBearer(a, forged), JwtFailure::kVerificationFailed);
}

TEST(SignatureCacheTest, MatchesOnlyTheSameTokenUnderTheSameKeySet) {
  SignatureCache cache(2);
  auto one = std::make_shared<const Jwks>();
  auto two = std::make_shared<const Jwks>();
  cache.Add(one, "a.b.c");
  EXPECT_TRUE(cache.Contains(one, "a.b.c"));
  EXPECT_FALSE(cache.Contains(two, "a.b.c"));
  EXPECT_FALSE(cache.Contains(one, "a.b.d"));
  cache.Add(one, "x.y.z");
  cache.Add(one, "p.q.r");  // full: dropped everything first
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_FALSE(cache.Contains(one, "a.b.c"));
  EXPECT_TRUE(cache.Contains(one, "p.q.r"));
}

}  // namespace
}  // namespace zm::jwt
