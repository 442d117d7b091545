// zmesh-ca in Kubernetes mode, in-process on 127.0.0.1: the fake API server (TokenReview, pods,
// the root Secret), KubeMode wired into ClusterCaServer as main.cc does, and ztunnel's real CA
// client over TLS sending each caller's token. Every refusal comes back with its code and reason;
// then what each caller may get.
#include "ca/kube_mode.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>

#include <mutex>

#include "ca/cluster_server.h"
#include "tests/ca/ca_test_support.h"
#include "tests/ca/kube_test_support.h"
#include "tests/testutil/wait.h"
#include "ztunnel/identity/ca_client.h"

namespace zm::ca {
namespace {

using testing::Csr;
using ::testing::HasSubstr;
using testing::PodJson;
using testing::ServiceAccountReview;
using testing::Unauthenticated;
using testing::ZtunnelReview;
using testutil::WaitFor;
using namespace std::chrono_literals;

// What the `ca` logger writes while it lives (messages only). Attached before the server
// starts and detached after it stopped (the fixture's first member), so no thread logs while the
// logger's sinks change.
class CaLogCapture {
 public:
  CaLogCapture() { Log("ca").sinks().push_back(sink_); }
  ~CaLogCapture() { std::erase(Log("ca").sinks(), sink_); }
  std::string text() { return sink_->text(); }

 private:
  class Sink final : public spdlog::sinks::base_sink<std::mutex> {
   public:
    std::string text() {
      std::lock_guard lock(mutex_);
      return text_;
    }

   protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
      text_.append(msg.payload.data(), msg.payload.size());
      text_ += '\n';
    }
    void flush_() override {}

   private:
    std::string text_;
  };
  std::shared_ptr<Sink> sink_ = std::make_shared<Sink>();
};

class KubeModeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(api_.Start().ok());
    testing::PutCluster(api_);
    reviews_.Set("tok-zt1", ZtunnelReview("node1"));
    reviews_.Set("tok-zt2", ZtunnelReview("node2"));
    reviews_.Set("tok-waypoint", ServiceAccountReview("demo", "waypoint", "waypoint"));
    client_ = testing::KubeClientFor(api_, "zmesh-ca-sa-token");
    ASSERT_NE(client_, nullptr);
    auto mode = KubeMode::Start(*client_, {.sync_timeout = 10s});
    ASSERT_TRUE(mode.ok()) << mode.status();
    mode_ = std::move(*mode);
    ASSERT_TRUE(mode_->pods().synced());
    auto server = ClusterCaServer::Start(mode_->root(), mode_->authenticator(), mode_->pods(),
                                         {.listen = "127.0.0.1:0"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    testing::WriteFile(dir_ / "root.pem", mode_->root().RootPem());
  }

  absl::StatusOr<std::vector<std::string>> Fetch(const std::string& token, std::string_view ns,
                                                 std::string_view sa) {
    testing::WriteFile(dir_ / "token", token + "\n");
    auto client = ztunnel::GrpcCaClient::Create(StrCat("127.0.0.1:", server_->port()),
                                                {.root_cert_file = dir_ / "root.pem",
                                                 .token_file = dir_ / "token",
                                                 .tls_server_name = "zmesh-ca.zmesh-system.svc",
                                                 .deadline = 10s});
    if (!client.ok()) return client.status();
    return (*client)->Fetch(Csr(ns, sa), 24h);
  }

  CaLogCapture log_;
  testing::TempDir dir_{"zmesh-ca-kube"};
  testutil::FakeKubeApiServer api_{{.token = "zmesh-ca-sa-token"}};
  testing::TokenReviews reviews_{api_};
  std::unique_ptr<kube::KubeClient> client_;
  std::unique_ptr<KubeMode> mode_;
  std::unique_ptr<ClusterCaServer> server_;
};

// --- Refusals ---

TEST_F(KubeModeTest, AnExpiredTokenIsUnauthenticated) {
  reviews_.Set("tok-expired", Unauthenticated("service account token has expired"));
  auto chain = Fetch("tok-expired", "demo", "client");
  ASSERT_TRUE(absl::IsUnauthenticated(chain.status())) << chain.status();
  EXPECT_THAT(chain.status().message(),
              HasSubstr("the API server did not authenticate the token: service account token "
                        "has expired"));
}

TEST_F(KubeModeTest, ATokenForAnotherAudienceIsUnauthenticated) {
  reviews_.Set("tok-api", ServiceAccountReview("zmesh-system", "ztunnel", "ztunnel-node1",
                                               {"https://kubernetes.default.svc"}));
  auto chain = Fetch("tok-api", "demo", "client");
  ASSERT_TRUE(absl::IsUnauthenticated(chain.status())) << chain.status();
  EXPECT_THAT(chain.status().message(), HasSubstr("not valid for audience zmesh-ca"));
}

TEST_F(KubeModeTest, AUserThatIsNotAServiceAccountIsUnauthenticated) {
  reviews_.Set("tok-node",
               {{"authenticated", true},
                {"user", {{"username", "system:node:node1"}, {"groups", {"system:nodes"}}}},
                {"audiences", {"zmesh-ca"}}});
  auto chain = Fetch("tok-node", "demo", "client");
  ASSERT_TRUE(absl::IsUnauthenticated(chain.status())) << chain.status();
  EXPECT_THAT(chain.status().message(),
              HasSubstr("user \"system:node:node1\" is not a service account"));
}

TEST_F(KubeModeTest, AnUnknownTokenIsUnauthenticated) {
  auto chain = Fetch("tok-stolen", "demo", "client");
  ASSERT_TRUE(absl::IsUnauthenticated(chain.status())) << chain.status();
  EXPECT_THAT(chain.status().message(), HasSubstr("invalid bearer token"));
}

TEST_F(KubeModeTest, AZtunnelAskingForAPodOnAnotherNodeIsDeniedNamingNodeAndIdentity) {
  auto chain = Fetch("tok-zt1", "demo", "server");
  ASSERT_TRUE(absl::IsPermissionDenied(chain.status())) << chain.status();
  EXPECT_THAT(chain.status().message(),
              HasSubstr("not authorized for spiffe://cluster.local/ns/demo/sa/server: no running "
                        "or pending pod on node node1 runs as ns/demo/sa/server"));
}

TEST_F(KubeModeTest, AZtunnelGetsNothingForAFinishedPod) {
  auto chain = Fetch("tok-zt1", "demo", "batch");
  ASSERT_TRUE(absl::IsPermissionDenied(chain.status())) << chain.status();
  EXPECT_THAT(chain.status().message(),
              HasSubstr("no running or pending pod on node node1 runs as ns/demo/sa/batch"));
}

TEST_F(KubeModeTest, AZtunnelTokenBoundToAPodThatIsGoneIsRefused) {
  // Recreated under the same name: a new uid, and the old pod's token is not the new pod's.
  nlohmann::json pod = PodJson("zmesh-system", "ztunnel-node1", "ztunnel", "node1");
  pod["metadata"]["uid"] = "uid-new";
  ASSERT_TRUE(api_.Put(pod).ok());
  ASSERT_TRUE(WaitFor(
      [&] { return mode_->pods().NodeOfPod("zmesh-system", "ztunnel-node1", "uid-new").ok(); }));
  auto recreated = Fetch("tok-zt1", "demo", "client");
  ASSERT_TRUE(absl::IsUnauthenticated(recreated.status())) << recreated.status();
  EXPECT_THAT(recreated.status().message(),
              HasSubstr("the token is bound to pod zmesh-system/ztunnel-node1 uid "
                        "uid-ztunnel-node1, which is gone"));
  // Deleted: not in the cache (the review itself is still cached).
  ASSERT_TRUE(api_.Delete("v1", "Pod", "zmesh-system", "ztunnel-node1").ok());
  ASSERT_TRUE(WaitFor([&] {
    return absl::IsUnavailable(
        mode_->pods().NodeOfPod("zmesh-system", "ztunnel-node1", "uid-new").status());
  }));
  auto deleted = Fetch("tok-zt1", "demo", "client");
  ASSERT_TRUE(absl::IsUnavailable(deleted.status())) << deleted.status();
  EXPECT_THAT(deleted.status().message(),
              HasSubstr("pod zmesh-system/ztunnel-node1 is not in the pod cache"));
}

TEST_F(KubeModeTest, AWaypointAskingForAnotherIdentityIsDenied) {
  auto chain = Fetch("tok-waypoint", "demo", "server");
  ASSERT_TRUE(absl::IsPermissionDenied(chain.status())) << chain.status();
  EXPECT_THAT(chain.status().message(),
              HasSubstr("a caller that is not a ztunnel may obtain only its own identity, "
                        "spiffe://cluster.local/ns/demo/sa/waypoint"));
}

TEST_F(KubeModeTest, TheApiDownIsUnavailableAndRecovers) {
  api_.FailRequests(503, -1);
  auto down = Fetch("tok-zt2", "demo", "server");
  ASSERT_TRUE(absl::IsUnavailable(down.status())) << down.status();
  EXPECT_THAT(down.status().message(), HasSubstr("TokenReview failed"));
  api_.FailRequests(0, 0);
  auto up = Fetch("tok-zt2", "demo", "server");
  ASSERT_TRUE(up.ok()) << up.status();
}

TEST_F(KubeModeTest, EveryRefusalIsLoggedWithItsReasonAndNoToken) {
  reviews_.Set("tok-expired", Unauthenticated("service account token has expired"));
  ASSERT_FALSE(Fetch("tok-expired", "demo", "client").ok());
  ASSERT_FALSE(Fetch("tok-zt1", "demo", "server").ok());
  ASSERT_FALSE(Fetch("tok-waypoint", "demo", "client").ok());
  const std::string log = log_.text();
  EXPECT_THAT(log, HasSubstr("refused an unidentified caller"));
  EXPECT_THAT(log, HasSubstr("the API server did not authenticate the token: service account "
                             "token has expired"));
  EXPECT_THAT(log, HasSubstr("refused ztunnel of node node1 (zmesh-system/ztunnel, pod "
                             "zmesh-system/ztunnel-node1) a certificate for "
                             "spiffe://cluster.local/ns/demo/sa/server: no running or pending pod "
                             "on node node1 runs as ns/demo/sa/server"));
  EXPECT_THAT(log, HasSubstr("refused service account demo/waypoint (pod waypoint) a certificate "
                             "for spiffe://cluster.local/ns/demo/sa/client: a caller that is not "
                             "a ztunnel may obtain only its own identity"));
  EXPECT_THAT(log, ::testing::Not(HasSubstr("tok-")));
}

// --- Allowed ---

TEST_F(KubeModeTest, AZtunnelGetsThePodIdentitiesOfItsNodeChainedToTheSecretsRoot) {
  auto chain = Fetch("tok-zt1", "demo", "client");
  ASSERT_TRUE(chain.ok()) << chain.status();
  auto id = testing::VerifiedIdentity(*chain, mode_->root().RootPem());
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->ToString(), "spiffe://cluster.local/ns/demo/sa/client");
  EXPECT_TRUE(api_.Object("v1", "Secret", "zmesh-system", "zmesh-ca-root").has_value());
}

TEST_F(KubeModeTest, AWaypointGetsItsOwnIdentity) {
  auto chain = Fetch("tok-waypoint", "demo", "waypoint");
  ASSERT_TRUE(chain.ok()) << chain.status();
  auto id = testing::VerifiedIdentity(*chain, mode_->root().RootPem());
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->ToString(), "spiffe://cluster.local/ns/demo/sa/waypoint");
}

TEST_F(KubeModeTest, APodScheduledLaterCountsFromThenOnAndTheReviewIsCached) {
  EXPECT_TRUE(absl::IsPermissionDenied(Fetch("tok-zt2", "late", "runner").status()));
  ASSERT_TRUE(api_.Put(PodJson("late", "runner-0", "runner", "node2", "Pending")).ok());
  EXPECT_TRUE(WaitFor([&] { return Fetch("tok-zt2", "late", "runner").ok(); }));
  EXPECT_EQ(reviews_.reviews(), 1) << "one TokenReview for every call with the same token";
}

}  // namespace
}  // namespace zm::ca
