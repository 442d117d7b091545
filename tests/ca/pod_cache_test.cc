// PodCache against the fake API server: a ztunnel of node N gets only identities of the pods
// the API says run on N, as the pods change; nothing before the first list (fail closed).
#include "ca/pod_cache.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/ca/ca_test_support.h"
#include "tests/ca/kube_test_support.h"
#include "tests/testutil/wait.h"

namespace zm::ca {
namespace {

using ::testing::HasSubstr;
using testing::Id;
using testing::PodJson;
using testutil::WaitFor;

class PodCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(api_.Start().ok());
    testing::PutCluster(api_);
    client_ = testing::KubeClientFor(api_, "");
    ASSERT_NE(client_, nullptr);
    pods_ = std::make_unique<PodCache>(
        *client_, "cluster.local",
        kube::InformerOptions{.backoff = {.initial = std::chrono::milliseconds(10),
                                          .max = std::chrono::milliseconds(50)}});
  }
  void StartSynced() {
    pods_->Start();
    ASSERT_TRUE(pods_->WaitForSync(std::chrono::seconds(10)));
  }

  testutil::FakeKubeApiServer api_;
  std::unique_ptr<kube::KubeClient> client_;
  std::unique_ptr<PodCache> pods_;
};

// --- Refusals ---

TEST_F(PodCacheTest, BeforeTheFirstListEverythingIsUnavailable) {
  api_.FailRequests(503, -1);
  pods_->Start();
  absl::Status st = pods_->Authorize("node1", Id("demo", "client"));
  ASSERT_TRUE(absl::IsUnavailable(st)) << st;
  EXPECT_EQ(st.message(), "the pod cache has not synced with the API yet");
  EXPECT_TRUE(absl::IsUnavailable(pods_->NodeOfPod("demo", "client", "uid-client").status()));
  api_.FailRequests(0, 0);
  ASSERT_TRUE(pods_->WaitForSync(std::chrono::seconds(10)));
  EXPECT_TRUE(pods_->Authorize("node1", Id("demo", "client")).ok());
}

TEST_F(PodCacheTest, AnotherNodesPodIsDeniedNamingNodeAndIdentity) {
  StartSynced();
  absl::Status st = pods_->Authorize("node1", Id("demo", "server"));
  ASSERT_TRUE(absl::IsPermissionDenied(st)) << st;
  EXPECT_EQ(st.message(), "no running or pending pod on node node1 runs as ns/demo/sa/server");
}

TEST_F(PodCacheTest, FinishedUnscheduledAndForeignPodsGiveNothing) {
  ASSERT_TRUE(api_.Put(PodJson("demo", "failed", "failed", "node1", "Failed")).ok());
  ASSERT_TRUE(api_.Put(PodJson("demo", "unscheduled", "unscheduled", "", "Pending")).ok());
  StartSynced();
  EXPECT_TRUE(absl::IsPermissionDenied(pods_->Authorize("node1", Id("demo", "batch"))));
  EXPECT_TRUE(absl::IsPermissionDenied(pods_->Authorize("node1", Id("demo", "failed"))));
  EXPECT_TRUE(absl::IsPermissionDenied(pods_->Authorize("", Id("demo", "unscheduled"))));
  EXPECT_TRUE(absl::IsPermissionDenied(pods_->Authorize("node1", Id("other", "client"))));
  absl::Status st = pods_->Authorize("node1", Id("demo", "client", "evil.example"));
  ASSERT_TRUE(absl::IsPermissionDenied(st)) << st;
  EXPECT_THAT(st.message(), HasSubstr("outside trust domain cluster.local"));
}

TEST_F(PodCacheTest, TheNodeOfAPodThatIsGoneOrUnknownOrUnscheduledIsRefused) {
  ASSERT_TRUE(api_.Put(PodJson("demo", "unscheduled", "unscheduled", "", "Pending")).ok());
  StartSynced();
  auto recreated = pods_->NodeOfPod("zmesh-system", "ztunnel-node1", "uid-of-an-older-pod");
  ASSERT_TRUE(absl::IsUnauthenticated(recreated.status())) << recreated.status();
  EXPECT_EQ(recreated.status().message(),
            "the token is bound to pod zmesh-system/ztunnel-node1 uid uid-of-an-older-pod, which "
            "is gone (the pod now has uid uid-ztunnel-node1)");
  auto unknown = pods_->NodeOfPod("zmesh-system", "ztunnel-node9", "uid-ztunnel-node9");
  ASSERT_TRUE(absl::IsUnavailable(unknown.status())) << unknown.status();
  EXPECT_EQ(unknown.status().message(), "pod zmesh-system/ztunnel-node9 is not in the pod cache");
  auto unscheduled = pods_->NodeOfPod("demo", "unscheduled", "uid-unscheduled");
  EXPECT_TRUE(absl::IsPermissionDenied(unscheduled.status())) << unscheduled.status();
}

TEST_F(PodCacheTest, APodThatFinishesOrIsDeletedNoLongerCounts) {
  StartSynced();
  ASSERT_TRUE(pods_->Authorize("node1", Id("demo", "client")).ok());
  ASSERT_TRUE(api_.Put(PodJson("demo", "client", "client", "node1", "Succeeded")).ok());
  EXPECT_TRUE(WaitFor(
      [&] { return absl::IsPermissionDenied(pods_->Authorize("node1", Id("demo", "client"))); }));
  ASSERT_TRUE(pods_->Authorize("node2", Id("demo", "server")).ok());
  ASSERT_TRUE(api_.Delete("v1", "Pod", "demo", "server").ok());
  EXPECT_TRUE(WaitFor(
      [&] { return absl::IsPermissionDenied(pods_->Authorize("node2", Id("demo", "server"))); }));
}

// --- Allowed ---

TEST_F(PodCacheTest, APodOfTheNodeIsAllowedAsLongAsOneRuns) {
  StartSynced();
  EXPECT_TRUE(pods_->Authorize("node1", Id("demo", "client")).ok());
  EXPECT_TRUE(pods_->Authorize("node2", Id("demo", "server")).ok());
  auto node = pods_->NodeOfPod("zmesh-system", "ztunnel-node2", "uid-ztunnel-node2");
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(*node, "node2");
  // Two replicas on node1; one leaves, the other still counts.
  ASSERT_TRUE(api_.Put(PodJson("demo", "client-2", "client", "node1", "")).ok());
  ASSERT_TRUE(api_.Delete("v1", "Pod", "demo", "client").ok());
  ASSERT_TRUE(WaitFor([&] {
    return absl::IsUnavailable(pods_->NodeOfPod("demo", "client", "uid-client").status());
  }));
  EXPECT_TRUE(pods_->Authorize("node1", Id("demo", "client")).ok());
  // A pod scheduled later counts from then on.
  ASSERT_TRUE(api_.Put(PodJson("late", "job", "runner", "node2", "Pending")).ok());
  EXPECT_TRUE(WaitFor([&] { return pods_->Authorize("node2", Id("late", "runner")).ok(); }));
}

}  // namespace
}  // namespace zm::ca
