// The enrollment order is a contract (DESIGN-ebpf "Enroll"): these tests pin it down with
// fakes of the maps, ztunnel and the pod netns, including failures half-way.
#include "agent/enroller.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include "tests/testutil/fake_datapath.h"

namespace zm::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class FakeZtunnel : public ZtunnelLink {
 public:
  explicit FakeZtunnel(std::vector<std::string>& ops) : ops_(ops) {}
  bool connected = true;
  bool ack_without_listener = false;
  std::string refuse;  // uid to refuse
  bool drop_on_add = false;  // the next Add times out and drops the connection
  bool Connected() const override { return connected; }
  absl::StatusOr<std::vector<Fd>> Add(const WorkloadRef& w, int netns_fd) override {
    ops_.push_back("ZtunnelAdd " + w.uid);
    if (drop_on_add) {
      connected = false;
      return absl::DeadlineExceededError("ztunnel did not answer");
    }
    if (netns_fd < 0) return absl::InvalidArgumentError("no netns fd");
    if (w.uid == refuse) return absl::FailedPreconditionError("ztunnel refused");
    std::vector<Fd> out;
    if (!ack_without_listener) out.emplace_back(socket(AF_INET, SOCK_STREAM, 0));
    return out;
  }
  absl::Status Del(const std::string& uid) override {
    ops_.push_back("ZtunnelDel " + uid);
    return absl::OkStatus();
  }
  absl::Status SnapshotSent() override {
    ops_.push_back("ZtunnelSnapshotSent");
    return absl::OkStatus();
  }

 private:
  std::vector<std::string>& ops_;
};

class FakePodNetns : public PodNetns {
 public:
  explicit FakePodNetns(std::vector<std::string>& ops) : ops_(ops) {}
  std::map<std::string, uint64_t> cookies;  // netns path -> cookie; absent = gone
  absl::StatusOr<Fd> Open(const std::string& netns) override {
    if (!cookies.count(netns)) return absl::NotFoundError("open netns " + netns + ": ENOENT");
    return Fd(socket(AF_INET, SOCK_DGRAM, 0));  // any fd stands in for the netns
  }
  absl::StatusOr<uint64_t> Cookie(int) override { return next_cookie_; }
  absl::Status InstallRouting(int) override {
    ops_.push_back("InstallRouting");
    return absl::OkStatus();
  }
  uint64_t next_cookie_ = 0;

 private:
  std::vector<std::string>& ops_;
};

class EnrollerTest : public ::testing::Test {
 protected:
  EnrollerTest() : zt_(dp_.ops), netns_(dp_.ops), enroller_(dp_, zt_, netns_) {}

  EnrollTarget Target(const std::string& uid, const std::string& ip) {
    EnrollTarget t;
    t.ref = {.uid = uid, .name = "pod-" + uid, .ns = "demo", .service_account = "default"};
    t.netns = "/var/run/netns/" + uid;
    t.ips = {*IpAddr::Parse(ip)};
    netns_.cookies[t.netns] = 1000 + netns_.cookies.size();
    return t;
  }
  void CookieFor(const EnrollTarget& t) { netns_.next_cookie_ = netns_.cookies[t.netns]; }

  testutil::FakeDatapath dp_;
  FakeZtunnel zt_;
  FakePodNetns netns_;
  Enroller enroller_;
};

TEST_F(EnrollerTest, EnrollsInTheContractOrder) {
  auto t = Target("u1", "198.18.1.10");
  t.exclude_outbound_ports = {9090};
  CookieFor(t);
  enroller_.Reconcile({t});
  EXPECT_THAT(dp_.ops,
              ElementsAre("ZtunnelAdd u1", "PutListener 198.18.1.10", "InstallRouting",
                          "PutPodName demo/pod-u1/u1", "PutPodIp 198.18.1.10",
                          "PutExcludedPort " + std::to_string(htons(9090)), "PutNetns 1000",
                          "AttachSkLookup 1000"));
  EXPECT_EQ(enroller_.enrolled_count(), 1u);
  ASSERT_EQ(dp_.netns.count(1000), 1u);
  EXPECT_EQ(dp_.netns[1000].flags, ZM_NETNS_OUT | ZM_NETNS_IN | ZM_NETNS_SRC_PRESERVE);
  EXPECT_EQ(dp_.netns[1000].ip4, IpAddr::Parse("198.18.1.10")->v4_net_order());
}

TEST_F(EnrollerTest, UnenrollsInReverseOrderWhenNoLongerSelected) {
  auto t = Target("u1", "198.18.1.10");
  CookieFor(t);
  enroller_.Reconcile({t});
  dp_.ops.clear();
  enroller_.Reconcile({});
  EXPECT_THAT(dp_.ops, ElementsAre("DetachSkLookup 1000", "DeleteNetns 1000",
                                   "DeleteExcludedPorts 1", "DeletePodIp 198.18.1.10",
                                   "DeletePodName 1", "DeleteListener 198.18.1.10",
                                   "ZtunnelDel u1"));
  EXPECT_THAT(dp_.netns, IsEmpty());
  EXPECT_THAT(dp_.pod_ips, IsEmpty());
  EXPECT_THAT(dp_.links, IsEmpty());
  EXPECT_THAT(dp_.listeners, IsEmpty());
  EXPECT_EQ(enroller_.enrolled_count(), 0u);
}

TEST_F(EnrollerTest, WithoutZtunnelNothingIsWrittenAndThePodIsPending) {
  zt_.connected = false;
  auto t = Target("u1", "198.18.1.10");
  CookieFor(t);
  enroller_.Reconcile({t});
  EXPECT_THAT(dp_.ops, IsEmpty());
  auto st = enroller_.Status();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_FALSE(st[0].enrolled);
  EXPECT_NE(st[0].error.find("waiting for ztunnel"), std::string::npos);

  zt_.connected = true;
  enroller_.OnZtunnelConnected();
  EXPECT_EQ(dp_.ops.front(), "ZtunnelSnapshotSent");
  EXPECT_EQ(enroller_.enrolled_count(), 1u);
  EXPECT_TRUE(enroller_.snapshot_sent());
}

TEST_F(EnrollerTest, AFailureHalfWayRollsEverythingBackAndRetries) {
  auto t = Target("u1", "198.18.1.10");
  CookieFor(t);
  dp_.fail_on = "PutNetns";
  enroller_.Reconcile({t});
  EXPECT_EQ(enroller_.enrolled_count(), 0u);
  EXPECT_THAT(dp_.pod_ips, IsEmpty());
  EXPECT_THAT(dp_.names, IsEmpty());
  EXPECT_THAT(dp_.listeners, IsEmpty());
  EXPECT_THAT(dp_.links, IsEmpty());
  EXPECT_EQ(dp_.ops.back(), "ZtunnelDel u1");
  auto st = enroller_.Status();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_NE(st[0].error.find("injected failure in PutNetns"), std::string::npos);
  // The next reconcile retries and succeeds.
  enroller_.Reconcile({t});
  EXPECT_EQ(enroller_.enrolled_count(), 1u);
  EXPECT_EQ(dp_.netns.size(), 1u);
}

TEST_F(EnrollerTest, AnAckWithoutListenerIsAnError) {
  zt_.ack_without_listener = true;
  auto t = Target("u1", "198.18.1.10");
  CookieFor(t);
  enroller_.Reconcile({t});
  EXPECT_EQ(enroller_.enrolled_count(), 0u);
  EXPECT_THAT(dp_.netns, IsEmpty());
  EXPECT_NE(enroller_.Status()[0].error.find("without its inbound listener"), std::string::npos);
}

TEST_F(EnrollerTest, ZtunnelRefusalLeavesNoTrace) {
  zt_.refuse = "u1";
  auto t = Target("u1", "198.18.1.10");
  CookieFor(t);
  enroller_.Reconcile({t});
  EXPECT_THAT(dp_.netns, IsEmpty());
  EXPECT_THAT(dp_.pod_ips, IsEmpty());
  EXPECT_THAT(dp_.listeners, IsEmpty());
}

TEST_F(EnrollerTest, AMissingNetnsIsPendingWithTheReason) {
  auto t = Target("u1", "198.18.1.10");
  netns_.cookies.erase(t.netns);
  enroller_.Reconcile({t});
  EXPECT_THAT(dp_.ops, IsEmpty());
  EXPECT_NE(enroller_.Status()[0].error.find("ENOENT"), std::string::npos);
}

TEST_F(EnrollerTest, AChangedPodIsReEnrolled) {
  auto t = Target("u1", "198.18.1.10");
  CookieFor(t);
  enroller_.Reconcile({t});
  t.ips = {*IpAddr::Parse("198.18.1.11")};
  enroller_.Reconcile({t});
  EXPECT_EQ(dp_.pod_ips.count(*IpAddr::Parse("198.18.1.10")), 0u);
  EXPECT_EQ(dp_.pod_ips.count(*IpAddr::Parse("198.18.1.11")), 1u);
  EXPECT_EQ(enroller_.enrolled_count(), 1u);
}

TEST_F(EnrollerTest, ReconnectResendsEveryPodThenSnapshot) {
  auto a = Target("a", "198.18.1.10");
  CookieFor(a);
  enroller_.Reconcile({a});
  auto b = Target("b", "198.18.1.11");
  CookieFor(b);
  enroller_.Reconcile({a, b});
  dp_.ops.clear();
  enroller_.OnZtunnelDisconnected();
  enroller_.OnZtunnelConnected();
  EXPECT_THAT(dp_.ops, ElementsAre("ZtunnelAdd a", "PutListener 198.18.1.10", "ZtunnelAdd b",
                                   "PutListener 198.18.1.11", "ZtunnelSnapshotSent"));
}

TEST_F(EnrollerTest, RecoverAdoptsWantedPodsWithoutTouchingThem) {
  auto t = Target("u1", "198.18.1.10");
  CookieFor(t);
  enroller_.Reconcile({t});
  // A new agent process: a fresh enroller over the same (pinned) maps.
  Enroller restarted(dp_, zt_, netns_);
  dp_.ops.clear();
  ASSERT_TRUE(restarted.Recover({t}).ok());
  EXPECT_THAT(dp_.ops, IsEmpty());
  EXPECT_EQ(restarted.enrolled_count(), 1u);
  restarted.Reconcile({t});
  EXPECT_THAT(dp_.ops, IsEmpty());
}

TEST_F(EnrollerTest, RecoverUnenrollsPodsNoLongerWantedAndCollectsOrphans) {
  auto t = Target("u1", "198.18.1.10");
  CookieFor(t);
  enroller_.Reconcile({t});
  // Orphans as a crash between two steps would leave them.
  dp_.pod_ips[*IpAddr::Parse("198.18.1.99")] = {.netns_cookie = 4242, .pod_index = 9};
  dp_.links.insert(4242);
  Enroller restarted(dp_, zt_, netns_);
  ASSERT_TRUE(restarted.Recover({}).ok());
  EXPECT_EQ(restarted.enrolled_count(), 0u);
  EXPECT_THAT(dp_.netns, IsEmpty());
  EXPECT_THAT(dp_.pod_ips, IsEmpty());
  EXPECT_THAT(dp_.links, IsEmpty());
  EXPECT_THAT(dp_.names, IsEmpty());
}

TEST_F(EnrollerTest, AZtunnelDroppedDuringReplayDoesNotUnenrollTheOthers) {
  auto a = Target("a", "198.18.1.10");
  CookieFor(a);
  enroller_.Reconcile({a});
  auto b = Target("b", "198.18.1.11");
  CookieFor(b);
  enroller_.Reconcile({a, b});
  zt_.drop_on_add = true;
  enroller_.OnZtunnelConnected();
  // The pod whose Add timed out is rolled back for a retry; the other keeps its capture.
  EXPECT_EQ(enroller_.enrolled_count(), 1u);
  EXPECT_EQ(dp_.netns.size(), 1u);
  EXPECT_FALSE(enroller_.snapshot_sent());
}

TEST_F(EnrollerTest, RecoverCollectsExcludedPortsOfAFreeIndex) {
  // A crash after the name and the excluded ports but before zm_netns.
  dp_.names[9] = "demo/x/u9";
  dp_.excluded.insert({9, htons(22), ZM_DIR_OUTBOUND});
  Enroller restarted(dp_, zt_, netns_);
  ASSERT_TRUE(restarted.Recover({}).ok());
  EXPECT_THAT(dp_.names, IsEmpty());
  EXPECT_THAT(dp_.excluded, IsEmpty()) << "the next pod given index 9 must not inherit port 22";
}

TEST_F(EnrollerTest, PodIndexesAreReusedAfterRelease) {
  auto a = Target("a", "198.18.1.10");
  CookieFor(a);
  enroller_.Reconcile({a});
  EXPECT_EQ(dp_.netns.begin()->second.pod_index, 1u);
  enroller_.Reconcile({});
  auto b = Target("b", "198.18.1.11");
  CookieFor(b);
  enroller_.Reconcile({b});
  EXPECT_EQ(dp_.netns.begin()->second.pod_index, 1u);
}

}  // namespace
}  // namespace zm::agent
