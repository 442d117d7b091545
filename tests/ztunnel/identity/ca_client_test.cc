// ztunnel's CA client in cluster mode: TLS verified against the mesh root (never plaintext to
// a TCP target), and a bearer token re-read from its file on every call.
#include "ztunnel/identity/ca_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/ca/ca_test_support.h"
#include "ztunnel/identity/cert_manager.h"

namespace zm::ztunnel {
namespace {

using ca::testing::ClusterCaHarness;
using ca::testing::Csr;
using ca::testing::TempDir;
using ca::testing::WriteFile;
using ::testing::HasSubstr;

TEST(GrpcCaClientSetupTest, APlaintextTcpTargetIsRefusedBeforeAnythingIsDialled) {
  for (const std::string target : {"127.0.0.1:15012", "dns:///zmesh-ca.zmesh-system.svc:15012"}) {
    GrpcCaClient legacy(target);
    ASSERT_TRUE(absl::IsFailedPrecondition(legacy.status())) << legacy.status();
    EXPECT_THAT(legacy.status().message(), HasSubstr("refusing a plaintext channel"));
    EXPECT_THAT(legacy.status().message(), HasSubstr("--ca-root-cert"));
    auto fetched = legacy.Fetch(Csr("demo", "client"), std::chrono::hours(1));
    EXPECT_EQ(fetched.status(), legacy.status());

    auto created = GrpcCaClient::Create(target, {.token_file = "/dev/null"});
    EXPECT_TRUE(absl::IsFailedPrecondition(created.status())) << created.status();
  }
}

TEST(GrpcCaClientSetupTest, AUnixTargetStaysPlaintextLocalMode) {
  EXPECT_TRUE(GrpcCaClient("unix:/var/run/zmesh/node1/ca.sock").status().ok());
  EXPECT_TRUE(GrpcCaClient::Create("unix:/var/run/zmesh/node1/ca.sock", {}).ok());
}

TEST(GrpcCaClientSetupTest, AMissingOrEmptyRootFileIsNamed) {
  TempDir dir("zmesh-ca-client");
  auto missing = GrpcCaClient::Create("127.0.0.1:15012", {.root_cert_file = dir / "nope.pem"});
  ASSERT_TRUE(absl::IsFailedPrecondition(missing.status())) << missing.status();
  EXPECT_THAT(missing.status().message(), HasSubstr(dir / "nope.pem"));

  WriteFile(dir / "empty.pem", "not a certificate\n");
  auto empty = GrpcCaClient::Create("127.0.0.1:15012", {.root_cert_file = dir / "empty.pem"});
  ASSERT_TRUE(absl::IsFailedPrecondition(empty.status())) << empty.status();
  EXPECT_THAT(empty.status().message(), HasSubstr(dir / "empty.pem"));
}

class GrpcCaClientTlsTest : public ::testing::Test {
 protected:
  std::unique_ptr<GrpcCaClient> Client() {
    auto c = GrpcCaClient::Create(ca_.target(), {.root_cert_file = ca_.root_cert_path(),
                                                 .token_file = token_,
                                                 .tls_server_name = "zmesh-ca.zmesh-system.svc",
                                                 .deadline = std::chrono::seconds(5)});
    EXPECT_TRUE(c.ok()) << c.status();
    return std::move(*c);
  }
  ClusterCaHarness ca_;
  std::string token_ = ca_.dir() / "ztunnel-token";
};

TEST_F(GrpcCaClientTlsTest, ARotatedTokenIsUsedFromTheNextCallOn) {
  auto client = Client();
  WriteFile(token_, "tok-node2\n");
  auto as_node2 = client->Fetch(Csr("demo", "client"), std::chrono::hours(1));
  ASSERT_TRUE(absl::IsPermissionDenied(as_node2.status())) << as_node2.status();
  EXPECT_THAT(as_node2.status().message(), HasSubstr("on node node2"));

  WriteFile(token_, "  tok-node1 \n\n");
  auto as_node1 = client->Fetch(Csr("demo", "client"), std::chrono::hours(1));
  ASSERT_TRUE(as_node1.ok()) << as_node1.status();
}

TEST_F(GrpcCaClientTlsTest, AMissingOrEmptyTokenFailsWithoutCallingTheCa) {
  auto client = Client();
  auto missing = client->Fetch(Csr("demo", "client"), std::chrono::hours(1));
  ASSERT_TRUE(absl::IsFailedPrecondition(missing.status())) << missing.status();
  EXPECT_THAT(missing.status().message(), HasSubstr(token_));

  WriteFile(token_, " \n");
  auto empty = client->Fetch(Csr("demo", "client"), std::chrono::hours(1));
  ASSERT_TRUE(absl::IsFailedPrecondition(empty.status())) << empty.status();
  EXPECT_THAT(empty.status().message(), HasSubstr("is empty"));

  WriteFile(token_, "tok node1\n");
  EXPECT_TRUE(absl::IsFailedPrecondition(
      client->Fetch(Csr("demo", "client"), std::chrono::hours(1)).status()));
}

TEST_F(GrpcCaClientTlsTest, TheCertificateManagerGetsItsCertificatesFromZmeshCa) {
  WriteFile(token_, "tok-node1");
  auto client = Client();
  SystemClock wall;
  CertManager mgr(*client, wall);
  auto id = *tls::SpiffeId::Parse("spiffe://cluster.local/ns/demo/sa/client");
  mgr.AddRef(id);
  mgr.Tick();
  auto creds = mgr.Get(id);
  ASSERT_TRUE(creds.ok()) << creds.status();
  EXPECT_EQ((*creds)->Identity()->ToString(), id.ToString());
  ASSERT_EQ(mgr.RootPems().size(), 1u);
  EXPECT_EQ(mgr.RootPems().front(), ca_.root_pem());
}

}  // namespace
}  // namespace zm::ztunnel
