// zmesh-ca's server in-process on 127.0.0.1 with ztunnel's real CA client over TLS: who may
// get which identity, and that neither a client without the mesh root nor a plaintext client
// gets anywhere.
#include "ca/cluster_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/tls/hbone_tls.h"
#include "tests/ca/ca_test_support.h"
#include "ztunnel/identity/ca_client.h"

namespace zm::ca {
namespace {

using testing::ClusterCaHarness;
using testing::Csr;
using ::testing::HasSubstr;
using testing::TempDir;
using testing::WriteFile;
using namespace std::chrono_literals;

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

class IssueServingCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto root = LoadOrCreateRoot(RootFilesIn(dir_.path()), "cluster.local", clock_);
    ASSERT_TRUE(root.ok()) << root.status();
    root_.emplace(std::move(*root));
  }

  TempDir dir_{"zmesh-serving"};
  FakeClock clock_;
  std::optional<tls::CertificateAuthority> root_;
};

// What the CA refuses reaches the caller (the cases themselves: tests/common/tls/ca_test.cc).
TEST_F(IssueServingCredentialsTest, PassesOnTheRefusalsOfTheCa) {
  EXPECT_TRUE(absl::IsInvalidArgument(IssueServingCredentials(*root_, {}, 1h).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(IssueServingCredentials(*root_, {"UPPER.svc"}, 1h).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(IssueServingCredentials(*root_, {"a.svc"}, 0s).status()));
}

TEST_F(IssueServingCredentialsTest, KeyChainAndNotAfterBelongTogether) {
  auto serving = IssueServingCredentials(*root_, {"zmesh-ca.zmesh-system.svc"}, 48h);
  ASSERT_TRUE(serving.ok()) << serving.status();
  // The key is the leaf's (FromPem checks), and the chain is {leaf, root}.
  auto creds = tls::Credentials::FromPem(serving->key_pem, serving->chain_pem);
  ASSERT_TRUE(creds.ok()) << creds.status();
  ASSERT_EQ(creds->chain.size(), 2u);
  EXPECT_EQ(*tls::CertToPem(creds->chain[1].get()), root_->RootPem());
  EXPECT_EQ(serving->not_after, creds->NotAfter());
  EXPECT_EQ(serving->not_after, clock_.Now() + 48h);
  // A fresh key every time.
  auto again = IssueServingCredentials(*root_, {"zmesh-ca.zmesh-system.svc"}, 48h);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_NE(again->key_pem, serving->key_pem);
}

}  // namespace
}  // namespace zm::ca
