// Outbound capture end to end on the real kernel (connect4/6, sockops and getsockopt cannot
// be test-run): this process joins a child cgroup carrying the four cgroup links, and a
// helper thread in a fresh netns — enrolled for outbound — connects to an address that
// does not exist there. The connection must land on the in-pod 127.0.0.1:15001 listener and
// SO_ORIGINAL_DST must name the address the app asked for.

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include "bpf/bpf_util.h"
#include "bpf/pinned_datapath.h"
#include "bpf/pinned_maps.h"
#include "common/base/netns.h"
#include "common/base/status.h"
#include "common/base/strings.h"
#include "tests/bpf/bpf_test_util.h"

namespace zm::bpf {
namespace {

using test_util::Shell;

constexpr int kSoOriginalDst = 80;

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

sockaddr_in V4(const char* ip, uint16_t port) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  ::inet_pton(AF_INET, ip, &sin.sin_addr);
  return sin;
}

class CaptureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root: cgroup links, netns, bpffs";
    std::string mount = test_util::Cgroup2Mount();
    ASSERT_FALSE(mount.empty());
    std::string tag = StrCat("zmt", getpid(), "c");
    options_ = {StrCat("/sys/fs/bpf/zmesh/", tag), StrCat(mount, "/", tag), "capture-test"};
    original_cgroup_ = StrCat(mount, test_util::OwnCgroup());
    netns_ = tag;
    ASSERT_EQ(::mkdir(options_.cgroup_root.c_str(), 0755), 0) << std::strerror(errno);
    auto dp = PinnedDatapath::Open(options_);
    ASSERT_TRUE(dp.ok()) << dp.status();
    dp_ = std::move(*dp);
    ASSERT_TRUE(Shell("ip netns add " + netns_) && Shell("ip -n " + netns_ + " link set lo up"));
    auto fd = OpenNetns(netns_);
    ASSERT_TRUE(fd.ok()) << fd.status();
    netns_fd_ = std::move(*fd);
    auto cookie = NetnsCookie(netns_fd_.get());
    ASSERT_TRUE(cookie.ok()) << cookie.status();
    cookie_ = *cookie;
    zm_config cfg{ZM_ABI_VERSION, 0, ZM_MARK_ZTUNNEL, ZM_MARK_DELIVERY, ZM_MARK_MASK};
    ASSERT_TRUE(dp_->WriteConfig(cfg).ok());
    ASSERT_TRUE(dp_->PutNetns(cookie_, zm_netns_val{ZM_NETNS_OUT, 1}).ok());
    // Sockets belong to the cgroup of the process that creates them.
    ASSERT_TRUE(WriteFile(options_.cgroup_root + "/cgroup.procs", std::to_string(getpid())));
  }

  void TearDown() override {
    if (options_.pin_dir.empty()) return;
    EXPECT_TRUE(WriteFile(original_cgroup_ + "/cgroup.procs", std::to_string(getpid())));
    dp_.reset();
    netns_fd_.reset();
    EXPECT_TRUE(PinnedDatapath::Uninstall(options_.pin_dir).ok());
    ::rmdir(options_.cgroup_root.c_str());
    if (PathExists("/var/run/netns/" + netns_)) Shell("ip netns del " + netns_);
  }

  // Runs `fn` on a thread inside the test netns.
  void InNetns(const std::function<absl::Status()>& fn) {
    absl::Status s = RunInNetns(netns_fd_.get(), fn);
    ASSERT_TRUE(s.ok()) << s;
  }

  std::vector<uint64_t> Stats() {
    auto stats = PinnedMaps::Open(options_.pin_dir)->Stats();
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.ok() ? *stats : std::vector<uint64_t>(ZM_R_MAX);
  }

  size_t OrigDstEntries() { return PinnedMaps::Open(options_.pin_dir)->OrigDst()->size(); }

  PinnedDatapath::Options options_;
  std::string original_cgroup_, netns_;
  Fd netns_fd_;
  uint64_t cookie_ = 0;
  std::unique_ptr<PinnedDatapath> dp_;
};

// ztunnel's stand-in: a listener on 127.0.0.1:15001.
absl::StatusOr<Fd> ListenOutbound() {
  Fd l(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sin = V4("127.0.0.1", ZM_PORT_OUTBOUND);
  if (::bind(l.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0) {
    return ErrnoError("bind", "127.0.0.1:15001");
  }
  if (::listen(l.get(), 8) != 0) return ErrnoError("listen", "127.0.0.1:15001");
  return l;
}

// Connects `client` to `dst`, accepts on `listener` and asks SO_ORIGINAL_DST there.
absl::StatusOr<sockaddr_in> ConnectAndAsk(int client, const sockaddr* dst, socklen_t len,
                                          int listener) {
  if (::connect(client, dst, len) != 0) return ErrnoError("connect", "captured destination");
  Fd accepted(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  if (!accepted) return ErrnoError("accept4", "127.0.0.1:15001");
  sockaddr_in orig{};
  socklen_t olen = sizeof(orig);
  if (::getsockopt(accepted.get(), SOL_IP, kSoOriginalDst, &orig, &olen) != 0) {
    return ErrnoError("getsockopt", "SO_ORIGINAL_DST");
  }
  return orig;
}

TEST_F(CaptureTest, V4ConnectIsRedirectedAndOriginalDestinationAnswered) {
  std::vector<uint64_t> before = Stats();
  InNetns([&]() -> absl::Status {
    ZM_ASSIGN_OR_RETURN(Fd listener, ListenOutbound());
    Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in dst = V4("198.51.100.7", 80);
    ZM_ASSIGN_OR_RETURN(sockaddr_in orig,
                        ConnectAndAsk(client.get(), reinterpret_cast<sockaddr*>(&dst), sizeof(dst),
                                      listener.get()));
    EXPECT_EQ(orig.sin_family, AF_INET);
    EXPECT_EQ(orig.sin_addr.s_addr, dst.sin_addr.s_addr);
    EXPECT_EQ(orig.sin_port, htons(80));
    EXPECT_EQ(OrigDstEntries(), 1u);
    return absl::OkStatus();
  });
  std::vector<uint64_t> after = Stats();
  EXPECT_EQ(after[ZM_R_MAP_UPDATE_FAILED], before[ZM_R_MAP_UPDATE_FAILED])
      << "socket storage or map update failed: connect escaped capture";
  EXPECT_EQ(after[ZM_R_OUT_REDIRECTED] - before[ZM_R_OUT_REDIRECTED], 1u);
  EXPECT_EQ(after[ZM_R_ORIGDST_RECORDED] - before[ZM_R_ORIGDST_RECORDED], 1u);
  EXPECT_EQ(after[ZM_R_ORIGDST_HIT] - before[ZM_R_ORIGDST_HIT], 1u);
  // Both ends are closed: the close callback removes the entry (asynchronously: TCP states).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (OrigDstEntries() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(OrigDstEntries(), 0u) << "zm_orig_dst entry left after close";
}

TEST_F(CaptureTest, V4MappedConnectOnV6SocketIsCaptured) {
  InNetns([&]() -> absl::Status {
    ZM_ASSIGN_OR_RETURN(Fd listener, ListenOutbound());
    Fd client(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in6 dst{};
    dst.sin6_family = AF_INET6;
    dst.sin6_port = htons(81);
    ::inet_pton(AF_INET6, "::ffff:198.51.100.7", &dst.sin6_addr);
    ZM_ASSIGN_OR_RETURN(sockaddr_in orig,
                        ConnectAndAsk(client.get(), reinterpret_cast<sockaddr*>(&dst), sizeof(dst),
                                      listener.get()));
    EXPECT_EQ(orig.sin_addr.s_addr, V4("198.51.100.7", 0).sin_addr.s_addr);
    EXPECT_EQ(orig.sin_port, htons(81));
    return absl::OkStatus();
  });
}

TEST_F(CaptureTest, LoopbackAndMarkedConnectsAreNotCaptured) {
  std::vector<uint64_t> before = Stats();
  InNetns([&]() -> absl::Status {
    ZM_ASSIGN_OR_RETURN(Fd listener, ListenOutbound());
    // Loopback: reaches 15001 directly, nothing recorded, so SO_ORIGINAL_DST has no answer.
    Fd local(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in lo = V4("127.0.0.1", ZM_PORT_OUTBOUND);
    auto r =
        ConnectAndAsk(local.get(), reinterpret_cast<sockaddr*>(&lo), sizeof(lo), listener.get());
    EXPECT_FALSE(r.ok()) << "loopback connect got an original destination";
    // ztunnel's own mark: left alone, so the unroutable address fails as it would.
    Fd marked(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int mark = ZM_MARK_ZTUNNEL;
    if (::setsockopt(marked.get(), SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) != 0) {
      return ErrnoError("setsockopt", "SO_MARK");
    }
    sockaddr_in dst = V4("198.51.100.7", 80);
    EXPECT_NE(::connect(marked.get(), reinterpret_cast<sockaddr*>(&dst), sizeof(dst)), 0);
    EXPECT_EQ(errno, ENETUNREACH);
    return absl::OkStatus();
  });
  std::vector<uint64_t> after = Stats();
  EXPECT_EQ(after[ZM_R_OUT_SKIP_LOOPBACK] - before[ZM_R_OUT_SKIP_LOOPBACK], 1u);
  EXPECT_EQ(after[ZM_R_OUT_SKIP_MARKED] - before[ZM_R_OUT_SKIP_MARKED], 1u);
  EXPECT_EQ(after[ZM_R_ORIGDST_MISS] - before[ZM_R_ORIGDST_MISS], 1u);
  EXPECT_EQ(after[ZM_R_OUT_REDIRECTED], before[ZM_R_OUT_REDIRECTED]);
}

TEST_F(CaptureTest, SpoofedMarkIsCapturedWhenZtunnelIsVerified) {
  // ztunnel is another process in another cgroup: this one only borrows its mark.
  zm_config cfg{ZM_ABI_VERSION, ZM_CFG_VERIFY_ZTUNNEL, ZM_MARK_ZTUNNEL,        ZM_MARK_DELIVERY,
                ZM_MARK_MASK,   /*ztunnel_tgid=*/1,    /*ztunnel_cgroup_id=*/1};
  ASSERT_TRUE(dp_->WriteConfig(cfg).ok());
  std::vector<uint64_t> before = Stats();
  InNetns([&]() -> absl::Status {
    ZM_ASSIGN_OR_RETURN(Fd listener, ListenOutbound());
    Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int mark = ZM_MARK_ZTUNNEL;
    if (::setsockopt(client.get(), SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) != 0) {
      return ErrnoError("setsockopt", "SO_MARK");
    }
    sockaddr_in dst = V4("198.51.100.7", 80);
    ZM_ASSIGN_OR_RETURN(sockaddr_in orig,
                        ConnectAndAsk(client.get(), reinterpret_cast<sockaddr*>(&dst), sizeof(dst),
                                      listener.get()));
    EXPECT_EQ(orig.sin_addr.s_addr, dst.sin_addr.s_addr);
    return absl::OkStatus();
  });
  std::vector<uint64_t> after = Stats();
  EXPECT_EQ(after[ZM_R_OUT_MARK_SPOOFED] - before[ZM_R_OUT_MARK_SPOOFED], 1u);
  EXPECT_EQ(after[ZM_R_OUT_REDIRECTED] - before[ZM_R_OUT_REDIRECTED], 1u);
  EXPECT_EQ(after[ZM_R_OUT_SKIP_MARKED], before[ZM_R_OUT_SKIP_MARKED]);
}

TEST_F(CaptureTest, PodCallingItsOwnIpIsRecordedAsBypassUntilClose) {
  ASSERT_TRUE(Shell("ip -n " + netns_ + " addr add 10.0.0.5/32 dev lo"));
  sockaddr_in own = V4("10.0.0.5", 8080);
  IpAddr pod_ip = IpAddr::FromV4(own.sin_addr.s_addr);
  ASSERT_TRUE(dp_->PutNetns(cookie_, zm_netns_val{ZM_NETNS_OUT, 1, own.sin_addr.s_addr}).ok());
  ASSERT_TRUE(dp_->PutPodIp(pod_ip, zm_pod_ip_val{cookie_, 1, ZM_NETNS_IN}).ok());
  std::vector<uint64_t> before = Stats();
  uint16_t client_port = 0;
  InNetns([&]() -> absl::Status {
    Fd server(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::bind(server.get(), reinterpret_cast<sockaddr*>(&own), sizeof(own)) != 0 ||
        ::listen(server.get(), 4) != 0) {
      return ErrnoError("bind/listen", "10.0.0.5:8080");
    }
    Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(client.get(), reinterpret_cast<sockaddr*>(&own), sizeof(own)) != 0) {
      return ErrnoError("connect", "10.0.0.5:8080");
    }
    sockaddr_in local{};
    socklen_t len = sizeof(local);
    ::getsockname(client.get(), reinterpret_cast<sockaddr*>(&local), &len);
    client_port = local.sin_port;
    auto bypass = PinnedMaps::Open(options_.pin_dir)->Bypass();
    if (!bypass.ok()) return bypass.status();
    EXPECT_EQ(bypass->size(), 1u);
    for (const auto& [tuple, value] : *bypass) {
      EXPECT_EQ(std::memcmp(tuple.daddr, pod_ip.bytes.data(), 16), 0);
      EXPECT_EQ(std::memcmp(tuple.saddr, pod_ip.bytes.data(), 16), 0);
      EXPECT_EQ(tuple.sport, client_port);
      EXPECT_EQ(tuple.dport, htons(8080));
      EXPECT_EQ(value.reason, static_cast<uint32_t>(ZM_R_BYPASS_OWN_IP));
    }
    return absl::OkStatus();
  });
  std::vector<uint64_t> after = Stats();
  EXPECT_EQ(after[ZM_R_OUT_SKIP_OWN_IP] - before[ZM_R_OUT_SKIP_OWN_IP], 1u);
  EXPECT_EQ(after[ZM_R_BYPASS_OWN_IP] - before[ZM_R_BYPASS_OWN_IP], 1u);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto entries = [&] { return PinnedMaps::Open(options_.pin_dir)->Bypass()->size(); };
  while (entries() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(entries(), 0u) << "zm_bypass entry left after close";
}

}  // namespace
}  // namespace zm::bpf
