// PinnedDatapath on the real kernel: pins, in-place upgrade by link update, ABI migration,
// per-pod sk_lookup links (and their GC once the netns is gone), the map methods, and
// uninstall. Everything lives under a unique pin dir, child cgroup and netns name.

#include "bpf/pinned_datapath.h"

#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "bpf/bpf_util.h"
#include "bpf/pinned_maps.h"
#include "common/base/netns.h"
#include "common/base/strings.h"
#include "tests/bpf/bpf_test_util.h"

namespace zm::bpf {
namespace {

using test_util::Cgroup2Mount;
using test_util::Shell;
using test_util::SocketCookie;

uint64_t Inode(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

class PinnedDatapathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root: bpffs pins, cgroup links, netns";
    std::string mount = Cgroup2Mount();
    ASSERT_FALSE(mount.empty()) << "no cgroup2 mount in /proc/self/mountinfo";
    std::string tag = StrCat("zmt", getpid());
    options_.pin_dir = StrCat("/sys/fs/bpf/zmesh/", tag);
    options_.cgroup_root = StrCat(mount, "/", tag);
    options_.build_id = "build-1";
    netns_ = tag + "-x";
    ASSERT_EQ(::mkdir(options_.cgroup_root.c_str(), 0755), 0) << std::strerror(errno);
  }

  // Also after a failure: nothing of a test may outlive it.
  void TearDown() override {
    if (options_.pin_dir.empty()) return;
    dp_.reset();
    EXPECT_TRUE(PinnedDatapath::Uninstall(options_.pin_dir).ok());
    ::rmdir(options_.cgroup_root.c_str());
    if (PathExists("/var/run/netns/" + netns_)) Shell("ip netns del " + netns_);
  }

  void OpenDatapath() {
    auto dp = PinnedDatapath::Open(options_);
    ASSERT_TRUE(dp.ok()) << dp.status();
    dp_ = std::move(*dp);
  }

  std::vector<PinnedLinkStatus> Links() {
    auto maps = PinnedMaps::Open(options_.pin_dir);
    EXPECT_TRUE(maps.ok()) << maps.status();
    if (!maps.ok()) return {};
    auto links = maps->Links();
    EXPECT_TRUE(links.ok()) << links.status();
    return links.ok() ? *links : std::vector<PinnedLinkStatus>{};
  }

  // The pinned link called `name`; an empty status (link_id 0) if there is none.
  PinnedLinkStatus FindLink(std::string_view name) {
    for (PinnedLinkStatus& l : Links()) {
      if (l.name == name) return l;
    }
    return {};
  }

  std::string LinkPin(std::string_view name) {
    return StrCat(LinksDir(options_.pin_dir), "/", name);
  }

  PinnedDatapath::Options options_;
  std::string netns_;
  std::unique_ptr<PinnedDatapath> dp_;
};

TEST_F(PinnedDatapathTest, OpenPinsFourCgroupLinksAndReopenUpdatesThemInPlace) {
  ASSERT_NO_FATAL_FAILURE(OpenDatapath());
  EXPECT_FALSE(dp_->migrated());
  std::vector<PinnedLinkStatus> first = Links();
  ASSERT_EQ(first.size(), 4u);
  for (const PinnedLinkStatus& l : first) {
    EXPECT_EQ(l.cgroup_id, Inode(options_.cgroup_root)) << l.name;
    EXPECT_FALSE(l.defunct) << l.name;
    EXPECT_TRUE(l.prog_name.starts_with("zm_")) << l.name << " runs " << l.prog_name;
  }

  options_.build_id = "build-2";  // the upgrade: a new agent loads a new object
  dp_.reset();
  ASSERT_NO_FATAL_FAILURE(OpenDatapath());
  std::vector<PinnedLinkStatus> second = Links();
  ASSERT_EQ(second.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(second[i].name, first[i].name);
    EXPECT_EQ(second[i].link_id, first[i].link_id) << first[i].name << ": link kept";
    EXPECT_NE(second[i].prog_id, first[i].prog_id) << first[i].name << ": program replaced";
  }
  auto meta = PinnedMaps::Open(options_.pin_dir)->Meta();
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_EQ(meta->abi, static_cast<uint32_t>(ZM_ABI_VERSION));
  EXPECT_STREQ(meta->build_id, "build-2");
}

TEST_F(PinnedDatapathTest, MapsOfAnotherAbiAreMigrated) {
  ASSERT_NO_FATAL_FAILURE(OpenDatapath());
  ASSERT_TRUE(dp_->PutNetns(42, zm_netns_val{ZM_NETNS_OUT, 1}).ok());
  uint32_t old_link = Links().at(0).link_id;
  {  // what an agent of ABI 999 would have left behind
    auto fd = ObjGet(options_.pin_dir + "/zm_meta", /*read_only=*/false);
    ASSERT_TRUE(fd.ok()) << fd.status();
    zm_meta meta{999};
    uint32_t key = 0;
    ASSERT_EQ(bpf_map_update_elem(fd->get(), &key, &meta, BPF_ANY), 0);
  }
  dp_.reset();
  ASSERT_NO_FATAL_FAILURE(OpenDatapath());
  EXPECT_TRUE(dp_->migrated());
  auto netns = dp_->ListNetns();
  ASSERT_TRUE(netns.ok()) << netns.status();
  EXPECT_TRUE(netns->empty()) << "fresh maps after migration";
  EXPECT_EQ(Links().at(0).link_id, old_link) << "links survive a migration";
  EXPECT_EQ(PinnedMaps::Open(options_.pin_dir)->Meta()->abi, static_cast<uint32_t>(ZM_ABI_VERSION));
}

TEST_F(PinnedDatapathTest, SkLookupLinkAttachUpdateDetachAndGc) {
  ASSERT_NO_FATAL_FAILURE(OpenDatapath());
  ASSERT_TRUE(Shell("ip netns add " + netns_));
  auto fd = OpenNetns(netns_);
  ASSERT_TRUE(fd.ok()) << fd.status();
  auto cookie = NetnsCookie(fd->get());
  ASSERT_TRUE(cookie.ok()) << cookie.status();
  auto ino = NetnsInode(fd->get());
  std::string name = SkLookupLinkName(*cookie);

  ASSERT_TRUE(dp_->AttachSkLookup(*cookie, fd->get()).ok());
  EXPECT_EQ(*dp_->ListSkLookupLinks(), std::vector<uint64_t>{*cookie});
  ASSERT_EQ(Links().size(), 5u);
  PinnedLinkStatus link = FindLink(name);
  ASSERT_NE(link.link_id, 0u) << name << " not pinned";
  EXPECT_EQ(link.netns_ino, *ino);
  EXPECT_EQ(link.prog_name, "zm_sk_lookup");

  ASSERT_TRUE(dp_->AttachSkLookup(*cookie, fd->get()).ok());  // again: updated in place
  EXPECT_EQ(FindLink(name).link_id, link.link_id);

  ASSERT_TRUE(dp_->DetachSkLookup(*cookie).ok());
  EXPECT_TRUE(dp_->ListSkLookupLinks()->empty());
  EXPECT_FALSE(PathExists(LinkPin(name)));

  // The netns goes away with the link still pinned: the kernel detaches it (netns_ino 0).
  ASSERT_TRUE(dp_->AttachSkLookup(*cookie, fd->get()).ok());
  fd->reset();
  ASSERT_TRUE(Shell("ip netns del " + netns_));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!FindLink(name).defunct && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // netns cleanup is async
  }
  ASSERT_TRUE(FindLink(name).defunct) << "netns link not detached 20 s after ip netns del";
  EXPECT_EQ(FindLink(name).netns_ino, 0u);
  auto removed = dp_->GcDefunctSkLookupLinks();
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, std::vector<uint64_t>{*cookie});
  EXPECT_TRUE(dp_->ListSkLookupLinks()->empty());
  EXPECT_EQ(Links().size(), 4u);
}

TEST_F(PinnedDatapathTest, MapMethodsRoundTrip) {
  ASSERT_NO_FATAL_FAILURE(OpenDatapath());
  zm_config cfg{ZM_ABI_VERSION,
                ZM_CFG_VERIFY_ZTUNNEL,
                ZM_MARK_ZTUNNEL,
                ZM_MARK_DELIVERY,
                ZM_MARK_MASK,
                77,
                88,
                99};
  ASSERT_TRUE(dp_->WriteConfig(cfg).ok());

  IpAddr ip = *IpAddr::Parse("10.0.0.5");
  ASSERT_TRUE(dp_->PutPodIp(ip, zm_pod_ip_val{42, 3, ZM_NETNS_IN}).ok());
  EXPECT_EQ(dp_->ListPodIps()->at(ip).netns_cookie, 42u);
  ASSERT_TRUE(dp_->PutPodName(3, "default/web/uid-1").ok());
  EXPECT_EQ(dp_->ListPodNames()->at(3), "default/web/uid-1");
  EXPECT_FALSE(dp_->PutPodName(4, std::string(ZM_POD_NAME_LEN, 'x')).ok());
  ASSERT_TRUE(dp_->PutNetns(42, zm_netns_val{ZM_NETNS_OUT, 3, 0x0500000a}).ok());
  EXPECT_EQ(dp_->ListNetns()->at(42).ip4, 0x0500000au);
  for (uint16_t port : {80, 443}) {
    ASSERT_TRUE(dp_->PutExcludedPort(zm_port_key{3, htons(port), ZM_DIR_INBOUND}).ok());
  }
  ASSERT_TRUE(dp_->PutExcludedPort(zm_port_key{4, htons(80), ZM_DIR_OUTBOUND}).ok());

  Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sin{AF_INET, 0, {htonl(INADDR_LOOPBACK)}};
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  ASSERT_EQ(::listen(listener.get(), 4), 0);
  uint64_t sock_cookie = SocketCookie(listener.get());
  ASSERT_TRUE(dp_->PutListener(ip, ZM_ROLE_INBOUND, listener.get()).ok());

  // The read-only side sees what the agent wrote.
  auto maps = PinnedMaps::Open(options_.pin_dir);
  ASSERT_TRUE(maps.ok()) << maps.status();
  EXPECT_EQ(maps->Config()->ztunnel_cgroup_id, 88u);
  EXPECT_EQ(maps->Config()->node_netns_cookie, 99u);
  EXPECT_EQ(maps->ExcludedPorts()->size(), 3u);
  auto listeners = maps->Listeners();
  ASSERT_TRUE(listeners.ok()) << listeners.status();
  ASSERT_EQ(listeners->size(), 1u);
  EXPECT_EQ(listeners->at(0).socket_cookie, sock_cookie);
  EXPECT_EQ(maps->Stats()->size(), static_cast<size_t>(ZM_R_MAX));
  auto fill = maps->Fill();
  ASSERT_TRUE(fill.ok()) << fill.status();
  EXPECT_EQ(fill->size(), kPinnedMaps.size());
  for (const MapFill& f : *fill) {
    if (f.name == "zm_ports_excl") {
      EXPECT_EQ(f.entries, 3u);
    }
    if (f.name == "zm_pod_ip") {
      EXPECT_EQ(f.entries, 1u);
    }
  }

  ASSERT_TRUE(dp_->DeleteExcludedPorts(3).ok());
  auto ports = maps->ExcludedPorts();
  ASSERT_EQ(ports->size(), 1u);
  EXPECT_EQ(ports->at(0).pod_index, 4u);
  ASSERT_TRUE(dp_->DeleteListener(ip, ZM_ROLE_INBOUND).ok());
  EXPECT_TRUE(maps->Listeners()->empty());
  ASSERT_TRUE(dp_->DeletePodIp(ip).ok());
  ASSERT_TRUE(dp_->DeletePodName(3).ok());
  ASSERT_TRUE(dp_->DeleteNetns(42).ok());
  ASSERT_TRUE(dp_->DeleteNetns(42).ok()) << "deleting twice is fine (idempotent un-enroll)";
  EXPECT_TRUE(dp_->ListPodIps()->empty());
  EXPECT_TRUE(dp_->ListPodNames()->empty());
  EXPECT_TRUE(dp_->ListNetns()->empty());
}

TEST_F(PinnedDatapathTest, UninstallRemovesEveryPinAndDetachesLinks) {
  ASSERT_NO_FATAL_FAILURE(OpenDatapath());
  ASSERT_TRUE(Shell("ip netns add " + netns_));
  auto fd = OpenNetns(netns_);
  ASSERT_TRUE(fd.ok()) << fd.status();
  ASSERT_TRUE(dp_->AttachSkLookup(*NetnsCookie(fd->get()), fd->get()).ok());
  std::vector<PinnedLinkStatus> links = Links();
  ASSERT_EQ(links.size(), 5u);
  dp_.reset();

  ASSERT_TRUE(PinnedDatapath::Uninstall(options_.pin_dir).ok());
  EXPECT_FALSE(PathExists(options_.pin_dir));
  for (const PinnedLinkStatus& l : links) {
    int link_fd = bpf_link_get_fd_by_id(l.link_id);
    EXPECT_LT(link_fd, 0) << l.name << " still exists after uninstall";
    if (link_fd >= 0) ::close(link_fd);
  }
}

}  // namespace
}  // namespace zm::bpf
