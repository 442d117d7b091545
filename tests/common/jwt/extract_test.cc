#include "common/jwt/extract.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace zm::jwt {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr char kToken[] = "eyJh.eyJi.c2ln";

RequestView Request(std::string path, std::vector<HeaderEntry> headers = {}) {
  return RequestView{"GET", std::move(path), std::move(headers)};
}

std::vector<std::string> Tokens(const RequestView& r, const Location& l) {
  std::vector<std::string> out;
  for (auto& t : ExtractTokens(r, l)) {
    EXPECT_EQ(t.location, l);
    out.push_back(t.token);
  }
  return out;
}

TEST(ExtractTest, DefaultsAreAuthorizationBearerAndAccessToken) {
  EXPECT_THAT(EffectiveLocations({}), ElementsAre(Location::Header("authorization", "Bearer "),
                                                  Location::Param("access_token")));
}

TEST(ExtractTest, ExplicitLocationsReplaceTheDefaults) {
  TokenLocations only_cookie{.cookies = {"session"}};
  EXPECT_THAT(EffectiveLocations(only_cookie), ElementsAre(Location::Cookie("session")));
  TokenLocations mixed{.headers = {{"X-Jwt", ""}, {"x-jwt", ""}}, .params = {"t", "t"}};
  EXPECT_THAT(EffectiveLocations(mixed),
              ElementsAre(Location::Header("x-jwt", ""), Location::Param("t")));
}

TEST(ExtractTest, BearerSchemeIsCaseInsensitive) {
  Location l = Location::Header("Authorization", "Bearer ");
  for (const char* scheme : {"Bearer ", "bearer ", "BEARER ", "bEaReR "}) {
    EXPECT_THAT(Tokens(Request("/", {{"authorization", scheme + std::string(kToken)}}), l),
                ElementsAre(kToken))
        << scheme;
  }
  // A configured "bearer " is the same location.
  EXPECT_EQ(Location::Header("AUTHORIZATION", "bearer"), l);
}

TEST(ExtractTest, OtherPrefixesAreCaseSensitive) {
  Location l = Location::Header("x-auth", "Token ");
  EXPECT_THAT(Tokens(Request("/", {{"X-Auth", std::string("Token ") + kToken}}), l),
              ElementsAre(kToken));
  EXPECT_THAT(Tokens(Request("/", {{"X-Auth", std::string("token ") + kToken}}), l), IsEmpty());
}

TEST(ExtractTest, HeaderWithoutThePrefixYieldsNoToken) {
  Location l = Location::Header("authorization", "Bearer ");
  EXPECT_THAT(Tokens(Request("/", {{"Authorization", "Basic YWxpY2U6cHc="}}), l), IsEmpty());
  EXPECT_THAT(Tokens(Request("/", {{"Authorization", kToken}}), l), IsEmpty());
  EXPECT_THAT(Tokens(Request("/", {{"Authorization", "Bearer "}}), l), IsEmpty());
  EXPECT_THAT(Tokens(Request("/", {{"Authorization", "Bearer    "}}), l), IsEmpty());
}

TEST(ExtractTest, TokenIsTheRunOfTokenCharactersAfterThePrefix) {
  Location l = Location::Header("authorization", "Bearer ");
  for (std::string value :
       {std::string("Bearer   ") + kToken, std::string("Bearer \"") + kToken + "\"",
        std::string("Bearer ") + kToken + ", other", std::string("x Bearer ") + kToken}) {
    EXPECT_THAT(Tokens(Request("/", {{"authorization", value}}), l), ElementsAre(kToken)) << value;
  }
}

TEST(ExtractTest, HeaderNamesAreCaseInsensitive) {
  Location l = Location::Header("X-Jwt-Assertion", "");
  EXPECT_THAT(Tokens(Request("/", {{"x-jwt-assertion", kToken}}), l), ElementsAre(kToken));
}

TEST(ExtractTest, WithoutPrefixTheWholeValueIsTheToken) {
  Location l = Location::Header("x-jwt", "");
  EXPECT_THAT(Tokens(Request("/", {{"x-jwt", "not a token at all"}}), l),
              ElementsAre("not a token at all"));
}

TEST(ExtractTest, EveryHeaderEntryIsItsOwnToken) {
  Location l = Location::Header("authorization", "Bearer ");
  RequestView r = Request(
      "/",
      {{"Authorization", "Bearer a.b.c"}, {"Accept", "*/*"}, {"authorization", "Bearer d.e.f"}});
  EXPECT_THAT(Tokens(r, l), ElementsAre("a.b.c", "d.e.f"));
}

TEST(ExtractTest, QueryParameterIsDecodedAndTheFirstWins) {
  Location l = Location::Param("access_token");
  EXPECT_THAT(Tokens(Request("/p?a=1&access_token=eyJh.eyJi%2Ec2ln&access_token=second"), l),
              ElementsAre(kToken));
  EXPECT_THAT(Tokens(Request("/p?access%5Ftoken=x.y.z"), l), ElementsAre("x.y.z"));
  EXPECT_THAT(Tokens(Request("/p?xaccess_token=x.y.z&access_tokens=1"), l), IsEmpty());
  EXPECT_THAT(Tokens(Request("/p?access_token=&access_token=x.y.z"), l), IsEmpty());
  EXPECT_THAT(Tokens(Request("/p?access_token"), l), IsEmpty());
  EXPECT_THAT(Tokens(Request("/p"), l), IsEmpty());
  EXPECT_THAT(Tokens(Request("/p#access_token=x.y.z"), l), IsEmpty());
  EXPECT_THAT(Tokens(Request("/p?q=1#access_token=x.y.z"), l), IsEmpty());
}

TEST(ExtractTest, CookiesAreParsedFromEveryCookieHeader) {
  Location l = Location::Cookie("session");
  EXPECT_THAT(Tokens(Request("/", {{"Cookie", "a=1; session=x.y.z; b=2"}}), l),
              ElementsAre("x.y.z"));
  EXPECT_THAT(Tokens(Request("/", {{"cookie", "a=1"}, {"Cookie", "session=\"x.y.z\""}}), l),
              ElementsAre("x.y.z"));
  EXPECT_THAT(Tokens(Request("/", {{"Cookie", "session=first;session=second"}}), l),
              ElementsAre("first"));
  EXPECT_THAT(Tokens(Request("/", {{"Cookie", "xsession=1; sessionx=2"}}), l), IsEmpty());
  EXPECT_THAT(Tokens(Request("/", {{"Set-Cookie", "session=x.y.z"}}), l), IsEmpty());
}

TEST(ExtractTest, RemovingAHeaderLocationRemovesEveryEntry) {
  RequestView r = Request("/", {{"Authorization", "Bearer a"}, {"x", "1"}, {"AUTHORIZATION", "b"}});
  RemoveTokenLocation(r, Location::Header("authorization", "Bearer "));
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].name, "x");
}

TEST(ExtractTest, RemovingAQueryParameterKeepsTheRestVerbatim) {
  struct Case {
    const char* before;
    const char* after;
  };
  for (const auto& c :
       {Case{"/p?access_token=t", "/p"}, Case{"/p?access_token=t&a=%20b", "/p?a=%20b"},
        Case{"/p?a=1&access_token=t&b=2", "/p?a=1&b=2"},
        Case{"/p?a=1&access_token=t&access%5Ftoken=u", "/p?a=1"},
        Case{"/p?a=1&access_token=t#frag", "/p?a=1#frag"},
        Case{"/p?access_token=t#frag", "/p#frag"}, Case{"/p?a&&b", "/p?a&&b"}, Case{"/p", "/p"}}) {
    RequestView r = Request(c.before);
    RemoveTokenLocation(r, Location::Param("access_token"));
    EXPECT_EQ(r.path, c.after) << c.before;
  }
}

TEST(ExtractTest, CookiesAreLeftAlone) {
  RequestView r = Request("/", {{"Cookie", "session=x.y.z"}});
  RemoveTokenLocation(r, Location::Cookie("session"));
  EXPECT_THAT(r.HeaderValues("cookie"), ElementsAre("session=x.y.z"));
}

TEST(ExtractTest, UrlDecodeKeepsMalformedEscapes) {
  EXPECT_EQ(UrlDecode("a%2Eb%2e%41"), "a.b.A");
  EXPECT_EQ(UrlDecode("%"), "%");
  EXPECT_EQ(UrlDecode("%4"), "%4");
  EXPECT_EQ(UrlDecode("%zz%4g"), "%zz%4g");
  EXPECT_EQ(UrlDecode("a+b"), "a+b");
  EXPECT_EQ(UrlDecode("%00"), std::string(1, '\0'));
}

TEST(RequestViewTest, SetHeaderReplacesEveryEntry) {
  RequestView r = Request("/", {{"X-A", "1"}, {"x-a", "2"}});
  r.SetHeader("x-a", "3");
  EXPECT_THAT(r.HeaderValues("X-A"), ElementsAre("3"));
  EXPECT_TRUE(r.HasHeader("x-A"));
  r.RemoveHeader("X-a");
  EXPECT_FALSE(r.HasHeader("x-a"));
}

}  // namespace
}  // namespace zm::jwt
