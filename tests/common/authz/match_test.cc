// Value matchers (policy-semantics §2.2-§2.4).
#include "common/authz/match.h"

#include <gtest/gtest.h>

namespace zm::authz {
namespace {

TEST(StringMatcherTest, ExactPrefixSuffixPresence) {
  EXPECT_TRUE(StringMatcher::Parse("abc").Matches("abc"));
  EXPECT_FALSE(StringMatcher::Parse("abc").Matches("abcd"));
  EXPECT_TRUE(StringMatcher::Parse("abc*").Matches("abc"));  // a prefix matches itself
  EXPECT_TRUE(StringMatcher::Parse("abc*").Matches("abcdef"));
  EXPECT_FALSE(StringMatcher::Parse("abc*").Matches("xabc"));
  EXPECT_TRUE(StringMatcher::Parse("*abc").Matches("abc"));
  EXPECT_TRUE(StringMatcher::Parse("*abc").Matches("xyzabc"));
  EXPECT_FALSE(StringMatcher::Parse("*abc").Matches("abcx"));
  EXPECT_TRUE(StringMatcher::Parse("*").Matches("x"));
  EXPECT_FALSE(StringMatcher::Parse("*").Matches(""));  // presence means non-empty
  EXPECT_TRUE(StringMatcher::Parse("*", false, false, /*any_for_star=*/true).Matches(""));
}

TEST(StringMatcherTest, InnerStarIsLiteralUnlessGlob) {
  EXPECT_FALSE(StringMatcher::Parse("a*c").Matches("abc"));
  EXPECT_TRUE(StringMatcher::Parse("a*c").Matches("a*c"));
  auto glob = StringMatcher::Parse("a*c*e", false, /*glob=*/true);
  EXPECT_TRUE(glob.Matches("ace"));
  EXPECT_TRUE(glob.Matches("abbcdde"));
  EXPECT_FALSE(glob.Matches("abbcdd"));
  EXPECT_FALSE(glob.Matches("xace"));
  auto ends = StringMatcher::Parse("*a*", false, true);
  EXPECT_TRUE(ends.Matches("xay"));
  EXPECT_FALSE(ends.Matches("xyz"));
}

TEST(StringMatcherTest, IgnoreCase) {
  auto m = StringMatcher::Parse("*.Example.COM", /*ignore_case=*/true);
  EXPECT_TRUE(m.Matches("api.example.com"));
  EXPECT_TRUE(m.Matches("API.EXAMPLE.COM"));
  EXPECT_FALSE(m.Matches("example.com.evil"));
}

TEST(PathTemplateTest, Operators) {
  auto one = *PathTemplate::Parse("/store/{*}/cart");
  EXPECT_TRUE(one.Matches("/store/a/cart"));
  EXPECT_FALSE(one.Matches("/store//cart"));  // {*} is non-empty
  EXPECT_FALSE(one.Matches("/store/a/b/cart"));
  EXPECT_FALSE(one.Matches("/store/a/cart/x"));
  auto any = *PathTemplate::Parse("/store/{**}/cart");
  EXPECT_TRUE(any.Matches("/store//cart"));
  EXPECT_TRUE(any.Matches("/store/a/b/cart"));
  EXPECT_FALSE(any.Matches("/store/cart"));
  auto tail = *PathTemplate::Parse("/allow/admin/{**}");
  EXPECT_TRUE(tail.Matches("/allow/admin/"));
  EXPECT_TRUE(tail.Matches("/allow/admin/x/y"));
  EXPECT_FALSE(tail.Matches("/allow/admin"));
  auto two = *PathTemplate::Parse("/{*}/{*}");
  EXPECT_TRUE(two.Matches("/a/b"));
  EXPECT_FALSE(two.Matches("/a"));
  EXPECT_FALSE(two.Matches("/a/b/c"));
}

TEST(PathTemplateTest, InvalidTemplates) {
  EXPECT_FALSE(PathTemplate::Parse("store/{*}").ok());
  EXPECT_FALSE(PathTemplate::Parse("/{**}/{*}").ok());
  EXPECT_FALSE(PathTemplate::Parse("/{**}/{**}").ok());
  EXPECT_FALSE(PathTemplate::Parse("/a{*}").ok());
  EXPECT_FALSE(PathTemplate::Parse("/a/*/{*}").ok());
  EXPECT_FALSE(PathTemplate::Parse("/a b/{*}").ok());
  EXPECT_TRUE(PathTemplate::Parse("/a-b_c~d.e/{*}/x%20y").ok());
}

TEST(RequestPrincipalMatcherTest, SplitAtTheLastSlash) {
  auto m = [](const char* v) { return RequestPrincipalMatcher::Parse(v); };
  EXPECT_TRUE(m("*").Matches("iss", "sub"));
  EXPECT_FALSE(m("*").Matches("iss", ""));
  EXPECT_TRUE(m("https://idp/alice").Matches("https://idp", "alice"));
  EXPECT_FALSE(m("https://idp/alice").Matches("https://idp", "bob"));
  EXPECT_TRUE(m("*/alice").Matches("anything", "alice"));
  EXPECT_TRUE(m("*idp/alice").Matches("https://idp", "alice"));
  EXPECT_FALSE(m("*idp/alice").Matches("https://idx", "alice"));
  EXPECT_TRUE(m("*ice").Matches("iss", "alice"));
  EXPECT_TRUE(m("https://idp/*").Matches("https://idp", "x"));
  EXPECT_FALSE(m("https://idp/*").Matches("https://idp/tenant", "x"));
  EXPECT_TRUE(m("https://idp/al*").Matches("https://idp", "alice"));
  // A URL issuer prefix splits at its "//": issuer "https:/", subject prefix "idp" (§2.3).
  EXPECT_FALSE(m("https://idp*").Matches("https://idp.example", "x"));
  EXPECT_TRUE(m("https://idp*").Matches("https:/", "idp-user"));
  EXPECT_TRUE(m("idp*").Matches("idp.example", "x"));
  EXPECT_FALSE(m("idp*").Matches("idp.example", ""));
}

}  // namespace
}  // namespace zm::authz
