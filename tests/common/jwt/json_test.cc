#include "common/jwt/json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace zm::jwt {
namespace {

using ::testing::HasSubstr;

TEST(JsonTest, RejectsDuplicateTopLevelMember) {
  auto j = ParseJson(R"({"alg":"HS256","alg":"RS256"})");
  ASSERT_FALSE(j.ok());
  EXPECT_THAT(j.status().message(), HasSubstr("duplicate member name \"alg\""));
}

TEST(JsonTest, RejectsDuplicateNestedMember) {
  auto j = ParseJson(R"({"a":{"b":1,"c":{"d":1},"b":2}})");
  ASSERT_FALSE(j.ok());
  EXPECT_THAT(j.status().message(), HasSubstr("\"b\""));
}

TEST(JsonTest, SameNameInSiblingObjectsIsFine) {
  auto j = ParseJson(R"({"a":{"x":1},"b":{"x":2},"c":[{"x":3},{"x":4}]})");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ((*j)["c"][1]["x"], 4);
}

TEST(JsonTest, RejectsDeepNesting) {
  std::string deep = std::string(kMaxJsonDepth + 1, '[') + std::string(kMaxJsonDepth + 1, ']');
  auto j = ParseJson(deep);
  ASSERT_FALSE(j.ok());
  EXPECT_THAT(j.status().message(), HasSubstr("nested deeper than"));
  std::string ok = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_TRUE(ParseJson(ok).ok());
}

TEST(JsonTest, RejectsHugeNestingWithoutRecursing) {
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_FALSE(ParseJson(deep).ok());
  std::string objects;
  for (int i = 0; i < 50000; ++i) objects += "{\"a\":";
  objects += "1" + std::string(50000, '}');
  EXPECT_FALSE(ParseJson(objects).ok());
}

TEST(JsonTest, RejectsSyntaxErrorsCommentsAndBadUtf8) {
  for (std::string bad : {"", "{", "{\"a\":1,}", "{\"a\":1} x", "{/*c*/\"a\":1}", "{'a':1}",
                          "{\"a\":\"\xff\"}", "{\"a\":\"\xc0\xaf\"}", "{\"a\":01}", "NaN"}) {
    EXPECT_FALSE(ParseJson(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace zm::jwt
