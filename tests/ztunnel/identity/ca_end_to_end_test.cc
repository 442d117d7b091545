// ztunnel's CA client against the agent's certificate service on a Unix socket: the caller
// is known by its peer credentials, and only authorized identities are issued.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "common/ca/ca_service.h"
#include "common/ca/uds_server.h"
#include "common/tls/csr.h"
#include "common/tls/hbone_tls.h"
#include "common/tls/pem.h"
#include "ztunnel/identity/ca_client.h"
#include "ztunnel/identity/cert_manager.h"

namespace zm {
namespace {

class CaEndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("ca-e2e-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    auto ca = tls::CertificateAuthority::LoadOrCreate(
        (dir_ / "root.pem").string(), (dir_ / "root.key").string(), "cluster.local", clock_);
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_.emplace(std::move(*ca));
    service_ = std::make_unique<ca::CaService>(
        *ca_, [this](grpc::ServerContext* ctx) { return server_->CallerOf(ctx); },
        [this](const ca::Caller& caller, const tls::SpiffeId& id) -> absl::Status {
          seen_pid_ = caller.pid;
          if (id.sa != "allowed") return absl::PermissionDeniedError("no such pod on this node");
          return absl::OkStatus();
        },
        ca::CaPolicy{.max_ttl = std::chrono::hours(24)});
    socket_ = (dir_ / "ca.sock").string();
    auto server = ca::UdsGrpcServer::Start(socket_, {service_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ = std::make_unique<ztunnel::GrpcCaClient>("unix:" + socket_);
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string Csr(const std::string& sa) {
    auto key = tls::GenerateEcP256Key();
    return *tls::BuildCsr(key->get(),
                          *tls::SpiffeId::Parse("spiffe://cluster.local/ns/demo/sa/" + sa));
  }

  std::filesystem::path dir_;
  FakeClock clock_{std::chrono::system_clock::now()};
  std::optional<tls::CertificateAuthority> ca_;
  std::unique_ptr<ca::CaService> service_;
  std::unique_ptr<ca::UdsGrpcServer> server_;
  std::unique_ptr<ztunnel::GrpcCaClient> client_;
  std::string socket_;
  pid_t seen_pid_ = 0;
};

TEST_F(CaEndToEndTest, AnUnauthorizedIdentityIsRefusedWithTheReason) {
  auto chain = client_->Fetch(Csr("someone-else"), std::chrono::hours(24));
  ASSERT_FALSE(chain.ok());
  EXPECT_TRUE(absl::IsPermissionDenied(chain.status())) << chain.status();
  EXPECT_NE(chain.status().message().find("no such pod on this node"), std::string_view::npos);
}

TEST_F(CaEndToEndTest, GarbageCsrIsInvalidArgument) {
  auto chain = client_->Fetch("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n", std::chrono::hours(1));
  ASSERT_FALSE(chain.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(chain.status())) << chain.status();
}

TEST_F(CaEndToEndTest, TheCallerIsKnownByItsPeerCredentials) {
  auto chain = client_->Fetch(Csr("allowed"), std::chrono::hours(24));
  ASSERT_TRUE(chain.ok()) << chain.status();
  EXPECT_EQ(seen_pid_, getpid());
  ASSERT_EQ(chain->size(), 2u);
  EXPECT_EQ(chain->back(), ca_->RootPem());
}

TEST_F(CaEndToEndTest, TtlIsCappedByPolicy) {
  auto chain = client_->Fetch(Csr("allowed"), std::chrono::hours(24 * 365));
  ASSERT_TRUE(chain.ok()) << chain.status();
  auto leaf = tls::CertFromPem(chain->front());
  ASSERT_TRUE(leaf.ok());
  int days = 0, secs = 0;
  ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(leaf->get()), X509_get0_notAfter(leaf->get()));
  EXPECT_LE(days * 86400 + secs, 24 * 3600 + 120) << "24 h plus the CA's clock-skew backdating";
}

TEST_F(CaEndToEndTest, TheCertificateManagerGetsItsCertificatesFromTheAgentCa) {
  SystemClock wall;
  ztunnel::CertManager mgr(*client_, wall);
  auto id = *tls::SpiffeId::Parse("spiffe://cluster.local/ns/demo/sa/allowed");
  mgr.AddRef(id);
  mgr.Tick();
  auto creds = mgr.Get(id);
  ASSERT_TRUE(creds.ok()) << creds.status();
  EXPECT_EQ((*creds)->Identity()->ToString(), id.ToString());
  EXPECT_EQ(mgr.RootPems().size(), 1u);
}

}  // namespace
}  // namespace zm
