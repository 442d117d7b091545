// A node's ztunnel gets only identities of the pods scheduled on that node, from the
// manifests as they are at the time of the call.
#include "ca/node_authorizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/ca/ca_test_support.h"

namespace zm::ca {
namespace {

using ::testing::HasSubstr;
using testing::Id;
using testing::TempDir;
using testing::WriteFile;

class ManifestNodeAuthorizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(dir_ / "m/pods.yaml", testing::kManifests);
    auto a = ManifestNodeAuthorizer::Open(dir_ / "m", "cluster.local");
    ASSERT_TRUE(a.ok()) << a.status();
    authz_ = std::move(*a);
  }
  TempDir dir_{"zmesh-node-authz"};
  std::unique_ptr<ManifestNodeAuthorizer> authz_;
};

TEST_F(ManifestNodeAuthorizerTest, AnotherNodesPodIsRefusedNamingTheNode) {
  absl::Status st = authz_->Authorize("node1", Id("demo", "server"));
  ASSERT_TRUE(absl::IsPermissionDenied(st)) << st;
  EXPECT_EQ(st.message(), "no running or pending pod on node node1 runs as ns/demo/sa/server");
}

TEST_F(ManifestNodeAuthorizerTest, APodOfTheNodeIsAllowed) {
  EXPECT_TRUE(authz_->Authorize("node1", Id("demo", "client")).ok());
  EXPECT_TRUE(authz_->Authorize("node2", Id("demo", "server")).ok());
}

TEST_F(ManifestNodeAuthorizerTest, AFinishedPodGivesNoIdentity) {
  EXPECT_TRUE(absl::IsPermissionDenied(authz_->Authorize("node1", Id("demo", "batch"))));
}

TEST_F(ManifestNodeAuthorizerTest, TheSameServiceAccountInAnotherNamespaceIsRefused) {
  EXPECT_TRUE(absl::IsPermissionDenied(authz_->Authorize("node1", Id("other", "client"))));
}

TEST_F(ManifestNodeAuthorizerTest, AnotherTrustDomainIsRefused) {
  absl::Status st = authz_->Authorize("node1", Id("demo", "client", "evil.example"));
  ASSERT_TRUE(absl::IsPermissionDenied(st)) << st;
  EXPECT_THAT(st.message(), HasSubstr("outside trust domain cluster.local"));
}

TEST_F(ManifestNodeAuthorizerTest, ACallerWithoutANodeIsRefused) {
  EXPECT_TRUE(absl::IsPermissionDenied(authz_->Authorize("", Id("demo", "client"))));
}

TEST_F(ManifestNodeAuthorizerTest, APodMovingNodesCountsFromTheNextCall) {
  std::string moved = testing::kManifests;
  moved.replace(moved.find("nodeName: node2"), 15, "nodeName: node1");
  WriteFile(dir_ / "m/pods.yaml", moved);
  EXPECT_TRUE(authz_->Authorize("node1", Id("demo", "server")).ok());
  EXPECT_TRUE(absl::IsPermissionDenied(authz_->Authorize("node2", Id("demo", "server"))));
}

TEST_F(ManifestNodeAuthorizerTest, AnUnreadableDirectoryRefusesEveryone) {
  std::filesystem::remove_all(dir_ / "m");
  absl::Status st = authz_->Authorize("node1", Id("demo", "client"));
  EXPECT_TRUE(absl::IsUnavailable(st)) << st;
}

TEST(ManifestNodeAuthorizerOpenTest, AMissingDirectoryIsNamed) {
  auto a = ManifestNodeAuthorizer::Open("/nonexistent/zmesh-manifests", "cluster.local");
  ASSERT_FALSE(a.ok());
  EXPECT_THAT(a.status().message(), HasSubstr("/nonexistent/zmesh-manifests"));
}

}  // namespace
}  // namespace zm::ca
