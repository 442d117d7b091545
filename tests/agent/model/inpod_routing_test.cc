// In-pod delivery routing, in a real network namespace (root only): the sysctl, rule and
// route land in the pod netns and nowhere else, installing is idempotent, removing removes,
// and DeliveryRoutingInstalled tells the truth. `ip` is used here only to look.
#include "agent/inpod_routing.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/base/netns.h"

namespace zm::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Runs a shell command; returns its stdout, with the exit status in `*rc`.
std::string Shell(const std::string& cmd, int* rc = nullptr) {
  std::string out;
  FILE* f = ::popen((cmd + " 2>&1").c_str(), "r");
  if (f == nullptr) return "popen failed";
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), f)) > 0) out.append(buf.data(), n);
  int status = ::pclose(f);
  if (rc != nullptr) *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

int Count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

std::string ReadHostFile(const char* path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return s;
}

class InpodRoutingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (creates a network namespace)";
    name_ = "zmr" + std::to_string(::getpid()) + "-x";
    int rc = 0;
    std::string out = Shell("ip netns add " + name_, &rc);
    ASSERT_EQ(rc, 0) << out;
    created_ = true;
    out = Shell("ip -n " + name_ + " link set lo up", &rc);
    ASSERT_EQ(rc, 0) << out;
    auto fd = OpenNetns(name_);
    ASSERT_TRUE(fd.ok()) << fd.status();
    netns_ = std::move(*fd);
    v6_ = std::filesystem::exists("/proc/sys/net/ipv6");
  }
  void TearDown() override {
    netns_.reset();
    if (created_) Shell("ip netns del " + name_);
  }
  std::string Ip(const std::string& args) { return Shell("ip -n " + name_ + " " + args); }
  std::string Sysctl() {
    return Shell("ip netns exec " + name_ + " cat /proc/sys/net/ipv4/tcp_fwmark_accept");
  }
  // Kernel replies without a socket (RSTs) carry the mark of the packet they answer.
  std::string Reflect() {
    return Shell("ip netns exec " + name_ + " cat /proc/sys/net/ipv4/fwmark_reflect");
  }
  bool Installed() {
    auto r = DeliveryRoutingInstalled(netns_.get());
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() && *r;
  }

  std::string name_;
  bool created_ = false;
  bool v6_ = false;
  Fd netns_;
};

constexpr char kRule[] = "32764:\tfrom all fwmark 0x538/0xfff lookup 1337";
constexpr char kRoute4[] = "local default dev lo scope host";
constexpr char kRoute6[] = "local default dev lo";

TEST_F(InpodRoutingTest, InstallIdempotentRemove) {
  const std::string host_rules = Shell("ip rule show");
  const std::string host_rules6 = Shell("ip -6 rule show");
  const std::string host_sysctl = ReadHostFile("/proc/sys/net/ipv4/tcp_fwmark_accept");
  const std::string host_reflect = ReadHostFile("/proc/sys/net/ipv4/fwmark_reflect");
  ASSERT_EQ(Sysctl(), "0\n");
  ASSERT_EQ(Reflect(), "0\n");
  EXPECT_FALSE(Installed());

  absl::Status s = InstallDeliveryRouting(netns_.get());
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Reflect(), "1\n");
  EXPECT_EQ(ReadHostFile("/proc/sys/net/ipv4/fwmark_reflect"), host_reflect);
  std::string rules = Ip("rule show");
  std::string routes = Ip("route show table 1337");
  EXPECT_EQ(Count(rules, kRule), 1) << rules;
  EXPECT_EQ(Count(routes, kRoute4), 1) << routes;
  EXPECT_EQ(Sysctl(), "1\n");
  if (v6_) {
    EXPECT_EQ(Count(Ip("-6 rule show"), kRule), 1) << Ip("-6 rule show");
    EXPECT_EQ(Count(Ip("-6 route show table 1337"), kRoute6), 1) << Ip("-6 route show table 1337");
  }
  EXPECT_TRUE(Installed());

  // Nothing leaked into the host namespace.
  EXPECT_EQ(Shell("ip rule show"), host_rules);
  EXPECT_EQ(Shell("ip -6 rule show"), host_rules6);
  EXPECT_EQ(ReadHostFile("/proc/sys/net/ipv4/tcp_fwmark_accept"), host_sysctl);
  EXPECT_THAT(Shell("ip route show table 1337"), Not(HasSubstr(kRoute4)));

  // A second install changes nothing.
  s = InstallDeliveryRouting(netns_.get());
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Ip("rule show"), rules);
  EXPECT_EQ(Ip("route show table 1337"), routes);
  if (v6_) {
    EXPECT_EQ(Count(Ip("-6 rule show"), kRule), 1);
  }
  EXPECT_TRUE(Installed());

  s = RemoveDeliveryRouting(netns_.get());
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_THAT(Ip("rule show"), Not(HasSubstr("1337")));
  EXPECT_THAT(Ip("-6 rule show"), Not(HasSubstr("1337")));
  EXPECT_THAT(Ip("route show table 1337"), Not(HasSubstr("local")));
  EXPECT_THAT(Ip("-6 route show table 1337"), Not(HasSubstr("local")));
  EXPECT_EQ(Sysctl(), "0\n");
  EXPECT_EQ(Reflect(), "0\n");
  EXPECT_FALSE(Installed());

  // Removing again is fine too.
  s = RemoveDeliveryRouting(netns_.get());
  EXPECT_TRUE(s.ok()) << s;
}

TEST_F(InpodRoutingTest, PartialStateIsReportedAndRepaired) {
  ASSERT_TRUE(InstallDeliveryRouting(netns_.get()).ok());
  Ip("route del local default dev lo table 1337");
  EXPECT_FALSE(Installed());
  ASSERT_TRUE(InstallDeliveryRouting(netns_.get()).ok());
  EXPECT_TRUE(Installed());

  Shell("ip netns exec " + name_ + " sh -c 'echo 0 > /proc/sys/net/ipv4/tcp_fwmark_accept'");
  EXPECT_FALSE(Installed());
  ASSERT_TRUE(InstallDeliveryRouting(netns_.get()).ok());
  EXPECT_TRUE(Installed());

  Ip("rule del fwmark 0x538/0xfff lookup 1337");
  EXPECT_FALSE(Installed());
  ASSERT_TRUE(InstallDeliveryRouting(netns_.get()).ok());
  EXPECT_TRUE(Installed());

  if (v6_) {
    Ip("-6 route del local default dev lo table 1337");
    EXPECT_FALSE(Installed());
    ASSERT_TRUE(InstallDeliveryRouting(netns_.get()).ok());
    EXPECT_TRUE(Installed());
  }
}

TEST_F(InpodRoutingTest, Ipv6DisabledSkipsTheV6Entries) {
  if (!v6_) GTEST_SKIP() << "no IPv6 on this kernel";
  Shell("ip netns exec " + name_ + " sh -c 'echo 1 > /proc/sys/net/ipv6/conf/lo/disable_ipv6'");
  absl::Status s = InstallDeliveryRouting(netns_.get());
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Count(Ip("rule show"), kRule), 1);
  EXPECT_THAT(Ip("-6 rule show"), Not(HasSubstr("1337")));
  EXPECT_TRUE(Installed());
  s = RemoveDeliveryRouting(netns_.get());
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_FALSE(Installed());
}

TEST_F(InpodRoutingTest, ConflictingRouteIsReplaced) {
  Ip("route add unreachable default table 1337");
  EXPECT_FALSE(Installed());
  absl::Status s = InstallDeliveryRouting(netns_.get());
  ASSERT_TRUE(s.ok()) << s;
  std::string routes = Ip("route show table 1337");
  EXPECT_EQ(Count(routes, kRoute4), 1) << routes;
  EXPECT_THAT(routes, Not(HasSubstr("unreachable")));
  EXPECT_TRUE(Installed());
}

TEST_F(InpodRoutingTest, NetlinkErrorNamesTheRequestAndTheKernelsReason) {
  if (!v6_) GTEST_SKIP() << "no IPv6 on this kernel";
  // With lo down the kernel refuses the IPv6 local route (the IPv4 one is accepted).
  Ip("link set lo down");
  absl::Status s = InstallDeliveryRouting(netns_.get());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(),
            "RTM_NEWROUTE(inet6 local ::/0 dev lo table 1337): ENETDOWN (Network is down): "
            "Nexthop device is not up");
}

TEST_F(InpodRoutingTest, NotANetnsFdIsAnError) {
  Fd not_netns(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  absl::Status s = InstallDeliveryRouting(not_netns.get());
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("setns"));
  EXPECT_FALSE(DeliveryRoutingInstalled(not_netns.get()).ok());
}

}  // namespace
}  // namespace zm::agent
