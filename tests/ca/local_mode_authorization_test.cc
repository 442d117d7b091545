// The agent's local-mode CA rule end to end: manifests -> enrollment decision for this node ->
// the enroller's pod status -> AuthorizeCertificate behind the real Unix-socket CA, with
// ztunnel's client. The ZDS-connected ztunnel (this process) gets the identity of a pod
// enrolled on its own node, and is refused the identity of a pod enrolled on another node.
// (tests/agent/authorize_certificate_test.cc checks the rule on hand-made views.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/enroller.h"
#include "agent/enrollment.h"
#include "common/ca/ca_service.h"
#include "common/ca/uds_server.h"
#include "common/k8s/manifest_store.h"
#include "common/mesh/workload.h"
#include "tests/ca/ca_test_support.h"
#include "tests/testutil/fake_datapath.h"
#include "ztunnel/identity/ca_client.h"

namespace zm::agent {
namespace {

using ca::testing::Csr;
using ca::testing::TempDir;
using ca::testing::WriteFile;
using ::testing::HasSubstr;

// node1 runs demo/client, node2 runs demo/server; both enrollable (labelled namespace, a
// netns, an IP).
constexpr char kManifests[] = R"(apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {zmesh.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: demo, uid: u-client, annotations: {zmesh.io/netns: zm-client}}
spec: {serviceAccountName: client, nodeName: node1}
status: {phase: Running, podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: demo, uid: u-server, annotations: {zmesh.io/netns: zm-server}}
spec: {serviceAccountName: server, nodeName: node2}
status: {phase: Running, podIP: 10.0.0.2}
)";

class AckingZtunnel : public ZtunnelLink {
 public:
  bool Connected() const override { return true; }
  absl::StatusOr<std::vector<Fd>> Add(const WorkloadRef&, int) override {
    std::vector<Fd> out;
    out.emplace_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    return out;
  }
  absl::Status Del(const std::string&) override { return absl::OkStatus(); }
  absl::Status SnapshotSent() override { return absl::OkStatus(); }
};

class AnyNetns : public PodNetns {
 public:
  absl::StatusOr<Fd> Open(const std::string&) override {
    return Fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  }
  absl::StatusOr<uint64_t> Cookie(int) override { return next_cookie_++; }
  absl::Status InstallRouting(int) override { return absl::OkStatus(); }

 private:
  uint64_t next_cookie_ = 1000;
};

// What the agent of `node` enrolls (as Agent::Desired turns decisions into targets).
std::vector<EnrollTarget> DesiredOn(const mesh::Snapshot& snap, std::string_view node) {
  std::vector<EnrollTarget> out;
  for (const EnrollmentDecision& d : DecideEnrollment(snap, node)) {
    if (!d.enrolled || !d.workload) continue;
    const mesh::Workload& w = *d.workload;
    out.push_back(
        {.ref = {.uid = w.uid, .name = w.name, .ns = w.ns, .service_account = w.service_account},
         .netns = w.netns,
         .ips = w.ips});
  }
  return out;
}

class LocalModeAuthorizationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(dir_ / "manifests/pods.yaml", kManifests);
    k8s::ManifestStore store(dir_ / "manifests");
    ASSERT_TRUE(store.Reload().ok());
    snapshot_ = mesh::BuildSnapshot(store.Snapshot());
    ASSERT_THAT(snapshot_.errors, ::testing::IsEmpty());

    // The agent of node1, with this process as its ZDS-connected ztunnel.
    enroller_.Reconcile(DesiredOn(snapshot_, "node1"));
    view_.ztunnel_connected = true;
    view_.ztunnel_pid = ::getpid();
    view_.pods = enroller_.Status();

    auto root = ca::LoadOrCreateRoot(ca::RootFilesIn(dir_ / "state"), "cluster.local", clock_);
    ASSERT_TRUE(root.ok()) << root.status();
    root_.emplace(std::move(*root));
    service_ = std::make_unique<ca::CaService>(
        *root_, [this](grpc::ServerContext* ctx) { return server_->CallerOf(ctx); },
        [this](const ca::Caller& caller, const tls::SpiffeId& id) {
          return AuthorizeCertificate(view_, caller.pid, id.ns, id.sa);
        });
    auto server = ca::UdsGrpcServer::Start(dir_ / "ca.sock", {service_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ = std::make_unique<ztunnel::GrpcCaClient>("unix:" + (dir_ / "ca.sock"));
  }
  void TearDown() override { server_.reset(); }

  TempDir dir_{"zmesh-local-ca"};
  SystemClock clock_;
  mesh::Snapshot snapshot_;
  testutil::FakeDatapath datapath_;
  AckingZtunnel ztunnel_;
  AnyNetns netns_;
  Enroller enroller_{datapath_, ztunnel_, netns_};
  AgentView view_;
  std::optional<tls::CertificateAuthority> root_;
  std::unique_ptr<ca::CaService> service_;
  std::unique_ptr<ca::UdsGrpcServer> server_;
  std::unique_ptr<ztunnel::GrpcCaClient> client_;
};

TEST_F(LocalModeAuthorizationTest, APodEnrolledOnAnotherNodeGivesNoIdentity) {
  // demo/server is enrolled — by node2's agent, not by this one.
  auto on_node2 = DesiredOn(snapshot_, "node2");
  ASSERT_EQ(on_node2.size(), 1u);
  ASSERT_EQ(on_node2[0].ref.name, "server");
  for (const PodStatus& p : view_.pods) EXPECT_NE(p.pod, "demo/server");

  auto chain = client_->Fetch(Csr("demo", "server"), std::chrono::hours(24));
  ASSERT_TRUE(absl::IsPermissionDenied(chain.status())) << chain.status();
  EXPECT_THAT(chain.status().message(),
              HasSubstr("no pod enrolled on this node runs as ns/demo/sa/server"));
}

TEST_F(LocalModeAuthorizationTest, APodEnrolledOnThisNodeGetsItsIdentity) {
  ASSERT_EQ(view_.pods.size(), 1u);
  ASSERT_TRUE(view_.pods[0].enrolled) << view_.pods[0].error;
  auto chain = client_->Fetch(Csr("demo", "client"), std::chrono::hours(24));
  ASSERT_TRUE(chain.ok()) << chain.status();
  auto id = ca::testing::VerifiedIdentity(*chain, root_->RootPem());
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->ToString(), "spiffe://cluster.local/ns/demo/sa/client");
}

TEST_F(LocalModeAuthorizationTest, AProcessOtherThanTheZdsConnectedZtunnelIsRefused) {
  view_.ztunnel_pid = ::getpid() + 1;  // another ztunnel holds ZDS
  auto chain = client_->Fetch(Csr("demo", "client"), std::chrono::hours(24));
  ASSERT_TRUE(absl::IsPermissionDenied(chain.status())) << chain.status();
  EXPECT_THAT(chain.status().message(), HasSubstr("is not the ztunnel"));
}

}  // namespace
}  // namespace zm::agent
