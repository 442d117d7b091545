#include "common/jwt/claims.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace zm::jwt {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(ClaimPathTest, Parses) {
  EXPECT_THAT(*ParseClaimPath("[groups]"), ElementsAre("groups"));
  EXPECT_THAT(*ParseClaimPath("[a][b][c]"), ElementsAre("a", "b", "c"));
  EXPECT_THAT(*ParseClaimPath("[example.com/role]"), ElementsAre("example.com/role"));
}

TEST(ClaimPathTest, RejectsMalformed) {
  for (const char* bad : {"", "a", "[a", "[]", "[a]b", "[a][", "a[b]", "[a[b]]", "[a]]"}) {
    EXPECT_FALSE(ParseClaimPath(bad).ok()) << bad;
  }
}

class ClaimValuesTest : public ::testing::Test {
 protected:
  nlohmann::json claims_ = nlohmann::json::parse(R"({
    "scope": "read write  admin",
    "permission": "p1 p2",
    "roles": "r1 r2",
    "name": "Alice Liddell",
    "groups": ["g1", 2, "g 3", null],
    "empty": [],
    "n": 1, "b": true, "z": null,
    "example.com/role": "dot",
    "org": {"team": "core", "scope": "x y", "sub": {"deep": ["d"]}}
  })");
};

TEST_F(ClaimValuesTest, ScopeAndPermissionAreAlwaysSplit) {
  EXPECT_THAT(*ClaimValues(claims_, {"scope"}), ElementsAre("read", "write", "admin"));
  EXPECT_THAT(*ClaimValues(claims_, {"permission"}), ElementsAre("p1", "p2"));
}

TEST_F(ClaimValuesTest, ConfiguredClaimsAreSplitOthersAreNot) {
  EXPECT_THAT(*ClaimValues(claims_, {"roles"}), ElementsAre("r1 r2"));
  EXPECT_THAT(*ClaimValues(claims_, {"roles"}, {"roles"}), ElementsAre("r1", "r2"));
  EXPECT_THAT(*ClaimValues(claims_, {"name"}), ElementsAre("Alice Liddell"));
}

TEST_F(ClaimValuesTest, NestedClaimsAreNotSplit) {
  EXPECT_THAT(*ClaimValues(claims_, {"org", "team"}), ElementsAre("core"));
  EXPECT_THAT(*ClaimValues(claims_, {"org", "scope"}), ElementsAre("x y"));
  EXPECT_THAT(*ClaimValues(claims_, {"org", "sub", "deep"}), ElementsAre("d"));
}

TEST_F(ClaimValuesTest, ListsYieldTheirStrings) {
  EXPECT_THAT(*ClaimValues(claims_, {"groups"}), ElementsAre("g1", "g 3"));
  EXPECT_THAT(*ClaimValues(claims_, {"empty"}), IsEmpty());
}

TEST_F(ClaimValuesTest, AbsentForMissingAndNonStrings) {
  for (const std::vector<std::string>& path : std::vector<std::vector<std::string>>{
           {"missing"}, {"n"}, {"b"}, {"z"}, {"org"}, {"org", "missing"}, {"name", "x"}, {}}) {
    EXPECT_EQ(ClaimValues(claims_, path), std::nullopt) << ::testing::PrintToString(path);
  }
  EXPECT_THAT(*ClaimValues(claims_, {"example.com/role"}), ElementsAre("dot"));
}

TEST(ClaimHeaderValueTest, NestedWithDots) {
  auto claims = nlohmann::json::parse(R"({"a":{"b":{"c":7}},"a.b":"literal"})");
  EXPECT_EQ(ClaimHeaderValue(claims, "a.b.c"), "7");
  EXPECT_EQ(ClaimHeaderValue(claims, "a.b"), std::nullopt);  // an object
  EXPECT_EQ(ClaimHeaderValue(claims, "a.x"), std::nullopt);
}

TEST(ClaimHeaderValueTest, NumbersBooleansAndUnsafeStrings) {
  auto claims = nlohmann::json::parse(
      R"({"i":-3,"f":2.0,"g":0.25,"h":1e300,"t":true,"tab":"a\tb","nul":"a\u0000b","del":"a\u007fb"})");
  EXPECT_EQ(ClaimHeaderValue(claims, "i"), "-3");
  EXPECT_EQ(ClaimHeaderValue(claims, "f"), "2");
  EXPECT_EQ(ClaimHeaderValue(claims, "g"), "0.25");
  EXPECT_EQ(ClaimHeaderValue(claims, "h"), "1e+300");
  EXPECT_EQ(ClaimHeaderValue(claims, "t"), "true");
  EXPECT_EQ(ClaimHeaderValue(claims, "tab"), "a\tb");
  EXPECT_EQ(ClaimHeaderValue(claims, "nul"), std::nullopt);
  EXPECT_EQ(ClaimHeaderValue(claims, "del"), std::nullopt);
}

}  // namespace
}  // namespace zm::jwt
