#include "common/base/ip.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace zm {
namespace {

TEST(IpAddrTest, ParsesV4AsV4Mapped) {
  auto a = IpAddr::Parse("198.18.1.2");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->is_v4());
  EXPECT_EQ(a->bytes[10], 0xff);
  EXPECT_EQ(a->bytes[12], 198);
  EXPECT_EQ(a->bytes[15], 2);
  EXPECT_EQ(a->ToString(), "198.18.1.2");
}

TEST(IpAddrTest, ParsesV6AndV4MappedV6) {
  auto v6 = IpAddr::Parse("fd00::1");
  ASSERT_TRUE(v6.ok());
  EXPECT_FALSE(v6->is_v4());
  EXPECT_EQ(v6->ToString(), "fd00::1");
  auto mapped = IpAddr::Parse("::ffff:198.18.1.2");
  ASSERT_TRUE(mapped.ok());
  EXPECT_EQ(*mapped, *IpAddr::Parse("198.18.1.2"));
}

TEST(IpAddrTest, RejectsGarbageNamingTheInput) {
  auto a = IpAddr::Parse("198.18.1");
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("198.18.1"), std::string_view::npos);
}

TEST(IpAddrTest, Loopback) {
  EXPECT_TRUE(IpAddr::Parse("127.0.0.1")->is_loopback());
  EXPECT_TRUE(IpAddr::Parse("127.9.9.9")->is_loopback());
  EXPECT_TRUE(IpAddr::Parse("::1")->is_loopback());
  EXPECT_FALSE(IpAddr::Parse("198.18.1.1")->is_loopback());
}

TEST(EndpointTest, SockaddrRoundTrip) {
  Endpoint e{*IpAddr::Parse("198.18.1.2"), 8080};
  sockaddr_storage ss{};
  EXPECT_EQ(e.ToSockaddr(&ss), sizeof(sockaddr_in));
  auto back = Endpoint::FromSockaddr(ss);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, e);
  EXPECT_EQ(e.ToSockaddr6(&ss), sizeof(sockaddr_in6));
  back = Endpoint::FromSockaddr(ss);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, e);
  EXPECT_EQ(e.ToString(), "198.18.1.2:8080");
}

TEST(CidrTest, ParsesBlocksAndSingleAddresses) {
  struct Case {
    const char* text;
    const char* canonical;
  } cases[] = {
      {"10.0.0.0/8", "10.0.0.0/8"},       {"10.1.2.3/8", "10.0.0.0/8"},
      {"198.18.1.2", "198.18.1.2/32"},    {"0.0.0.0/0", "0.0.0.0/0"},
      {"fd00::/64", "fd00::/64"},         {"fd00::1", "fd00::1/128"},
      {"198.18.1.7/31", "198.18.1.6/31"}, {"::/0", "::/0"},
  };
  for (const Case& c : cases) {
    auto cidr = Cidr::Parse(c.text);
    ASSERT_TRUE(cidr.ok()) << c.text << ": " << cidr.status();
    EXPECT_EQ(cidr->ToString(), c.canonical) << c.text;
  }
  for (const char* bad : {"", "10.0.0/8", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "fd00::/129",
                          "10.0.0.0/8/8", "10.0.0.0/ 8", "host.example", "10.0.0.0/0x8"}) {
    auto cidr = Cidr::Parse(bad);
    ASSERT_FALSE(cidr.ok()) << bad;
    EXPECT_THAT(std::string(cidr.status().message()),
                ::testing::HasSubstr("not an IP address or CIDR"));
  }
}

TEST(CidrTest, ContainsOnlyItsOwnFamily) {
  auto v4 = *Cidr::Parse("198.18.0.0/15");
  EXPECT_TRUE(v4.Contains(*IpAddr::Parse("198.19.255.1")));
  EXPECT_TRUE(v4.Contains(*IpAddr::Parse("198.18.0.0")));
  EXPECT_FALSE(v4.Contains(*IpAddr::Parse("198.20.0.1")));
  EXPECT_FALSE(v4.Contains(*IpAddr::Parse("::ffff:0:0")));  // v4-mapped 0.0.0.0: not in the block
  auto all4 = *Cidr::Parse("0.0.0.0/0");
  EXPECT_TRUE(all4.Contains(*IpAddr::Parse("1.2.3.4")));
  EXPECT_FALSE(all4.Contains(*IpAddr::Parse("fd00::1")));
  auto all6 = *Cidr::Parse("::/0");
  EXPECT_TRUE(all6.Contains(*IpAddr::Parse("fd00::1")));
  EXPECT_FALSE(all6.Contains(*IpAddr::Parse("1.2.3.4")));
  auto one = *Cidr::Parse("fd00::1");
  EXPECT_TRUE(one.Contains(*IpAddr::Parse("fd00::1")));
  EXPECT_FALSE(one.Contains(*IpAddr::Parse("fd00::2")));
  auto odd = *Cidr::Parse("198.18.1.0/25");
  EXPECT_TRUE(odd.Contains(*IpAddr::Parse("198.18.1.127")));
  EXPECT_FALSE(odd.Contains(*IpAddr::Parse("198.18.1.128")));
}

}  // namespace
}  // namespace zm
