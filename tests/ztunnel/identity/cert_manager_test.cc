// The certificate lifecycle in simulated time: fetch on first use, refresh at half-life,
// backoff while the CA is down (serving the current certificate until it expires), forget on
// the last release, refuse what the CA should not have issued, root rotation.
#include "ztunnel/identity/cert_manager.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/tls/ca.h"
#include "common/tls/csr.h"
#include "common/tls/pem.h"
#include "common/tls/ossl.h"

namespace zm::ztunnel {
namespace {

using std::chrono::hours;
using std::chrono::seconds;

// A CA in memory behind a switch: up, down, or lying about the identity.
class FakeSource : public CertificateSource {
 public:
  FakeSource(tls::CertificateAuthority* ca) : ca_(ca) {}
  bool down = false;
  std::optional<tls::SpiffeId> lie_as;  // sign this identity instead of the CSR's
  int calls = 0;
  tls::CertificateAuthority* ca_;

  absl::StatusOr<std::vector<std::string>> Fetch(const std::string& csr,
                                                 std::chrono::seconds ttl) override {
    ++calls;
    if (down) return absl::UnavailableError("CA unreachable");
    auto parsed = tls::ParseCsr(csr);
    if (!parsed.ok()) return parsed.status();
    if (lie_as) {
      // Sign a CSR of our own for another identity: what a compromised CA might return.
      auto key = tls::GenerateEcP256Key();
      auto other = tls::BuildCsr(key->get(), *lie_as);
      return ca_->Sign(*other, *lie_as, ttl);
    }
    return ca_->Sign(csr, parsed->identity, ttl);
  }
};

class CertManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("certmgr-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    ca_ = MakeCa("a");
    source_ = std::make_unique<FakeSource>(&*ca_);
    mgr_ = std::make_unique<CertManager>(*source_, clock_, CertManagerOptions{.ttl = hours(24)});
  }
  void TearDown() override {
    mgr_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::optional<tls::CertificateAuthority> MakeCa(const std::string& name) {
    auto ca = tls::CertificateAuthority::LoadOrCreate((dir_ / (name + ".pem")).string(),
                                                      (dir_ / (name + ".key")).string(),
                                                      "cluster.local", clock_);
    EXPECT_TRUE(ca.ok()) << ca.status();
    return std::move(*ca);
  }
  tls::SpiffeId Id(const std::string& sa) {
    return *tls::SpiffeId::Parse("spiffe://cluster.local/ns/demo/sa/" + sa);
  }

  std::filesystem::path dir_;
  FakeClock clock_;
  std::optional<tls::CertificateAuthority> ca_;
  std::unique_ptr<FakeSource> source_;
  std::unique_ptr<CertManager> mgr_;
};

TEST_F(CertManagerTest, UnknownIdentityIsNotFound) {
  EXPECT_TRUE(absl::IsNotFound(mgr_->Get(Id("x")).status()));
}

TEST_F(CertManagerTest, FetchesOnFirstUseAndRefreshesAtHalfLife) {
  mgr_->AddRef(Id("client"));
  EXPECT_TRUE(absl::IsUnavailable(mgr_->Get(Id("client")).status())) << "nothing fetched yet";
  mgr_->Tick();
  auto creds = mgr_->Get(Id("client"));
  ASSERT_TRUE(creds.ok()) << creds.status();
  EXPECT_EQ((*creds)->Identity()->ToString(), "spiffe://cluster.local/ns/demo/sa/client");
  EXPECT_EQ(mgr_->Status()[0].next_attempt - clock_.Now(), hours(12))
      << "refresh at half of the 24 h lifetime";
  EXPECT_EQ(source_->calls, 1);

  clock_.Advance(hours(6));
  mgr_->Tick();
  EXPECT_EQ(source_->calls, 1) << "not due before half-life";
  clock_.Advance(hours(6));
  mgr_->Tick();
  EXPECT_EQ(source_->calls, 2);
  auto renewed = mgr_->Get(Id("client"));
  ASSERT_TRUE(renewed.ok());
  EXPECT_NE(renewed->get(), creds->get()) << "a fresh certificate";
  EXPECT_NE(X509_cmp((*renewed)->leaf(), (*creds)->leaf()), 0);
}

TEST_F(CertManagerTest, CaDownKeepsServingTheCurrentCertWithBackoffUntilItExpires) {
  mgr_->AddRef(Id("client"));
  mgr_->Tick();
  auto first = mgr_->Get(Id("client"));
  ASSERT_TRUE(first.ok());
  source_->down = true;
  clock_.Advance(hours(12));
  std::vector<seconds> waits;
  for (int i = 0; i < 10; ++i) {
    auto next = mgr_->Tick();
    waits.push_back(std::chrono::duration_cast<seconds>(next - clock_.Now()));
    EXPECT_TRUE(mgr_->Get(Id("client")).ok()) << "the valid certificate is still served";
    clock_.Set(next);
  }
  EXPECT_EQ(waits[0], seconds(1));
  EXPECT_EQ(waits[1], seconds(2));
  EXPECT_EQ(waits[2], seconds(4));
  EXPECT_EQ(waits[7], seconds(128));
  EXPECT_EQ(waits[8], seconds(150)) << "capped at 150 s";
  EXPECT_EQ(waits[9], seconds(150));
  auto status = mgr_->Status();
  ASSERT_EQ(status.size(), 1u);
  EXPECT_EQ(status[0].failures, 10);
  EXPECT_NE(status[0].last_error.find("CA unreachable"), std::string::npos);

  // Past the end of the certificate's life (plus the CA's 60 s backdating), nothing valid.
  clock_.Advance(hours(13));
  auto expired = mgr_->Get(Id("client"));
  ASSERT_TRUE(absl::IsUnavailable(expired.status()));
  EXPECT_NE(expired.status().message().find("CA unreachable"), std::string_view::npos);

  source_->down = false;
  mgr_->Tick();
  EXPECT_TRUE(mgr_->Get(Id("client")).ok()) << "recovers once the CA is back";
  EXPECT_EQ(mgr_->Status()[0].failures, 0);
}

TEST_F(CertManagerTest, ForgetsAnIdentityWhenItsLastWorkloadLeaves) {
  mgr_->AddRef(Id("client"));
  mgr_->AddRef(Id("client"));
  mgr_->Tick();
  mgr_->Release(Id("client"));
  EXPECT_TRUE(mgr_->Get(Id("client")).ok()) << "one workload still uses it";
  mgr_->Release(Id("client"));
  EXPECT_TRUE(absl::IsNotFound(mgr_->Get(Id("client")).status()));
  clock_.Advance(hours(13));
  mgr_->Tick();
  EXPECT_EQ(source_->calls, 1) << "nothing is refreshed for a forgotten identity";
}

TEST_F(CertManagerTest, ACertificateForAnotherIdentityIsRefused) {
  source_->lie_as = Id("admin");
  mgr_->AddRef(Id("client"));
  mgr_->Tick();
  auto got = mgr_->Get(Id("client"));
  ASSERT_FALSE(got.ok());
  // Either check catches it: the leaf is not for our key, nor for our identity.
  const std::string& err = mgr_->Status()[0].last_error;
  EXPECT_TRUE(err.find("instead of") != std::string::npos || err.find("match") != std::string::npos)
      << err;
}

TEST_F(CertManagerTest, RootRotationMovesTheBundleToTheNewRoot) {
  mgr_->AddRef(Id("client"));
  mgr_->AddRef(Id("server"));
  mgr_->Tick();
  auto old_roots = mgr_->RootPems();
  ASSERT_EQ(old_roots.size(), 1u);
  EXPECT_EQ(old_roots[0], ca_->RootPem());

  auto ca_b = MakeCa("b");
  source_->ca_ = &*ca_b;
  clock_.Advance(hours(12));
  mgr_->Tick();
  auto roots = mgr_->RootPems();
  ASSERT_EQ(roots.size(), 1u);
  EXPECT_EQ(roots[0], ca_b->RootPem());
}

}  // namespace
}  // namespace zm::ztunnel
