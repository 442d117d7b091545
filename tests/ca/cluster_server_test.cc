// zmesh-ca's server in-process on 127.0.0.1 with ztunnel's real CA client over TLS: who may
// get which identity, and that neither a client without the mesh root nor a plaintext client
// gets anywhere.
#include "ca/cluster_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/ca/ca_test_support.h"
#include "ztunnel/identity/ca_client.h"

namespace zm::ca {
namespace {

using testing::ClusterCaHarness;
using testing::Csr;
using ::testing::HasSubstr;
using testing::TempDir;
using testing::WriteFile;

constexpr char kServerName[] = "zmesh-ca.zmesh-system.svc";

class ClusterCaServerTest : public ::testing::Test {
 protected:
  // A TLS client trusting the mesh root; `token` (when set) goes into its token file.
  std::unique_ptr<ztunnel::GrpcCaClient> Client(std::optional<std::string> token,
                                                std::string root = "",
                                                std::string server_name = kServerName) {
    ztunnel::GrpcCaClientOptions opts{.root_cert_file = root.empty() ? ca_.root_cert_path() : root,
                                      .tls_server_name = server_name,
                                      .deadline = std::chrono::seconds(5)};
    if (token) {
      opts.token_file = ca_.dir() / "client-token";
      WriteFile(opts.token_file, *token + "\n");
    }
    auto c = ztunnel::GrpcCaClient::Create(ca_.target(), opts);
    EXPECT_TRUE(c.ok()) << c.status();
    return std::move(*c);
  }

  ClusterCaHarness ca_;
};

TEST_F(ClusterCaServerTest, ACallWithoutTokenIsUnauthenticated) {
  auto chain = Client(std::nullopt)->Fetch(Csr("demo", "client"), std::chrono::hours(24));
  ASSERT_TRUE(absl::IsUnauthenticated(chain.status())) << chain.status();
  EXPECT_THAT(chain.status().message(), HasSubstr("no bearer token"));
}

TEST_F(ClusterCaServerTest, AnUnknownTokenIsUnauthenticated) {
  auto chain = Client("tok-nobody")->Fetch(Csr("demo", "client"), std::chrono::hours(24));
  ASSERT_TRUE(absl::IsUnauthenticated(chain.status())) << chain.status();
  EXPECT_THAT(chain.status().message(), HasSubstr("unknown token"));
}

TEST_F(ClusterCaServerTest, Node1MayNotObtainTheIdentityOfAPodOnNode2) {
  auto chain = Client("tok-node1")->Fetch(Csr("demo", "server"), std::chrono::hours(24));
  ASSERT_TRUE(absl::IsPermissionDenied(chain.status())) << chain.status();
  EXPECT_THAT(chain.status().message(),
              HasSubstr("not authorized for spiffe://cluster.local/ns/demo/sa/server: no running "
                        "or pending pod on node node1 runs as ns/demo/sa/server"));
}

TEST_F(ClusterCaServerTest, AFinishedPodOfNode1GivesNoIdentity) {
  auto chain = Client("tok-node1")->Fetch(Csr("demo", "batch"), std::chrono::hours(24));
  EXPECT_TRUE(absl::IsPermissionDenied(chain.status())) << chain.status();
}

TEST_F(ClusterCaServerTest, Node1GetsItsPodsIdentityChainedToTheRoot) {
  auto chain = Client("tok-node1")->Fetch(Csr("demo", "client"), std::chrono::hours(24));
  ASSERT_TRUE(chain.ok()) << chain.status();
  ASSERT_EQ(chain->size(), 2u);
  EXPECT_EQ(chain->back(), ca_.root_pem());
  auto id = testing::VerifiedIdentity(*chain, ca_.root_pem());
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->ToString(), "spiffe://cluster.local/ns/demo/sa/client");
}

TEST_F(ClusterCaServerTest, Node2GetsItsPodsIdentity) {
  auto chain = Client("tok-node2")->Fetch(Csr("demo", "server"), std::chrono::hours(1));
  ASSERT_TRUE(chain.ok()) << chain.status();
}

TEST_F(ClusterCaServerTest, AClientThatDoesNotTrustTheMeshRootFails) {
  TempDir other("zmesh-other-root");
  SystemClock clock;
  auto other_root = LoadOrCreateRoot(RootFilesIn(other.path()), "cluster.local", clock);
  ASSERT_TRUE(other_root.ok()) << other_root.status();
  auto chain = Client("tok-node1", RootFilesIn(other.path()).cert)
                   ->Fetch(Csr("demo", "client"), std::chrono::hours(24));
  ASSERT_FALSE(chain.ok());
  EXPECT_TRUE(absl::IsUnavailable(chain.status())) << chain.status();
}

TEST_F(ClusterCaServerTest, AClientExpectingAnotherNameFails) {
  auto chain = Client("tok-node1", "", "zmesh-ca.elsewhere.svc")
                   ->Fetch(Csr("demo", "client"), std::chrono::hours(24));
  ASSERT_FALSE(chain.ok());
  EXPECT_TRUE(absl::IsUnavailable(chain.status())) << chain.status();
}

TEST_F(ClusterCaServerTest, APlaintextClientAgainstTheTlsPortFails) {
  // Not through GrpcCaClient, which refuses to dial a TCP target in plaintext at all.
  auto stub = istio::v1::auth::IstioCertificateService::NewStub(
      grpc::CreateChannel(ca_.target(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  ctx.AddMetadata("authorization", "Bearer tok-node1");
  istio::v1::auth::IstioCertificateRequest req;
  req.set_csr(Csr("demo", "client"));
  istio::v1::auth::IstioCertificateResponse resp;
  grpc::Status st = stub->CreateCertificate(&ctx, req, &resp);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_EQ(resp.cert_chain_size(), 0);
}

TEST_F(ClusterCaServerTest, TheServingCertificateNamesTheServiceAndChainsToTheRoot) {
  auto certs = tls::CertsFromPem(ca_.server().serving().chain_pem);
  ASSERT_TRUE(certs.ok()) << certs.status();
  ASSERT_EQ(certs->size(), 2u);
  EXPECT_EQ(X509_check_host((*certs)[0].get(), kServerName, 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host((*certs)[0].get(), "zmesh-ca", 0, 0, nullptr), 0);
  auto leaf_pem = tls::CertToPem((*certs)[0].get());
  ASSERT_TRUE(leaf_pem.ok());
  auto id = testing::VerifiedIdentity({*leaf_pem}, ca_.root_pem());
  // Verification succeeds; the serving certificate simply carries no SPIFFE ID.
  EXPECT_FALSE(id.ok());
  EXPECT_FALSE(absl::IsPermissionDenied(id.status())) << id.status();
}

TEST(IssueServingCredentialsTest, RefusesNamesThatAreNotDnsNames) {
  TempDir dir("zmesh-serving");
  SystemClock clock;
  auto root = LoadOrCreateRoot(RootFilesIn(dir.path()), "cluster.local", clock);
  ASSERT_TRUE(root.ok());
  auto key = tls::LoadPrivateKeyFile(RootFilesIn(dir.path()).key);
  ASSERT_TRUE(key.ok());
  for (const char* bad : {"", "UPPER.svc", "a,IP:1.2.3.4", "-x.svc", "a..b"}) {
    auto s = IssueServingCredentials(root->root(), key->get(), {bad}, std::chrono::hours(1), clock);
    EXPECT_TRUE(absl::IsInvalidArgument(s.status())) << bad;
  }
  EXPECT_TRUE(absl::IsInvalidArgument(
      IssueServingCredentials(root->root(), key->get(), {}, std::chrono::hours(1), clock)
          .status()));
  auto other = tls::GenerateEcP256Key();
  EXPECT_TRUE(absl::IsFailedPrecondition(
      IssueServingCredentials(root->root(), other->get(), {"a.svc"}, std::chrono::hours(1), clock)
          .status()));
}

}  // namespace
}  // namespace zm::ca
