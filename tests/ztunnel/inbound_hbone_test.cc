// In-process tier: inbound HBONE (ztunnel/inbound_hbone.h) on loopback. A real mesh CA signs
// the server pod's and the client's certificates; the client is an HBONE client session over
// asio::ssl with secure naming. Delivery is a plain loopback connect (no marks, no
// IP_TRANSPARENT), the pod's "own address" is 127.0.0.1.

#include "ztunnel/inbound_hbone.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <asio/ssl.hpp>
#include <filesystem>
#include <future>
#include <map>
#include <thread>

#include "common/base/strings.h"
#include "common/tls/ca.h"
#include "common/tls/csr.h"
#include "common/tls/pem.h"
#include "tests/ztunnel/test_helpers.h"
#include "common/hbone/client_session.h"
#include "ztunnel/metrics.h"
#include "ztunnel/workers.h"

namespace zm::ztunnel {
namespace {

using namespace zm::ztunnel::testing;
using asio::ip::tcp;
using SslStream = asio::ssl::stream<tcp::socket>;

constexpr char kServerId[] = "spiffe://cluster.local/ns/demo/sa/server";
constexpr char kClientId[] = "spiffe://cluster.local/ns/other/sa/client";

class InboundHboneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/zm-inbound-hbone-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto ca = tls::CertificateAuthority::LoadOrCreate(dir_ + "/root-cert.pem",
                                                      dir_ + "/root-key.pem", "cluster.local",
                                                      SystemClock::Get());
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_.emplace(std::move(*ca));
    server_creds_ = Issue(kServerId);
    client_creds_ = Issue(kClientId);

    proxy_ = std::make_unique<Proxy>(
        ProxyConfig{.set_marks = false, .transparent_delivery = false}, metrics_);
    HboneCredentialSource source{
        .get = [this](const tls::SpiffeId& id)
            -> absl::StatusOr<std::shared_ptr<const tls::Credentials>> {
          std::lock_guard lock(mu_);
          if (!have_server_cert_ || id.ToString() != kServerId) {
            return absl::UnavailableError("no certificate yet");
          }
          return server_creds_;
        },
        .roots = [this] { return std::vector<std::string>{ca_->RootPem()}; }};
    hbone_ = std::make_unique<InboundHbone>(*proxy_, std::move(source));
    hbone_->Install();
    pod_ = std::make_shared<PodInfo>();
    pod_->uid = "uid-1";
    pod_->name = "server";
    pod_->ns = "demo";
    pod_->service_account = "server";
    pod_->hbone_tls = std::make_shared<HboneTlsCache>();

    PodListenerFds fds;
    fds.hbone = *CreateListener({.ip = *IpAddr::Parse("127.0.0.1"), .port = 0}, {.mark = 0});
    hbone_port_ = LocalPort(fds.hbone.get());
    listeners_ = std::make_shared<PodListeners>(workers_.ctx(0), *proxy_, pod_);
    ASSERT_TRUE(workers_.RunOn(0, [&] { return listeners_->Start(std::move(fds)); }).ok());
    app_ = Listen4();
    client_thread_ = std::thread([this] { client_io_.run(); });
  }

  void TearDown() override {
    if (listeners_) workers_.RunOn(0, [&] { listeners_->Close(true); });
    workers_.Stop();
    guard_.reset();
    client_io_.stop();
    if (client_thread_.joinable()) client_thread_.join();
    std::filesystem::remove_all(dir_);
  }

  std::shared_ptr<const tls::Credentials> Issue(const char* uri) {
    auto id = *tls::SpiffeId::Parse(uri);
    auto key = *tls::GenerateEcP256Key();
    auto csr = *tls::BuildCsr(key.get(), id);
    auto chain = ca_->Sign(csr, id, std::chrono::hours(1));
    EXPECT_TRUE(chain.ok()) << chain.status();
    auto creds = tls::Credentials::FromPem(*tls::PrivateKeyToPem(key.get()), *chain);
    EXPECT_TRUE(creds.ok()) << creds.status();
    return std::make_shared<const tls::Credentials>(std::move(*creds));
  }

  // TLS handshake as an HBONE client with `creds`; the session on success.
  absl::StatusOr<std::shared_ptr<hbone::HboneClientSession>> Dial(const tls::Credentials& creds) {
    auto roots = *tls::RootBundle::FromPems({ca_->RootPem()});
    auto ctx = tls::MakeClientContext(creds, roots, "cluster.local");
    if (!ctx.ok()) return ctx.status();
    auto actx = std::make_shared<asio::ssl::context>(ctx->release());
    auto promise = std::make_shared<
        std::promise<absl::StatusOr<std::shared_ptr<hbone::HboneClientSession>>>>();
    auto fut = promise->get_future();
    asio::post(client_io_, [this, actx, promise] {
      tcp::socket s(client_io_);
      asio::error_code ec;
      s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), hbone_port_), ec);
      if (ec) {
        promise->set_value(absl::UnavailableError(ec.message()));
        return;
      }
      auto tls = std::make_shared<SslStream>(std::move(s), *actx);
      (void)tls::SetExpectedIdentities(tls->native_handle(), {*tls::SpiffeId::Parse(kServerId)});
      tls->async_handshake(asio::ssl::stream_base::client,
                           [tls, promise, actx](const asio::error_code& ec) {
                             if (ec) {
                               promise->set_value(absl::UnavailableError(ec.message()));
                               return;
                             }
                             auto c = hbone::HboneClientSession::Create(
                                 hbone::MakeTransport(std::move(*tls)));
                             c->Start();
                             promise->set_value(c);
                           });
    });
    if (fut.wait_for(kDeadline) != std::future_status::ready) {
      return absl::DeadlineExceededError("no handshake result");
    }
    return fut.get();
  }

  struct Opened {
    absl::StatusOr<int> status = absl::UnknownError("unset");
    std::shared_ptr<hbone::HboneStream> stream;
  };
  Opened Open(const std::shared_ptr<hbone::HboneClientSession>& c, std::string authority) {
    auto p = std::make_shared<std::promise<Opened>>();
    auto f = p->get_future();
    c->OpenStream(std::move(authority), {},
                  [p](absl::StatusOr<int> status, std::shared_ptr<hbone::HboneStream> st) {
                    p->set_value(Opened{status, std::move(st)});
                  });
    if (f.wait_for(kDeadline) != std::future_status::ready) {
      return Opened{absl::DeadlineExceededError("no response"), nullptr};
    }
    return f.get();
  }

  void SetHaveCert(bool v) {
    std::lock_guard lock(mu_);
    have_server_cert_ = v;
  }

  std::string dir_;
  std::optional<tls::CertificateAuthority> ca_;
  std::mutex mu_;
  bool have_server_cert_ = true;
  std::shared_ptr<const tls::Credentials> server_creds_, client_creds_;
  Metrics metrics_;
  Workers workers_{1};
  std::unique_ptr<Proxy> proxy_;
  std::unique_ptr<InboundHbone> hbone_;
  std::shared_ptr<PodInfo> pod_;
  std::shared_ptr<PodListeners> listeners_;
  uint16_t hbone_port_ = 0;
  Fd app_;
  asio::io_context client_io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_{
      asio::make_work_guard(client_io_)};
  std::thread client_thread_;
};

TEST_F(InboundHboneTest, ConnectToTheAppRelaysAndCounts) {
  auto c = Dial(*client_creds_);
  ASSERT_TRUE(c.ok()) << c.status();
  Opened r = Open(*c, StrCat("127.0.0.1:", LocalPort(app_.get())));
  ASSERT_TRUE(r.status.ok()) << r.status.status();
  EXPECT_EQ(*r.status, 200);
  Fd upstream = AcceptWithin(app_.get());
  ASSERT_TRUE(upstream);

  // The client's end of the tunnel: a loopback pair, one side attached to the stream.
  Fd local_listener = Listen4();
  Fd app_side = Connect4(LocalPort(local_listener.get()));
  Fd local = AcceptWithin(local_listener.get());
  auto done = std::make_shared<std::promise<hbone::StreamResult>>();
  auto done_f = done->get_future();
  asio::post(client_io_, [&, stream = r.stream, done, fd = local.release()]() mutable {
    tcp::socket s(client_io_);
    s.assign(tcp::v4(), fd);
    stream->Start(std::move(s), [done](const hbone::StreamResult& res) { done->set_value(res); });
  });
  ASSERT_TRUE(SendAll(app_side.get(), "ping"));
  ASSERT_EQ(::shutdown(app_side.get(), SHUT_WR), 0);
  ReadResult got = ReadUntilEnd(upstream.get());
  EXPECT_EQ(got.data, "ping");
  EXPECT_TRUE(got.eof);
  ASSERT_TRUE(SendAll(upstream.get(), "pong"));
  upstream.reset();
  ReadResult back = ReadUntilEnd(app_side.get());
  EXPECT_EQ(back.data, "pong");
  ASSERT_EQ(done_f.wait_for(kDeadline), std::future_status::ready);

  auto series = metrics_.Tcp({.direction = Direction::kInbound,
                              .destination_workload = "server",
                              .destination_namespace = "demo"});
  EXPECT_TRUE(WaitFor([&] { return series->closed.load() == 1; }));
  EXPECT_EQ(series->opened.load(), 1u);
  EXPECT_EQ(series->sent_bytes.load(), 4u);
  EXPECT_EQ(series->received_bytes.load(), 4u);
}

TEST_F(InboundHboneTest, RejectsOtherAddressesLoopPortsAndFailedConnects) {
  auto c = Dial(*client_creds_);
  ASSERT_TRUE(c.ok()) << c.status();
  // Not this pod's address.
  Opened other = Open(*c, StrCat("127.0.0.2:", LocalPort(app_.get())));
  ASSERT_TRUE(other.status.ok()) << other.status.status();
  EXPECT_EQ(*other.status, 400);
  // ztunnel's own ports.
  for (uint16_t port : {kPortOutbound, kPortInbound, kPortHbone}) {
    Opened loop = Open(*c, StrCat("127.0.0.1:", port));
    ASSERT_TRUE(loop.status.ok()) << loop.status.status();
    EXPECT_EQ(*loop.status, 400) << port;
  }
  EXPECT_EQ(metrics_.Failures(FailureReason::kLoopGuard), 3u);
  // Nothing listening: 503.
  uint16_t closed_port = 0;
  {
    Fd l = Listen4();
    closed_port = LocalPort(l.get());
  }
  Opened refused = Open(*c, StrCat("127.0.0.1:", closed_port));
  ASSERT_TRUE(refused.status.ok()) << refused.status.status();
  EXPECT_EQ(*refused.status, 503);
  EXPECT_EQ(metrics_.Failures(FailureReason::kConnectRefused), 1u);
  // The session still works.
  Opened ok = Open(*c, StrCat("127.0.0.1:", LocalPort(app_.get())));
  ASSERT_TRUE(ok.status.ok()) << ok.status.status();
  EXPECT_EQ(*ok.status, 200);
}

TEST_F(InboundHboneTest, ClientFromAnotherRootIsRefusedOthersUnaffected) {
  // A client certificate signed by another root, same trust domain.
  std::string other_dir = dir_ + "/other";
  std::filesystem::create_directories(other_dir);
  auto other = tls::CertificateAuthority::LoadOrCreate(
      other_dir + "/root-cert.pem", other_dir + "/root-key.pem", "cluster.local",
      SystemClock::Get());
  ASSERT_TRUE(other.ok()) << other.status();
  auto id = *tls::SpiffeId::Parse(kClientId);
  auto key = *tls::GenerateEcP256Key();
  auto chain = other->Sign(*tls::BuildCsr(key.get(), id), id, std::chrono::hours(1));
  ASSERT_TRUE(chain.ok());
  auto creds = tls::Credentials::FromPem(*tls::PrivateKeyToPem(key.get()), *chain);
  ASSERT_TRUE(creds.ok());
  // TLS 1.3: the client finishes first; the server's refusal shows on the first request.
  auto bad = Dial(*creds);
  if (bad.ok()) {
    Opened r = Open(*bad, StrCat("127.0.0.1:", LocalPort(app_.get())));
    EXPECT_FALSE(r.status.ok() && *r.status == 200);
  }
  auto good = Dial(*client_creds_);
  ASSERT_TRUE(good.ok()) << good.status();
  Opened r = Open(*good, StrCat("127.0.0.1:", LocalPort(app_.get())));
  ASSERT_TRUE(r.status.ok()) << r.status.status();
  EXPECT_EQ(*r.status, 200);
}

TEST_F(InboundHboneTest, NoCertificateYetClosesAndRotationRebuildsTheContext) {
  SetHaveCert(false);
  auto c = Dial(*client_creds_);
  EXPECT_FALSE(c.ok());
  SetHaveCert(true);
  c = Dial(*client_creds_);
  ASSERT_TRUE(c.ok()) << c.status();
  std::shared_ptr<asio::ssl::context> first;
  {
    std::lock_guard lock(pod_->hbone_tls->mu);
    first = pod_->hbone_tls->ctx;
  }
  ASSERT_NE(first, nullptr);
  // Same credentials object: the context is reused.
  auto again = Dial(*client_creds_);
  ASSERT_TRUE(again.ok());
  {
    std::lock_guard lock(pod_->hbone_tls->mu);
    EXPECT_EQ(pod_->hbone_tls->ctx, first);
  }
  // Rotation: a new credentials object -> a new context.
  {
    auto rotated = Issue(kServerId);
    std::lock_guard lock(mu_);
    server_creds_ = rotated;
  }
  auto after = Dial(*client_creds_);
  ASSERT_TRUE(after.ok()) << after.status();
  Opened r = Open(*after, StrCat("127.0.0.1:", LocalPort(app_.get())));
  ASSERT_TRUE(r.status.ok()) << r.status.status();
  EXPECT_EQ(*r.status, 200);
  std::lock_guard lock(pod_->hbone_tls->mu);
  EXPECT_NE(pod_->hbone_tls->ctx, first);
  EXPECT_EQ(pod_->hbone_tls->creds, server_creds_);
  // The old session (made with the first context) keeps working.
}

}  // namespace
}  // namespace zm::ztunnel
