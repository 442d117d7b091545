// The real sk_lookup program under BPF_PROG_TEST_RUN: the inbound decision table (steer to
// which socket / pass / drop) and the reason each decision is counted under.

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "bpf/reasons.h"
#include "bpf/zmesh.skel.h"
#include "common/base/fd.h"
#include "common/base/ip.h"
#include "tests/bpf/bpf_test_util.h"
#include "zmesh/abi.h"

namespace zm::bpf {
namespace {

constexpr uint32_t kPodIndex = 7;
constexpr uint64_t kPodCookie = 0x1234;

struct SkelDeleter {
  void operator()(zmesh_bpf* s) const { zmesh_bpf__destroy(s); }
};

IpAddr Ip(const char* text) { return IpAddr::Parse(text).value(); }

// A TCP listener on loopback and its SO_COOKIE (what ctx_out reports when it is selected).
struct Listener {
  Fd fd;
  uint64_t cookie = 0;
};

Listener Listen(int family) {
  Listener l;
  l.fd = Fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_storage ss{};
  socklen_t len;
  if (family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(*sin);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = in6addr_loopback;
    len = sizeof(*sin6);
  }
  if (::bind(l.fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      ::listen(l.fd.get(), 8) != 0) {
    ADD_FAILURE() << "bind/listen: " << std::strerror(errno);
    return l;
  }
  l.cookie = test_util::SocketCookie(l.fd.get());
  return l;
}

enum class Sock { kNone, kV4, kV6 };

struct Case {
  std::string name;
  int protocol;
  const char* remote;
  uint16_t remote_port;
  const char* local;
  uint16_t local_port;
  int want_verdict;  // SK_PASS / SK_DROP
  Sock want_socket;
  uint32_t want_reason;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::vector<Case> Cases() {
  return {
      {"SteerV4", IPPROTO_TCP, "10.9.0.1", 40000, "10.0.0.5", 80, SK_PASS, Sock::kV4,
       ZM_R_IN_STEERED},
      {"PassUdp", IPPROTO_UDP, "10.9.0.1", 40000, "10.0.0.5", 53, SK_PASS, Sock::kNone,
       ZM_R_IN_PASS_NOT_TCP},
      {"PassHbonePort", IPPROTO_TCP, "10.9.0.1", 40000, "10.0.0.5", 15008, SK_PASS, Sock::kNone,
       ZM_R_IN_PASS_ZTUNNEL_PORT},
      {"PassInboundPort", IPPROTO_TCP, "10.9.0.1", 40000, "10.0.0.5", 15006, SK_PASS, Sock::kNone,
       ZM_R_IN_PASS_ZTUNNEL_PORT},
      {"PassLoopbackV4", IPPROTO_TCP, "127.0.0.1", 40000, "127.0.0.1", 80, SK_PASS, Sock::kNone,
       ZM_R_IN_PASS_LOOPBACK},
      {"PassLoopbackV6", IPPROTO_TCP, "::1", 40000, "::1", 80, SK_PASS, Sock::kNone,
       ZM_R_IN_PASS_LOOPBACK},
      {"PassNotPodIp", IPPROTO_TCP, "10.9.0.1", 40000, "10.0.0.99", 80, SK_PASS, Sock::kNone,
       ZM_R_IN_PASS_NOT_POD_IP},
      {"PassBypassTuple", IPPROTO_TCP, "10.9.0.1", 41000, "10.0.0.5", 8080, SK_PASS, Sock::kNone,
       ZM_R_IN_PASS_BYPASS},
      {"SteerBypassOtherSport", IPPROTO_TCP, "10.9.0.1", 41001, "10.0.0.5", 8080, SK_PASS,
       Sock::kV4, ZM_R_IN_STEERED},
      {"PassExcludedInboundPort", IPPROTO_TCP, "10.9.0.1", 40000, "10.0.0.5", 9090, SK_PASS,
       Sock::kNone, ZM_R_IN_PASS_EXCLUDED_PORT},
      {"SteerExcludedOutboundOnly", IPPROTO_TCP, "10.9.0.1", 40000, "10.0.0.5", 9091, SK_PASS,
       Sock::kV4, ZM_R_IN_STEERED},
      {"DropNoListener", IPPROTO_TCP, "10.9.0.1", 40000, "10.0.0.6", 80, SK_DROP, Sock::kNone,
       ZM_R_IN_DROP_NO_LISTENER},
      {"SteerV6", IPPROTO_TCP, "fd00::9", 40000, "fd00::5", 80, SK_PASS, Sock::kV6,
       ZM_R_IN_STEERED},
      // A v4-only listener cannot take a v6 SYN: bpf_sk_assign fails (EAFNOSUPPORT).
      {"DropAssignFailedV6ToV4Listener", IPPROTO_TCP, "fd00::9", 40000, "fd00::6", 80, SK_DROP,
       Sock::kNone, ZM_R_IN_DROP_ASSIGN_FAILED},
  };
}

class SkLookupTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root: loads BPF programs (run as root)";
    skel_.reset(zmesh_bpf__open());
    ASSERT_TRUE(skel_) << "zmesh_bpf__open: " << std::strerror(errno);
    // A private copy of every map: nothing of this test lands in /sys/fs/bpf.
    bpf_map* map;
    bpf_object__for_each_map(map, skel_->obj) bpf_map__set_pin_path(map, nullptr);
    ASSERT_EQ(zmesh_bpf__load(skel_.get()), 0) << "load (verifier log above)";
    v4_ = Listen(AF_INET);
    v6_ = Listen(AF_INET6);
    ASSERT_NO_FATAL_FAILURE(Populate());
  }

  void Put(bpf_map* map, const void* key, const void* value) {
    ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(map), key, value, BPF_ANY), 0)
        << bpf_map__name(map) << ": " << std::strerror(errno);
  }

  void PutPod(const char* ip) {
    zm_pod_ip_val v{kPodCookie, kPodIndex, ZM_NETNS_IN | ZM_NETNS_OUT};
    Put(skel_->maps.zm_pod_ip, Ip(ip).bytes.data(), &v);
  }

  void PutListener(const char* ip, const Listener& l) {
    zm_listener_key k{};
    std::memcpy(k.ip, Ip(ip).bytes.data(), 16);
    k.role = ZM_ROLE_INBOUND;
    uint64_t fd = l.fd.get();
    Put(skel_->maps.zm_listeners, &k, &fd);
  }

  void PutExcluded(uint16_t port, uint8_t direction) {
    zm_port_key k{kPodIndex, htons(port), direction, 0};
    uint32_t one = 1;
    Put(skel_->maps.zm_ports_excl, &k, &one);
  }

  // Pods 10.0.0.5 and fd00::5 have listeners; 10.0.0.6 has none; fd00::6 has a v4 one.
  void Populate() {
    for (const char* ip : {"10.0.0.5", "10.0.0.6", "fd00::5", "fd00::6"}) PutPod(ip);
    PutListener("10.0.0.5", v4_);
    PutListener("fd00::5", v6_);
    PutListener("fd00::6", v4_);
    PutExcluded(9090, ZM_DIR_INBOUND);
    PutExcluded(9091, ZM_DIR_OUTBOUND);
    zm_tuple t{};
    std::memcpy(t.saddr, Ip("10.9.0.1").bytes.data(), 16);
    std::memcpy(t.daddr, Ip("10.0.0.5").bytes.data(), 16);
    t.sport = htons(41000);
    t.dport = htons(8080);
    zm_bypass_val v{1, ZM_R_BYPASS_NODE, 0};
    Put(skel_->maps.zm_bypass, &t, &v);
  }

  std::vector<uint64_t> Stats() {
    int cpus = libbpf_num_possible_cpus();
    std::vector<uint64_t> totals(ZM_R_MAX), per_cpu(cpus);
    for (uint32_t r = 0; r < ZM_R_MAX; ++r) {
      EXPECT_EQ(bpf_map_lookup_elem(bpf_map__fd(skel_->maps.zm_stats), &r, per_cpu.data()), 0);
      for (uint64_t n : per_cpu) totals[r] += n;
    }
    return totals;
  }

  std::unique_ptr<zmesh_bpf, SkelDeleter> skel_;
  Listener v4_, v6_;
};

bpf_sk_lookup Context(const Case& c) {
  bpf_sk_lookup ctx{};
  IpAddr remote = Ip(c.remote), local = Ip(c.local);
  ctx.protocol = c.protocol;
  ctx.remote_port = htons(c.remote_port);  // network order
  ctx.local_port = c.local_port;           // host order
  if (remote.is_v4()) {
    ctx.family = AF_INET;
    ctx.remote_ip4 = remote.v4_net_order();
    ctx.local_ip4 = local.v4_net_order();
  } else {
    ctx.family = AF_INET6;
    std::memcpy(ctx.remote_ip6, remote.bytes.data(), 16);
    std::memcpy(ctx.local_ip6, local.bytes.data(), 16);
  }
  return ctx;
}

TEST_P(SkLookupTest, Decides) {
  const Case& c = GetParam();
  bpf_sk_lookup in = Context(c), out{};
  LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &in, .ctx_out = &out, .ctx_size_in = sizeof(in),
              .ctx_size_out = sizeof(out));
  std::vector<uint64_t> before = Stats();
  ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.zm_sk_lookup), &opts), 0)
      << std::strerror(errno);
  std::vector<uint64_t> after = Stats();

  EXPECT_EQ(static_cast<int>(opts.retval), c.want_verdict);
  uint64_t want_cookie = c.want_socket == Sock::kV4   ? v4_.cookie
                         : c.want_socket == Sock::kV6 ? v6_.cookie
                                                      : 0;
  EXPECT_EQ(out.cookie, want_cookie) << "selected socket";
  for (uint32_t r = 0; r < ZM_R_MAX; ++r) {
    EXPECT_EQ(after[r] - before[r], r == c.want_reason ? 1u : 0u) << "counter " << ReasonName(r);
  }
}

INSTANTIATE_TEST_SUITE_P(DecisionTable, SkLookupTest, ::testing::ValuesIn(Cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace zm::bpf
