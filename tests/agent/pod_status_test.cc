// zmesh.io/status: which value each pod of the node gets, and the writer against the fake API
// server — a merge patch naming only our annotation, written once per change, removed when the
// pod leaves the mesh, not written back over another writer, retried after a failure.
#include "agent/pod_status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/base/strings.h"
#include "common/kube/kinds.h"
#include "tests/common/kube/kube_test_util.h"
#include "tests/testutil/wait.h"

namespace zm::agent {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using testutil::FakeKubeApiServer;
using testutil::WaitFor;

EnrollmentDecision Decision(std::string name, EnrollReason reason, std::string detail = "") {
  return {.uid = "u-" + name,
          .ns = "demo",
          .name = std::move(name),
          .enrolled = reason == EnrollReason::kEnrolled,
          .reason = reason,
          .detail = std::move(detail)};
}

TEST(DesiredStatuses, OneValuePerPodOfTheNode) {
  std::vector<EnrollmentDecision> d = {
      Decision("enrolled", EnrollReason::kEnrolled),
      Decision("waiting", EnrollReason::kEnrolled),
      Decision("failing", EnrollReason::kEnrolled),
      Decision("fresh", EnrollReason::kEnrolled),
      Decision("no-netns", EnrollReason::kNoNetns),
      Decision("bad", EnrollReason::kInvalidPod, "annotation zmesh.io/netns: empty"),
      Decision("unlabelled", EnrollReason::kNamespaceNotLabelled),
      Decision("opted-out", EnrollReason::kPodOptedOut),
      Decision("done", EnrollReason::kTerminalPhase),
      Decision("orphan", EnrollReason::kNamespaceNotFound),
  };
  std::vector<PodStatus> enroller = {
      {.uid = "u-enrolled", .enrolled = true},
      {.uid = "u-waiting", .error = "waiting for ztunnel to connect", .waiting = true},
      {.uid = "u-failing", .error = "open netns /x: ENOENT"},
  };
  std::vector<std::string> got;
  for (const StatusTarget& t : DesiredStatuses(d, enroller)) {
    got.push_back(StrCat(t.name, "=", t.value ? *t.value : "(none)"));
  }
  EXPECT_THAT(got, ElementsAre("enrolled=enrolled", "waiting=pending",
                               "failing=error: open netns /x: ENOENT", "fresh=pending",
                               "no-netns=pending", "bad=error: annotation zmesh.io/netns: empty",
                               "unlabelled=(none)", "opted-out=(none)"));
}

class StatusWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    client_ = kube::testing::ClientFor(server_);
    json pod = kube::testing::PodJson("demo", "web", {{"app", "web"}});
    pod["metadata"]["uid"] = "u-web";
    pod["metadata"]["annotations"] = {{"team", "blue"}};
    ASSERT_TRUE(server_.Put(pod).ok());
    writer_ = std::make_unique<StatusWriter>(
        *client_,
        [this](const StatusTarget& t) -> std::optional<std::optional<std::string>> {
          auto p = server_.Object("v1", "Pod", t.ns, t.name);
          if (!p || (*p)["metadata"]["uid"] != t.uid) return std::nullopt;
          const json& a = (*p)["metadata"]["annotations"];
          if (!a.contains("zmesh.io/status")) return std::optional<std::string>();
          return std::optional<std::string>(a["zmesh.io/status"].get<std::string>());
        },
        StatusWriter::Options{.backoff = {.initial = std::chrono::milliseconds(10),
                                          .max = std::chrono::milliseconds(50),
                                          .jitter = 0}});
    writer_->Start();
  }

  json Annotations() {
    return (*server_.Object("v1", "Pod", "demo", "web"))["metadata"]["annotations"];
  }
  int Patches() {
    int n = 0;
    for (const auto& r : server_.requests()) n += r.method == "PATCH";
    return n;
  }
  StatusTarget Web(std::optional<std::string> v) {
    return {.uid = "u-web", .ns = "demo", .name = "web", .value = std::move(v)};
  }
  bool Has(const std::string& v) {
    json a = Annotations();
    return a.contains("zmesh.io/status") && a["zmesh.io/status"] == v;
  }

  FakeKubeApiServer server_;
  std::unique_ptr<kube::KubeClient> client_;
  std::unique_ptr<StatusWriter> writer_;
};

TEST_F(StatusWriterTest, WritesOncePerChangeAndKeepsOtherAnnotations) {
  writer_->Post({Web("pending")});
  ASSERT_TRUE(WaitFor([&] { return Has("pending"); }));
  EXPECT_EQ(Annotations()["team"], "blue");
  auto reqs = server_.requests();
  ASSERT_EQ(Patches(), 1);
  const auto& patch = reqs.back();
  EXPECT_EQ(patch.target, "/api/v1/namespaces/demo/pods/web");
  EXPECT_EQ(patch.content_type, "application/merge-patch+json");
  EXPECT_EQ(
      json::parse(patch.body),
      json::parse(R"({"metadata":{"uid":"u-web","annotations":{"zmesh.io/status":"pending"}}})"));

  writer_->Post({Web("pending")});  // the same value: nothing to write
  writer_->Post({Web("enrolled")});
  ASSERT_TRUE(WaitFor([&] { return Has("enrolled"); }));
  writer_->Post({Web("enrolled")});
  writer_->Post({Web(std::nullopt)});  // out of the mesh: ours goes, the rest stays
  ASSERT_TRUE(WaitFor([&] { return !Annotations().contains("zmesh.io/status"); }));
  EXPECT_EQ(Annotations()["team"], "blue");
  EXPECT_EQ(Patches(), 3);
}

TEST_F(StatusWriterTest, DoesNotFightAnotherWriter) {
  writer_->Post({Web("enrolled")});
  ASSERT_TRUE(WaitFor([&] { return Has("enrolled"); }));
  ASSERT_TRUE(WaitFor([&] { return writer_->stats().passes >= 1; }));  // that pass is over
  json other = *server_.Object("v1", "Pod", "demo", "web");
  other["metadata"]["annotations"]["zmesh.io/status"] = "someone else";
  ASSERT_TRUE(server_.Put(other).ok());
  const int64_t passes = writer_->stats().passes;
  writer_->Post({Web("enrolled")});  // unchanged on our side: left alone
  ASSERT_TRUE(WaitFor([&] { return writer_->stats().passes > passes; }));
  EXPECT_TRUE(Has("someone else"));
  writer_->Post({Web("pending")});
  ASSERT_TRUE(WaitFor([&] { return Has("pending"); }));  // our value changed: written
  EXPECT_EQ(Patches(), 2);
}

TEST_F(StatusWriterTest, RetriesAfterAFailure) {
  server_.FailRequests(500, 2);
  writer_->Post({Web("enrolled")});
  ASSERT_TRUE(WaitFor([&] { return Has("enrolled"); }));
  // The writer counts once the patch call has returned, a little after the server stored it.
  ASSERT_TRUE(WaitFor([&] { return writer_->stats().patches == 1; }));
  EXPECT_EQ(writer_->stats().failures, 2);
}

TEST_F(StatusWriterTest, APodThatIsGoneIsNotPatched) {
  ASSERT_TRUE(server_.Delete("v1", "Pod", "demo", "web").ok());
  writer_->Post({Web("enrolled")});
  // Recreated under the same name: another uid, not ours either.
  json pod = kube::testing::PodJson("demo", "web");
  pod["metadata"]["uid"] = "u-web-2";
  ASSERT_TRUE(server_.Put(pod).ok());
  writer_->Post({Web("pending")});
  writer_->Post({StatusTarget{.uid = "u-web-2", .ns = "demo", .name = "web", .value = "enrolled"}});
  ASSERT_TRUE(WaitFor([&] { return Has("enrolled"); }));
  EXPECT_EQ(Patches(), 1);
}

}  // namespace
}  // namespace zm::agent
