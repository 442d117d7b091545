// zmeshctl's rendering of the pinned state: names instead of integers, every column, JSON
// shapes that scripts depend on.
#include "cli/bpf_view.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <cstring>

#include "cli/table.h"
#include "common/base/ip.h"

namespace zm::cli {
namespace {

zm_addr Addr(const char* ip) {
  zm_addr a{};
  auto parsed = IpAddr::Parse(ip);
  std::memcpy(a.ip, parsed->bytes.data(), 16);
  return a;
}

// Two pods: demo/client fully captured, demo/server without listener and sk_lookup link.
BpfState TwoPods() {
  BpfState s;
  s.pin_dir = "/sys/fs/bpf/zmesh/node1";
  s.pod_names = {{1, "demo/client/uid-c"}, {2, "demo/server/uid-s"}};
  s.netns = {{111, {.flags = ZM_NETNS_OUT | ZM_NETNS_IN, .pod_index = 1}},
             {222, {.flags = ZM_NETNS_OUT | ZM_NETNS_IN, .pod_index = 2}}};
  s.pod_ips = {{Addr("198.18.1.10"), {.netns_cookie = 111, .pod_index = 1}},
               {Addr("198.18.1.11"), {.netns_cookie = 222, .pod_index = 2}}};
  zm_listener_key lk{};
  std::memcpy(lk.ip, Addr("198.18.1.10").ip, 16);
  lk.role = ZM_ROLE_INBOUND;
  s.listeners = {{.key = lk}};
  s.links = {{.name = "connect4", .link_id = 5, .prog_id = 50, .prog_name = "zm_connect4",
              .attach_type = BPF_CGROUP_INET4_CONNECT, .cgroup_id = 77},
             {.name = "sk_lookup_111", .link_id = 6, .prog_id = 51, .prog_name = "zm_sk_lookup",
              .attach_type = BPF_SK_LOOKUP, .netns_ino = 4026532000}};
  s.excluded = {{.pod_index = 1, .port = htons(9090), .direction = ZM_DIR_OUTBOUND}};
  return s;
}

TEST(TableTest, PadsColumnsAndUpperCaseHeadersStayAsGiven) {
  Table t({"POD", "IPS"});
  t.Add({"demo/client", "198.18.1.10"});
  EXPECT_EQ(t.Render(), "POD           IPS\ndemo/client   198.18.1.10\n");
}

TEST(BpfViewTest, PodsJsonNamesPodsAndShowsEveryColumn) {
  auto j = PodsJson(TwoPods());
  ASSERT_EQ(j["pods"].size(), 2u);
  const auto& c = j["pods"][0];
  EXPECT_EQ(c["pod"], "demo/client");
  EXPECT_EQ(c["uid"], "uid-c");
  EXPECT_EQ(c["netns_cookie"], 111);
  EXPECT_EQ(c["ips"][0], "198.18.1.10");
  EXPECT_TRUE(c["outbound"]);
  EXPECT_TRUE(c["inbound"]);
  EXPECT_TRUE(c["listener"]);
  EXPECT_TRUE(c["sk_lookup_link"]);
  EXPECT_EQ(c["excluded_ports"]["outbound"][0], 9090);
  const auto& srv = j["pods"][1];
  EXPECT_EQ(srv["pod"], "demo/server");
  EXPECT_FALSE(srv["listener"]);
  EXPECT_FALSE(srv["sk_lookup_link"]);
  EXPECT_FALSE(srv["inbound"]) << "no listener means inbound fails closed, not captured";
}

TEST(BpfViewTest, ADefunctLinkDoesNotCountAsInbound) {
  BpfState s = TwoPods();
  s.links[1].defunct = true;
  EXPECT_FALSE(PodsJson(s)["pods"][0]["sk_lookup_link"]);
  EXPECT_NE(RenderStatus(s).find("DEFUNCT"), std::string::npos);
}

TEST(BpfViewTest, PodsTable) {
  std::string out = RenderPods(TwoPods());
  EXPECT_NE(out.find("POD "), std::string::npos);
  EXPECT_NE(out.find("demo/client"), std::string::npos);
  EXPECT_NE(out.find("out:9090 in:-"), std::string::npos) << out;
}

TEST(BpfViewTest, StatusShowsLinksWithAttachNames) {
  auto j = StatusJson(TwoPods());
  EXPECT_EQ(j["links"][0]["name"], "connect4");
  EXPECT_EQ(j["links"][0]["id"], 5);
  EXPECT_EQ(j["links"][0]["attach"], "cgroup_inet4_connect");
  EXPECT_EQ(j["links"][1]["attach"], "sk_lookup");
  EXPECT_EQ(j["links"][1]["netns_ino"], 4026532000u);
}

TEST(BpfViewTest, OrigDstNamesThePodAndTheDestination) {
  BpfState s = TwoPods();
  zm_orig_key k{.netns_cookie = 111, .port = htons(40000)};
  std::memcpy(k.ip, Addr("127.0.0.1").ip, 16);
  zm_orig v{.port = htons(8080), .family = AF_INET};
  std::memcpy(v.ip, Addr("198.18.1.11").ip, 16);
  s.orig_dst = {{k, v}};
  std::string out = RenderOrigDst(s);
  EXPECT_NE(out.find("demo/client"), std::string::npos) << out;
  EXPECT_NE(out.find("127.0.0.1:40000"), std::string::npos) << out;
  EXPECT_NE(out.find("198.18.1.11:8080 (demo/server)"), std::string::npos) << out;
  EXPECT_EQ(OrigDstJson(s)["entries"][0]["original_dst_pod"], "demo/server");
}

TEST(BpfViewTest, BypassSaysWhy) {
  BpfState s = TwoPods();
  zm_tuple t{.sport = htons(50000), .dport = htons(8080)};
  std::memcpy(t.saddr, Addr("198.18.1.1").ip, 16);
  std::memcpy(t.daddr, Addr("198.18.1.11").ip, 16);
  s.bypass = {{t, {.time_ns = 1, .reason = ZM_R_BYPASS_NODE}}};
  s.now_ns = 5'000'000'001;
  std::string out = RenderBypass(s);
  EXPECT_NE(out.find("bypass-node-local"), std::string::npos) << out;
  EXPECT_NE(out.find("(demo/server)"), std::string::npos) << out;
  EXPECT_NE(out.find("5s"), std::string::npos) << out;
}

TEST(BpfViewTest, StatsUseReasonNames) {
  BpfState s;
  s.stats.assign(ZM_R_MAX, 0);
  s.stats[ZM_R_OUT_REDIRECTED] = 42;
  auto j = StatsJson(s);
  EXPECT_EQ(j["stats"]["out-redirected"], 42);
  EXPECT_NE(RenderStats(s).find("out-redirected"), std::string::npos);
}

TEST(BpfViewTest, ConfigInWords) {
  BpfState s;
  s.config = zm_config{.abi = ZM_ABI_VERSION, .flags = ZM_CFG_VERIFY_ZTUNNEL,
                       .mark_ztunnel = ZM_MARK_ZTUNNEL, .ztunnel_tgid = 0};
  std::string out = RenderConfig(s);
  EXPECT_NE(out.find("0x539"), std::string::npos) << out;
  EXPECT_NE(out.find("none yet"), std::string::npos) << out;
}

TEST(BpfViewTest, ErrorsAreShownNotHidden) {
  BpfState s = ReadBpfState("/nonexistent/zmesh/pins");
  ASSERT_FALSE(s.errors.empty());
  EXPECT_NE(RenderPods(s).find("warning:"), std::string::npos);
}

}  // namespace
}  // namespace zm::cli
