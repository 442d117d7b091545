// The zmesh-ca binary as a process, driven by ztunnel's CA client over TLS on 127.0.0.1: the
// root is created in --state-dir on first start (key 0600) and kept across restarts, node1's
// token gets node1's pods' identities and nothing else, every decision is logged, a malformed
// token file stops the start by file and line, SIGTERM exits 0.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regex>
#include <sstream>

#include "absl/strings/escaping.h"
#include "tests/ca/ca_test_support.h"
#include "tests/ca/kube_test_support.h"
#include "tests/testutil/child_process.h"
#include "ztunnel/identity/ca_client.h"

namespace zm::ca {
namespace {

using testing::Csr;
using ::testing::HasSubstr;
using testing::TempDir;
using testing::WaitFor;
using testing::WriteFile;

class ZmeshCaProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(dir_ / "tokens", testing::kTokens);
    WriteFile(dir_ / "manifests/pods.yaml", testing::kManifests);
  }
  void TearDown() override { child_.reset(); }  // killed and reaped if it still runs

  std::vector<std::string> Args() {
    return {"--listen",      "127.0.0.1:0", "--state-dir",      dir_ / "state", "--tokens",
            dir_ / "tokens", "--manifests", dir_ / "manifests", "--log-level",  "debug"};
  }

  void Spawn(std::vector<std::string> args) {
    child_.reset();
    auto child = zm::testutil::ChildProcess::Spawn(
        zm::testutil::ChildProcess::BuildBinary("zmesh-ca"), std::move(args),
        dir_ / StrCat("zmesh-ca-", ++runs_, ".log"));
    ASSERT_TRUE(child.ok()) << child.status();
    child_ = std::move(*child);
  }

  // The port from "listening on 127.0.0.1:<port>"; 0 when the process never got there.
  int WaitListening() {
    int port = 0;
    static const std::regex kLine(R"(listening on 127\.0\.0\.1:(\d+) \(TLS\))");
    WaitFor([&] {
      std::smatch m;
      std::string log = Log();
      if (std::regex_search(log, m, kLine)) port = std::stoi(m[1]);
      return port != 0 || Exited();
    });
    return port;
  }

  bool Exited() { return child_->Exited(); }
  int WaitExit() { return child_->WaitExit(); }
  std::string Log() { return child_ ? child_->Log() : ""; }

  std::unique_ptr<ztunnel::GrpcCaClient> Client(int port, const std::string& token,
                                                std::string root = "") {
    WriteFile(dir_ / "client-token", token);
    if (root.empty()) root = dir_ / "state/ca/root-cert.pem";
    auto c = ztunnel::GrpcCaClient::Create(StrCat("127.0.0.1:", port),
                                           {.root_cert_file = root,
                                            .token_file = dir_ / "client-token",
                                            .tls_server_name = "zmesh-ca.zmesh-system.svc",
                                            .deadline = std::chrono::seconds(5)});
    EXPECT_TRUE(c.ok()) << c.status();
    return std::move(*c);
  }

  TempDir dir_{"zmesh-ca-proc"};
  int runs_ = 0;
  std::unique_ptr<zm::testutil::ChildProcess> child_;  // after dir_: gone before it
};

TEST_F(ZmeshCaProcessTest, IssuesOnlyTheCallersNodesIdentitiesOverTls) {
  Spawn(Args());
  int port = WaitListening();
  ASSERT_NE(port, 0) << Log();

  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "state/ca/root-key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto root_pem = tls::ReadFile(dir_ / "state/ca/root-cert.pem");
  ASSERT_TRUE(root_pem.ok()) << root_pem.status();

  auto refused = Client(port, "tok-node1")->Fetch(Csr("demo", "server"), std::chrono::hours(24));
  ASSERT_TRUE(absl::IsPermissionDenied(refused.status())) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("on node node1"));

  auto unknown = Client(port, "tok-stolen")->Fetch(Csr("demo", "client"), std::chrono::hours(24));
  EXPECT_TRUE(absl::IsUnauthenticated(unknown.status())) << unknown.status();

  auto chain = Client(port, "tok-node1")->Fetch(Csr("demo", "client"), std::chrono::hours(24));
  ASSERT_TRUE(chain.ok()) << chain.status() << "\n" << Log();
  auto id = testing::VerifiedIdentity(*chain, *root_pem);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->ToString(), "spiffe://cluster.local/ns/demo/sa/client");

  std::string log = Log();
  EXPECT_THAT(log, HasSubstr("refused ztunnel of node node1"));
  EXPECT_THAT(log, HasSubstr("a certificate for spiffe://cluster.local/ns/demo/sa/server"));
  EXPECT_THAT(log, HasSubstr("unknown token"));
  EXPECT_THAT(log, HasSubstr("issued spiffe://cluster.local/ns/demo/sa/client to ztunnel of "
                             "node node1"));
  EXPECT_THAT(log, ::testing::Not(HasSubstr("tok-node1"))) << "tokens never reach the log";

  child_->Signal(SIGTERM);
  EXPECT_EQ(WaitExit(), 0) << Log();
}

TEST_F(ZmeshCaProcessTest, KeepsItsRootAcrossRestarts) {
  Spawn(Args());
  ASSERT_NE(WaitListening(), 0) << Log();
  auto first = tls::ReadFile(dir_ / "state/ca/root-cert.pem");
  ASSERT_TRUE(first.ok());
  child_->Signal(SIGTERM);
  ASSERT_EQ(WaitExit(), 0) << Log();

  Spawn(Args());
  int port = WaitListening();
  ASSERT_NE(port, 0) << Log();
  EXPECT_THAT(Log(), HasSubstr("loaded root CA"));
  auto second = tls::ReadFile(dir_ / "state/ca/root-cert.pem");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*first, *second);
  auto chain = Client(port, "tok-node2")->Fetch(Csr("demo", "server"), std::chrono::hours(1));
  ASSERT_TRUE(chain.ok()) << chain.status();
  EXPECT_TRUE(testing::VerifiedIdentity(*chain, *first).ok());
}

TEST_F(ZmeshCaProcessTest, AMalformedTokenFileStopsTheStartByFileAndLine) {
  WriteFile(dir_ / "tokens", "tok-node1,node1\n# fine\ntok-node2 node2\n");
  Spawn(Args());
  EXPECT_EQ(WaitExit(), 1) << Log();
  EXPECT_THAT(Log(), HasSubstr(StrCat("token file ", dir_ / "tokens",
                                      ", line 3: expected "
                                      "TOKEN,NODE, found 1 field(s)")));
}

TEST_F(ZmeshCaProcessTest, CaCertWithoutCaKeyIsAUsageError) {
  Spawn({"--ca-cert", dir_ / "root.pem", "--tokens", dir_ / "tokens", "--manifests",
         dir_ / "manifests"});
  int code = WaitExit();
  EXPECT_NE(code, 0) << Log();
  EXPECT_NE(code, -1) << Log();
  EXPECT_THAT(Log(), HasSubstr("--ca-key"));
}

TEST_F(ZmeshCaProcessTest, ExplicitRootFilesAreUsed) {
  auto args = Args();
  args[2] = "--ca-cert";
  args[3] = dir_ / "pki/root.pem";
  args.insert(args.begin() + 4, {"--ca-key", dir_ / "pki/root.key"});
  Spawn(args);
  ASSERT_NE(WaitListening(), 0) << Log();
  EXPECT_TRUE(std::filesystem::exists(dir_ / "pki/root.key"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "state"));
}

// Kubernetes mode: --kubeconfig pointing at the fake API server in this process.
class ZmeshCaKubeProcessTest : public ZmeshCaProcessTest {
 protected:
  void SetUp() override {
    ZmeshCaProcessTest::SetUp();
    ASSERT_TRUE(api_.Start().ok());
    testing::PutCluster(api_);
    reviews_.Set("tok-zt1", testing::ZtunnelReview("node1"));
    reviews_.Set("tok-waypoint", testing::ServiceAccountReview("demo", "waypoint", "waypoint"));
    WriteFile(dir_ / "kubeconfig", StrCat(R"(apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster: {server: ")",
                                          api_.url(), R"("}
users:
- name: zmesh-ca
  user: {token: zmesh-ca-sa-token}
contexts:
- name: fake
  context: {cluster: fake, user: zmesh-ca}
current-context: fake
)"));
  }
  std::vector<std::string> KubeArgs() {
    return {"--listen", "127.0.0.1:0", "--kubeconfig", dir_ / "kubeconfig", "--log-level", "debug"};
  }
  // The root certificate in the Secret, written to a file for the client; empty when absent.
  std::string SecretRoot() {
    auto secret = api_.Object("v1", "Secret", "zmesh-system", "zmesh-ca-root");
    std::string pem;
    if (!secret || !absl::Base64Unescape((*secret)["data"].value("tls.crt", ""), &pem)) return "";
    WriteFile(dir_ / "secret-root.pem", pem);
    return pem;
  }

  testutil::FakeKubeApiServer api_{{.token = "zmesh-ca-sa-token"}};
  testing::TokenReviews reviews_{api_};
};

TEST_F(ZmeshCaKubeProcessTest, FileModeFlagsAreRefusedInKubernetesMode) {
  auto args = KubeArgs();
  args.insert(args.end(), {"--tokens", dir_ / "tokens"});
  Spawn(args);
  int code = WaitExit();
  EXPECT_NE(code, 0) << Log();
  EXPECT_NE(code, -1) << Log();
  EXPECT_THAT(Log(), HasSubstr("--tokens"));
}

TEST_F(ZmeshCaKubeProcessTest, NeitherModeIsAUsageError) {
  Spawn({"--listen", "127.0.0.1:0"});
  EXPECT_EQ(WaitExit(), 2) << Log();
  EXPECT_THAT(Log(), HasSubstr("--kubeconfig or --in-cluster"));
}

TEST_F(ZmeshCaKubeProcessTest, AnUnreachableApiServerStopsTheStartNamingTheSecret) {
  api_.FailRequests(503, -1);
  Spawn(KubeArgs());
  EXPECT_EQ(WaitExit(), 1) << Log();
  EXPECT_THAT(Log(), HasSubstr("Secret zmesh-system/zmesh-ca-root: cannot read it"));
}

TEST_F(ZmeshCaKubeProcessTest, ServesByTokenReviewWithTheRootInASecretKeptAcrossRestarts) {
  Spawn(KubeArgs());
  int port = WaitListening();
  ASSERT_NE(port, 0) << Log();
  const std::string root = SecretRoot();
  ASSERT_FALSE(root.empty()) << "the root Secret was created";

  auto refused = Client(port, "tok-zt1", dir_ / "secret-root.pem")
                     ->Fetch(Csr("demo", "server"), std::chrono::hours(24));
  ASSERT_TRUE(absl::IsPermissionDenied(refused.status())) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("on node node1"));
  auto chain = Client(port, "tok-zt1", dir_ / "secret-root.pem")
                   ->Fetch(Csr("demo", "client"), std::chrono::hours(24));
  ASSERT_TRUE(chain.ok()) << chain.status() << "\n" << Log();
  EXPECT_TRUE(testing::VerifiedIdentity(*chain, root).ok());
  auto waypoint = Client(port, "tok-waypoint", dir_ / "secret-root.pem")
                      ->Fetch(Csr("demo", "waypoint"), std::chrono::hours(1));
  ASSERT_TRUE(waypoint.ok()) << waypoint.status();

  std::string log = Log();
  EXPECT_THAT(log, HasSubstr("root CA created for trust domain cluster.local, kept in Secret "
                             "zmesh-system/zmesh-ca-root"));
  EXPECT_THAT(log, HasSubstr("refused ztunnel of node node1"));
  EXPECT_THAT(log, HasSubstr("issued spiffe://cluster.local/ns/demo/sa/waypoint to service "
                             "account demo/waypoint"));
  EXPECT_THAT(log, ::testing::Not(HasSubstr("tok-zt1")));
  EXPECT_THAT(log, ::testing::Not(HasSubstr("PRIVATE KEY")));
  child_->Signal(SIGTERM);
  ASSERT_EQ(WaitExit(), 0) << Log();

  Spawn(KubeArgs());
  port = WaitListening();
  ASSERT_NE(port, 0) << Log();
  EXPECT_THAT(Log(), HasSubstr("root CA loaded from Secret zmesh-system/zmesh-ca-root"));
  EXPECT_EQ(SecretRoot(), root);
  auto again = Client(port, "tok-zt1", dir_ / "secret-root.pem")
                   ->Fetch(Csr("demo", "client"), std::chrono::hours(1));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(testing::VerifiedIdentity(*again, root).ok());
}

}  // namespace
}  // namespace zm::ca
