// Cluster mode's hand-off of the API server's objects to the Agent (agent/cluster.h): the agent
// syncs before it takes the node lease, so snapshots are published before anyone follows them.
// Whatever was published before Follow() is in what Follow() returns, everything after goes to
// the sink, and nothing goes anywhere after Stop(). Against the fake API server (real wire
// format).
#include "agent/cluster.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "tests/common/kube/kube_test_util.h"
#include "tests/testutil/wait.h"

namespace zm::agent {
namespace {

using nlohmann::json;
using testutil::FakeKubeApiServer;
using testutil::WaitFor;
using Snap = std::shared_ptr<const k8s::ManifestSnapshot>;

std::set<std::string> PodNames(const Snap& s) {
  std::set<std::string> out;
  if (s) {
    for (const auto& p : s->pods) out.insert(p.name);
  }
  return out;
}

class ClusterModeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    ASSERT_TRUE(server_.Put(kube::testing::NamespaceJson(
                                "demo", {{"zmesh.io/dataplane-mode", "ambient"}}))
                    .ok());
    ASSERT_TRUE(server_.Put(kube::testing::PodJson("demo", "p0", {}, "198.18.1.10")).ok());
    ClusterOptions options;
    options.kube.server = server_.url();
    options.kube.source = "test";
    auto connected = ClusterMode::Connect(std::move(options));
    ASSERT_TRUE(connected.ok()) << connected.status();
    cluster_ = std::move(*connected);
    ASSERT_TRUE(cluster_->WaitForSync([] { return false; }));
  }
  void TearDown() override {
    if (cluster_) cluster_->Stop();
    server_.Stop();
  }

  void PutPod(const std::string& name, const std::string& ip) {
    ASSERT_TRUE(server_.Put(kube::testing::PodJson("demo", name, {}, ip)).ok());
  }
  // The newest objects the follower has: what Follow() returned, then each snapshot delivered.
  Snap Latest() {
    std::lock_guard lock(mu_);
    return latest_;
  }
  int Deliveries() {
    std::lock_guard lock(mu_);
    return deliveries_;
  }
  void Follow() {
    Snap initial = cluster_->Follow([this](Snap s) {
      std::lock_guard lock(mu_);
      latest_ = std::move(s);
      ++deliveries_;
    });
    std::lock_guard lock(mu_);
    if (deliveries_ == 0) latest_ = std::move(initial);
  }

  FakeKubeApiServer server_;
  std::unique_ptr<ClusterMode> cluster_;
  std::mutex mu_;
  Snap latest_;
  int deliveries_ = 0;
};

TEST_F(ClusterModeTest, AChangeBeforeFollowIsInWhatFollowReturnsOrComesAfter) {
  // Published while nobody follows (the agent waiting for the node lease).
  PutPod("p1", "198.18.1.11");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Follow();
  // No more changes: if the snapshot with p1 had been dropped, nothing would bring it back.
  EXPECT_TRUE(WaitFor([&] { return PodNames(Latest()).contains("p1"); }, std::chrono::seconds(5)))
      << "p1, created before Follow(), never reached the follower";
  EXPECT_TRUE(PodNames(Latest()).contains("p0"));
}

TEST_F(ClusterModeTest, ChangesAfterFollowReachTheSinkAndNothingAfterStop) {
  Follow();
  EXPECT_EQ(PodNames(Latest()), (std::set<std::string>{"p0"}));
  PutPod("p2", "198.18.1.12");
  ASSERT_TRUE(WaitFor([&] { return PodNames(Latest()).contains("p2"); }, std::chrono::seconds(5)))
      << "p2, created after Follow(), never reached the sink";
  EXPECT_GE(Deliveries(), 1);

  cluster_->Stop();
  const int delivered = Deliveries();
  PutPod("p3", "198.18.1.13");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(Deliveries(), delivered) << "a snapshot was delivered after Stop()";
  EXPECT_FALSE(PodNames(Latest()).contains("p3"));
}

TEST_F(ClusterModeTest, ConcurrentChangesWhileFollowingEndInTheServersState) {
  // Pods created while Follow() runs: the follower ends with all of them, whichever side of
  // the hand-off each landed on.
  std::thread writer([&] {
    for (int i = 0; i < 40; ++i) {
      PutPod("c" + std::to_string(i), "198.18.2." + std::to_string(10 + i));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  Follow();
  writer.join();
  EXPECT_TRUE(WaitFor([&] { return PodNames(Latest()).size() == 41; }, std::chrono::seconds(5)))
      << "the follower has " << PodNames(Latest()).size() << " of 41 pods";
}

}  // namespace
}  // namespace zm::agent
