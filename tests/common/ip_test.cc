#include "common/base/ip.h"

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

}  // namespace
}  // namespace zm
