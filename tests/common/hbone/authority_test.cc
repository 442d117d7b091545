#include "common/hbone/authority.h"

#include <gtest/gtest.h>

namespace zm::hbone {
namespace {

TEST(ParseAuthority, AcceptsIpv4AndBracketedIpv6) {
  auto v4 = ParseAuthority("10.1.2.3:8080");
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_EQ(v4->ToString(), "10.1.2.3:8080");
  auto v6 = ParseAuthority("[fd00::1]:443");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->ToString(), "[fd00::1]:443");
  EXPECT_EQ(FormatAuthority(*v6), "[fd00::1]:443");
}

TEST(ParseAuthority, RejectsEverythingElse) {
  for (const char* bad :
       {"", "10.1.2.3", "10.1.2.3:", "10.1.2.3:0", "10.1.2.3:65536", "10.1.2.3:+80", "10.1.2.3:8o",
        "10.1.2.3:000080", "host:80", "example.com:443", "fd00::1:80", "[10.1.2.3]:80",
        "[::ffff:10.1.2.3]:80", "[fd00::1]", "[]:80", ":80", "10.1.2.3:80/x", " 10.1.2.3:80",
        "10.1.2:80"}) {
    EXPECT_FALSE(ParseAuthority(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace zm::hbone
