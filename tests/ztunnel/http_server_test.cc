// In-process tier: the metrics/readiness HTTP server on loopback.

#include "common/http/http_server.h"
#include "ztunnel/admin.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "tests/ztunnel/test_helpers.h"
#include "ztunnel/identity/cert_manager.h"
#include "ztunnel/metrics.h"

namespace zm::ztunnel {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace zm::ztunnel::testing;

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    readiness_.AddPending("zds-snapshot");
    auto port = server_.Listen({.ip = *IpAddr::Parse("127.0.0.1"), .port = 0});
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
    thread_ = std::thread([this] { ctx_.run(); });
  }
  void TearDown() override {
    asio::post(ctx_, [this] { server_.Stop(); });
    guard_.reset();
    ctx_.stop();
    thread_.join();
  }

  // Sends `request` (then half-closes when asked) and returns the whole response.
  std::string Exchange(std::string_view request, bool half_close = false) {
    Fd c = Connect4(port_);
    if (!c) return "connect failed";
    SendAll(c.get(), request);
    if (half_close) ::shutdown(c.get(), SHUT_WR);
    ReadResult r = ReadUntilEnd(c.get());
    return r.timed_out ? "timed out" : r.data;
  }

  Metrics metrics_;
  Readiness readiness_;
  asio::io_context ctx_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_{ctx_.get_executor()};
  // A CA that is down: the certificate manager has an identity but no certificate.
  struct DownCa : CertificateSource {
    absl::StatusOr<std::vector<std::string>> Fetch(const std::string&,
                                                   std::chrono::seconds) override {
      return absl::UnavailableError("CA unreachable");
    }
  } ca_;
  FakeClock clock_;
  CertManager certs_{ca_, clock_};
  http::HttpServer server_{ctx_, AdminHandler(metrics_, readiness_, &certs_)};
  uint16_t port_ = 0;
  std::thread thread_;
};

TEST_F(HttpServerTest, ServesMetrics) {
  metrics_.CountFailure(FailureReason::kLoopGuard);
  metrics_.SetWorkloads(3);
  auto s = metrics_.Tcp({.direction = Direction::kInbound,
                         .destination_workload = "srv",
                         .destination_namespace = "demo"});
  s->opened += 2;
  std::string r = Exchange("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(r, HasSubstr("# TYPE istio_tcp_connections_opened_total counter\n"));
  EXPECT_THAT(r, HasSubstr("istio_tcp_connections_opened_total{reporter=\"destination\","
                           "source_workload=\"unknown\",source_workload_namespace=\"unknown\","
                           "destination_workload=\"srv\","
                           "destination_workload_namespace=\"demo\"} 2\n"));
  EXPECT_THAT(r, HasSubstr("istio_tcp_connections_closed_total{"));
  EXPECT_THAT(r, HasSubstr("zmesh_ztunnel_connection_failures_total{reason=\"loop-guard\"} 1\n"));
  EXPECT_THAT(r, HasSubstr("# TYPE zmesh_ztunnel_workloads gauge\nzmesh_ztunnel_workloads 3\n"));
}

TEST_F(HttpServerTest, ReadinessFollowsPendingTasks) {
  std::string r = Exchange("GET /healthz/ready HTTP/1.1\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 503 "));
  EXPECT_THAT(r, HasSubstr("zds-snapshot"));
  readiness_.Done("zds-snapshot");
  r = Exchange("GET /healthz/ready HTTP/1.1\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(r, HasSubstr("\r\n\r\nready\n"));
}

TEST_F(HttpServerTest, UnknownPathIs404) {
  EXPECT_THAT(Exchange("GET /nope HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 404 "));
  EXPECT_THAT(Exchange("POST /metrics HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 405 "));
}

TEST_F(HttpServerTest, GarbageIs400AndTheServerKeepsServing) {
  EXPECT_THAT(Exchange("garbage\r\n\r\n"), StartsWith("HTTP/1.1 400 "));
  EXPECT_THAT(Exchange("GET metrics HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 400 "));
  EXPECT_THAT(Exchange("GET /metrics HTTP/9\r\n\r\n"), StartsWith("HTTP/1.1 400 "));
  static constexpr char kBinary[] = "\x00\xff\x01 / HTTP/1.1\r\n\r\n";
  EXPECT_THAT(Exchange(std::string(kBinary, sizeof(kBinary) - 1)), StartsWith("HTTP/1.1 400 "));
  // No end of headers, then EOF.
  EXPECT_THAT(Exchange("\x16\x03\x01 binary", /*half_close=*/true), StartsWith("HTTP/1.1 400 "));
  // Headers larger than the limit.
  EXPECT_THAT(Exchange(std::string(http::HttpServer::kMaxRequestBytes + 100, 'A')),
              StartsWith("HTTP/1.1 400 "));
  EXPECT_THAT(Exchange("GET /metrics HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 200 "));
}

TEST_F(HttpServerTest, DebugCertsShowsEveryIdentityAndWhyItHasNoCertificate) {
  certs_.AddRef(*tls::SpiffeId::Parse("spiffe://cluster.local/ns/demo/sa/web"));
  certs_.Tick();
  std::string r = Exchange("GET /debug/certs HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_NE(r.find("application/json"), std::string::npos);
  EXPECT_NE(r.find("\"identity\": \"spiffe://cluster.local/ns/demo/sa/web\""), std::string::npos)
      << r;
  EXPECT_NE(r.find("\"has_cert\": false"), std::string::npos) << r;
  EXPECT_NE(r.find("\"failures\": 1"), std::string::npos) << r;
  EXPECT_NE(r.find("CA unreachable"), std::string::npos) << r;
}

}  // namespace
}  // namespace zm::ztunnel
