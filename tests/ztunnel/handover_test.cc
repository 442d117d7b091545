// What a surge upgrade needs from ztunnel's pod handling (ARCHITECTURE.md "Upgrades"), with real
// network namespaces (root):
// - a second ztunnel's listeners join the first one's in the same pod netns (SO_REUSEPORT), and
//   the pod stays reachable while the first one closes its listeners (its drain);
// - a pod's listeners open only once its certificate is here, unless the CA does not answer
//   within the wait; after such a timeout, later pods do not wait again for a while.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "common/base/clock.h"
#include "common/tls/ca.h"
#include "common/tls/csr.h"
#include "tests/ztunnel/test_helpers.h"
#include "ztunnel/identity/cert_manager.h"
#include "ztunnel/metrics.h"
#include "ztunnel/proxy.h"
#include "ztunnel/workers.h"
#include "ztunnel/workload_identities.h"
#include "ztunnel/workload_manager.h"

namespace zm::ztunnel {
namespace {

using namespace zm::ztunnel::testing;
using std::chrono::milliseconds;

// A ztunnel's pod handling without ZDS: the manager on its own workers.
struct Ztunnel {
  Metrics metrics;
  Readiness readiness;
  Workers workers{1};
  Proxy proxy{ProxyConfig{}, metrics};
  WorkloadManager manager{workers, proxy, metrics, readiness};
  ~Ztunnel() {
    manager.CloseAll();
    workers.Stop();
  }
  zds::Ack Add(WorkloadHandler& handler, const std::string& uid, int netns) {
    zds::AddWorkload add{.uid = uid, .name = "pod-" + uid, .ns = "demo"};
    add.netns = Fd(::fcntl(netns, F_DUPFD_CLOEXEC, 0));
    return handler.Handle(zds::Request(std::move(add)));
  }
};

TEST(HandoverTest, ASecondZtunnelJoinsThePodsListenersAndKeepsThePodReachable) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: creates network namespaces and sets SO_MARK";
  auto ns = NewNetns();
  ASSERT_TRUE(ns.ok()) << ns.status();
  auto old_zt = std::make_unique<Ztunnel>();
  Ztunnel new_zt;
  ASSERT_EQ(old_zt->Add(old_zt->manager, "u1", ns->get()).error, "");
  // Without SO_REUSEPORT on both, this bind fails with EADDRINUSE.
  zds::Ack ack = new_zt.Add(new_zt.manager, "u1", ns->get());
  ASSERT_EQ(ack.error, "");
  ASSERT_EQ(ack.listeners.size(), 1u);
  for (uint16_t port : {15001, 15006, 15008}) EXPECT_EQ(ConnectInNetns(ns->get(), port), 0) << port;

  old_zt->manager.CloseAll();  // the old one drains: its listeners are gone
  old_zt.reset();
  for (uint16_t port : {15001, 15006, 15008}) EXPECT_EQ(ConnectInNetns(ns->get(), port), 0) << port;

  new_zt.manager.CloseAll();
  EXPECT_EQ(ConnectInNetns(ns->get(), 15001), ECONNREFUSED);  // nobody left: fail closed
}

// A CA behind switches: refusing at once, or answering (with a failure) only after 2.5 s.
class SwitchedCa : public CertificateSource {
 public:
  explicit SwitchedCa(tls::CertificateAuthority& ca) : ca_(ca) {}
  std::atomic<bool> down{false};
  std::atomic<bool> slow{false};
  absl::StatusOr<std::vector<std::string>> Fetch(const std::string& csr,
                                                 std::chrono::seconds ttl) override {
    if (slow) {
      std::this_thread::sleep_for(milliseconds(2500));
      return absl::DeadlineExceededError("CA timed out");
    }
    if (down) return absl::UnavailableError("CA unreachable");
    auto parsed = tls::ParseCsr(csr);
    if (!parsed.ok()) return parsed.status();
    return ca_.Sign(csr, parsed->identity, ttl);
  }

 private:
  tls::CertificateAuthority& ca_;
};

class CertificateWaitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "needs root: creates network namespaces and sets SO_MARK";
    dir_ = std::filesystem::temp_directory_path() / ("handover-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    auto ca = tls::CertificateAuthority::LoadOrCreate((dir_ / "ca.pem").string(),
                                                      (dir_ / "ca.key").string(), "cluster.local",
                                                      SystemClock::Get());
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_.emplace(std::move(*ca));
    source_ = std::make_unique<SwitchedCa>(*ca_);
    certs_ = std::make_unique<CertManager>(*source_, SystemClock::Get());
    certs_->Start();
    identities_ = std::make_unique<WorkloadIdentities>(zt_.manager, *certs_, "cluster.local",
                                                       milliseconds(1500));
  }
  void TearDown() override {
    identities_.reset();
    certs_.reset();
    std::filesystem::remove_all(dir_);
  }
  tls::SpiffeId Id(const std::string& sa) {
    return *tls::SpiffeId::Parse("spiffe://cluster.local/ns/demo/sa/" + sa);
  }
  milliseconds TimedAdd(const std::string& uid, int netns, zds::Ack* ack) {
    auto t0 = std::chrono::steady_clock::now();
    *ack = zt_.Add(*identities_, uid, netns);
    return std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0);
  }

  std::filesystem::path dir_;
  std::optional<tls::CertificateAuthority> ca_;
  std::unique_ptr<SwitchedCa> source_;
  std::unique_ptr<CertManager> certs_;
  Ztunnel zt_;
  std::unique_ptr<WorkloadIdentities> identities_;
};

TEST_F(CertificateWaitTest, ThePodsCertificateIsHereBeforeItsListeners) {
  auto ns = NewNetns();
  ASSERT_TRUE(ns.ok()) << ns.status();
  zds::Ack ack;
  TimedAdd("u1", ns->get(), &ack);
  ASSERT_EQ(ack.error, "");
  // The pod is served now, and its certificate (identity demo/default) was fetched first.
  EXPECT_THAT(zt_.manager.Uids(), ::testing::ElementsAre("u1"));
  EXPECT_TRUE(certs_->Get(Id("default")).ok());
}

TEST_F(CertificateWaitTest, ACaThatDoesNotAnswerDelaysOnePodOnlyAndNeverLosesIt) {
  source_->slow = true;
  auto ns1 = NewNetns();
  auto ns2 = NewNetns();
  ASSERT_TRUE(ns1.ok() && ns2.ok());
  zds::Ack ack;
  milliseconds first = TimedAdd("u1", ns1->get(), &ack);
  EXPECT_EQ(ack.error, "");  // served anyway: inbound HBONE fails closed until the certificate
  EXPECT_GE(first, milliseconds(1400));
  milliseconds second = TimedAdd("u2", ns2->get(), &ack);
  EXPECT_EQ(ack.error, "");
  EXPECT_LT(second, milliseconds(1400)) << "the second pod waited for the CA again";
  EXPECT_THAT(zt_.manager.Uids(), ::testing::UnorderedElementsAre("u1", "u2"));
  EXPECT_FALSE(certs_->Get(Id("default")).ok());
}

TEST_F(CertificateWaitTest, ACaThatRefusesDelaysNobody) {
  source_->down = true;
  auto ns = NewNetns();
  ASSERT_TRUE(ns.ok()) << ns.status();
  zds::Ack ack;
  milliseconds took = TimedAdd("u1", ns->get(), &ack);
  EXPECT_EQ(ack.error, "");
  EXPECT_LT(took, milliseconds(1400)) << "the pod waited out the timeout for a CA that refused";
  EXPECT_THAT(zt_.manager.Uids(), ::testing::ElementsAre("u1"));
  EXPECT_FALSE(certs_->Get(Id("default")).ok());
}

}  // namespace
}  // namespace zm::ztunnel
