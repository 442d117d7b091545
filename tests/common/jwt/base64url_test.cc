#include "common/jwt/base64url.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace zm::jwt {
namespace {

using ::testing::HasSubstr;

struct BadInput {
  const char* name;
  std::string input;
  const char* why;
};

class Base64UrlRejects : public ::testing::TestWithParam<BadInput> {};

TEST_P(Base64UrlRejects, Input) {
  auto decoded = Base64UrlDecode(GetParam().input);
  ASSERT_FALSE(decoded.ok()) << "decoded to " << decoded->size() << " bytes";
  EXPECT_THAT(decoded.status().message(), HasSubstr(GetParam().why));
}

INSTANTIATE_TEST_SUITE_P(
    Strict, Base64UrlRejects,
    ::testing::Values(BadInput{"Padding", "Zm8=", "padding is not allowed"},
                      BadInput{"DoublePadding", "Zg==", "padding is not allowed"},
                      BadInput{"StandardAlphabetPlus", "ab+d", "invalid character at offset 2"},
                      BadInput{"StandardAlphabetSlash", "ab/d", "invalid character at offset 2"},
                      BadInput{"Space", "ab d", "invalid character"},
                      BadInput{"Newline", "abc\nabcd", "invalid character at offset 3"},
                      BadInput{"Dot", "ab.d", "invalid character"},
                      BadInput{"Nul", std::string("ab\0d", 4), "invalid character"},
                      BadInput{"HighByte", "ab\xc3\xa9", "invalid character"},
                      BadInput{"LengthOneModFour", "abcde", "cannot be a base64url encoding"},
                      BadInput{"NonCanonicalTwoChars", "Zh", "non-zero bits"},
                      BadInput{"NonCanonicalThreeChars", "Zm9", "non-zero bits"}),
    [](const auto& info) { return info.param.name; });

TEST(Base64UrlTest, DecodesRfc4648Vectors) {
  const std::pair<const char*, const char*> kVectors[] = {
      {"", ""},           {"Zg", "f"},          {"Zm8", "fo"},         {"Zm9v", "foo"},
      {"Zm9vYg", "foob"}, {"Zm9vYmE", "fooba"}, {"Zm9vYmFy", "foobar"}};
  for (const auto& [enc, dec] : kVectors) {
    auto got = Base64UrlDecode(enc);
    ASSERT_TRUE(got.ok()) << enc << ": " << got.status();
    EXPECT_EQ(*got, dec);
    EXPECT_EQ(Base64UrlEncode(dec), enc);
  }
}

TEST(Base64UrlTest, UsesTheUrlAlphabet) {
  EXPECT_EQ(Base64UrlEncode("\xfb\xff\xbf"), "-_-_");
  EXPECT_EQ(*Base64UrlDecode("-_-_"), "\xfb\xff\xbf");
}

TEST(Base64UrlTest, RoundTripsEveryLengthAndByte) {
  std::string bytes;
  for (int i = 0; i < 300; ++i) {
    bytes.push_back(static_cast<char>(i * 37 + 11));
    auto back = Base64UrlDecode(Base64UrlEncode(bytes));
    ASSERT_TRUE(back.ok()) << back.status();
    ASSERT_EQ(*back, bytes);
  }
}

}  // namespace
}  // namespace zm::jwt
