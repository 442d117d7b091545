// In-process tier: the plain-TCP data path on loopback, with the kernel's "where was this
// connection going" answers injected (ProxyConfig::outbound_dst / inbound_dst).

#include "ztunnel/proxy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/ztunnel/test_helpers.h"
#include "ztunnel/metrics.h"
#include "ztunnel/sockets.h"
#include "ztunnel/workers.h"

namespace zm::ztunnel {
namespace {

using ::testing::HasSubstr;
using namespace zm::ztunnel::testing;

Endpoint Loopback(uint16_t port) { return {.ip = *IpAddr::Parse("127.0.0.1"), .port = port}; }

class ProxyTest : public ::testing::Test {
 protected:
  // Starts a pod whose outbound (and inbound) listeners are on ephemeral loopback ports.
  void StartPod(ProxyConfig config) {
    config.set_marks = IsRoot();  // SO_MARK needs CAP_NET_ADMIN
    proxy_ = std::make_unique<Proxy>(std::move(config), metrics_);
    auto pod = std::make_shared<PodInfo>();
    pod->uid = "uid-1";
    pod->name = "client";
    pod->ns = "demo";
    PodListenerFds fds;
    fds.outbound4 = *CreateListener(Loopback(0), {.mark = 0});
    fds.inbound = *CreateListener(Loopback(0), {.mark = 0});
    outbound_port_ = LocalPort(fds.outbound4.get());
    inbound_port_ = LocalPort(fds.inbound.get());
    listeners_ = std::make_shared<PodListeners>(workers_.ctx(0), *proxy_, pod);
    ASSERT_TRUE(workers_.RunOn(0, [&] { return listeners_->Start(std::move(fds)); }).ok());
  }

  void TearDown() override {
    if (listeners_) workers_.RunOn(0, [&] { listeners_->Close(true); });
    workers_.Stop();
  }

  ProxyConfig DialTo(uint16_t port) {
    ProxyConfig c;
    c.outbound_dst = [port](int) -> absl::StatusOr<Endpoint> { return Loopback(port); };
    return c;
  }

  std::shared_ptr<TcpSeries> Outbound() {
    return metrics_.Tcp({.direction = Direction::kOutbound,
                         .source_workload = "client",
                         .source_namespace = "demo"});
  }

  Metrics metrics_;
  Workers workers_{1};
  std::unique_ptr<Proxy> proxy_;
  std::shared_ptr<PodListeners> listeners_;
  uint16_t outbound_port_ = 0;
  uint16_t inbound_port_ = 0;
};

TEST_F(ProxyTest, RelaysBothWaysWithHalfCloseAndCountsBytes) {
  Fd server_listener = Listen4();
  StartPod(DialTo(LocalPort(server_listener.get())));

  Fd client = Connect4(outbound_port_);
  ASSERT_TRUE(client);
  Fd server = AcceptWithin(server_listener.get());
  ASSERT_TRUE(server);

  ASSERT_TRUE(SendAll(client.get(), "hello"));
  ASSERT_EQ(::shutdown(client.get(), SHUT_WR), 0);
  // The server sees the request and then the client's half-close...
  ReadResult req = ReadUntilEnd(server.get());
  EXPECT_EQ(req.data, "hello");
  EXPECT_TRUE(req.eof);
  // ...and can still answer on the other half.
  ASSERT_TRUE(SendAll(server.get(), "world!"));
  server.reset();
  ReadResult resp = ReadUntilEnd(client.get());
  EXPECT_EQ(resp.data, "world!");
  EXPECT_TRUE(resp.eof);

  auto series = Outbound();
  ASSERT_TRUE(WaitFor([&] { return series->closed.load() == 1; }));
  EXPECT_EQ(series->opened.load(), 1u);
  EXPECT_EQ(series->sent_bytes.load(), 5u);
  EXPECT_EQ(series->received_bytes.load(), 6u);

  std::string text = metrics_.Render();
  EXPECT_THAT(text, HasSubstr("istio_tcp_connections_opened_total{reporter=\"source\","
                              "source_workload=\"client\",source_workload_namespace=\"demo\","
                              "destination_workload=\"unknown\","
                              "destination_workload_namespace=\"unknown\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("istio_tcp_sent_bytes_total{reporter=\"source\""));
  EXPECT_THAT(text, HasSubstr("} 5\n"));
  EXPECT_THAT(text, HasSubstr("istio_tcp_received_bytes_total{reporter=\"source\""));
  EXPECT_THAT(text,
              HasSubstr("zmesh_ztunnel_connection_failures_total{reason=\"connect-refused\"} 0\n"));
}

TEST_F(ProxyTest, RelaysLargeTransfersBothWays) {
  Fd server_listener = Listen4();
  StartPod(DialTo(LocalPort(server_listener.get())));
  Fd client = Connect4(outbound_port_);
  ASSERT_TRUE(client);
  Fd server = AcceptWithin(server_listener.get());
  ASSERT_TRUE(server);

  std::string up(3 * 1024 * 1024 + 7, 'u');
  std::string down(2 * 1024 * 1024 + 3, 'd');
  std::thread writer([&] {
    SendAll(client.get(), up);
    ::shutdown(client.get(), SHUT_WR);
  });
  std::thread server_writer([&] {
    SendAll(server.get(), down);
    ::shutdown(server.get(), SHUT_WR);
  });
  ReadResult at_server = ReadUntilEnd(server.get());
  ReadResult at_client = ReadUntilEnd(client.get());
  writer.join();
  server_writer.join();
  EXPECT_EQ(at_server.data.size(), up.size());
  EXPECT_EQ(at_client.data.size(), down.size());
  EXPECT_TRUE(at_server.eof);
  EXPECT_TRUE(at_client.eof);
  auto series = Outbound();
  ASSERT_TRUE(WaitFor([&] { return series->closed.load() == 1; }));
  EXPECT_EQ(series->sent_bytes.load(), up.size());
  EXPECT_EQ(series->received_bytes.load(), down.size());
}

TEST_F(ProxyTest, ClientResetReachesTheServer) {
  Fd server_listener = Listen4();
  StartPod(DialTo(LocalPort(server_listener.get())));
  Fd client = Connect4(outbound_port_);
  ASSERT_TRUE(client);
  Fd server = AcceptWithin(server_listener.get());
  ASSERT_TRUE(server);
  ASSERT_TRUE(SendAll(client.get(), "x"));
  ReadResult first = ReadUntilEnd(server.get(), 1);
  ASSERT_EQ(first.data, "x");

  LingerZero(client.get());
  client.reset();  // RST
  ReadResult r = ReadUntilEnd(server.get());
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.error, ECONNRESET);
  auto series = Outbound();
  ASSERT_TRUE(WaitFor([&] { return series->closed.load() == 1; }));
}

TEST_F(ProxyTest, ServerResetReachesTheClient) {
  Fd server_listener = Listen4();
  StartPod(DialTo(LocalPort(server_listener.get())));
  Fd client = Connect4(outbound_port_);
  ASSERT_TRUE(client);
  Fd server = AcceptWithin(server_listener.get());
  ASSERT_TRUE(server);
  LingerZero(server.get());
  server.reset();
  ReadResult r = ReadUntilEnd(client.get());
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.error, ECONNRESET);
}

TEST_F(ProxyTest, RefusedUpstreamResetsTheClient) {
  uint16_t closed_port;
  {
    Fd l = Listen4();
    closed_port = LocalPort(l.get());
  }
  StartPod(DialTo(closed_port));
  Fd client = Connect4(outbound_port_);
  ASSERT_TRUE(client);
  ReadResult r = ReadUntilEnd(client.get());
  EXPECT_EQ(r.error, ECONNRESET);
  ASSERT_TRUE(WaitFor([&] { return metrics_.Failures(FailureReason::kConnectRefused) == 1; }));
  EXPECT_EQ(Outbound()->opened.load(), 0u);
}

TEST_F(ProxyTest, UpstreamConnectTimesOut) {
  // A listener with backlog 0 whose accept queue is already full: the kernel drops further
  // SYNs, so a connect to it neither succeeds nor fails until the timeout (all on loopback).
  Fd full = Listen4(/*backlog=*/0);
  uint16_t port = LocalPort(full.get());
  Fd filler = Connect4(port);
  ASSERT_TRUE(filler);
  {
    Fd probe(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_in sa{.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_NE(::connect(probe.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    ASSERT_EQ(errno, EINPROGRESS);
    ASSERT_FALSE(PollFd(probe.get(), POLLOUT, 50ms)) << "the accept queue is not full";
  }
  ProxyConfig config = DialTo(port);
  config.connect_timeout = 200ms;
  StartPod(std::move(config));
  Fd client = Connect4(outbound_port_);
  ASSERT_TRUE(client);
  ReadResult r = ReadUntilEnd(client.get());
  EXPECT_EQ(r.error, ECONNRESET);
  ASSERT_TRUE(WaitFor([&] { return metrics_.Failures(FailureReason::kConnectTimeout) == 1; }));
}

TEST_F(ProxyTest, LoopGuardRefusesCapturePorts) {
  ProxyConfig config;
  config.outbound_dst = [](int) -> absl::StatusOr<Endpoint> { return Loopback(15006); };
  StartPod(std::move(config));
  Fd client = Connect4(outbound_port_);
  ASSERT_TRUE(client);
  ReadResult r = ReadUntilEnd(client.get());
  EXPECT_FALSE(r.timed_out);
  EXPECT_TRUE(r.data.empty());
  ASSERT_TRUE(WaitFor([&] { return metrics_.Failures(FailureReason::kLoopGuard) == 1; }));
}

TEST_F(ProxyTest, NoOriginalDestinationClosesTheClient) {
  StartPod(ProxyConfig{});  // the real getsockopt(SO_ORIGINAL_DST): nothing answers it here
  Fd client = Connect4(outbound_port_);
  ASSERT_TRUE(client);
  ReadResult r = ReadUntilEnd(client.get());
  EXPECT_FALSE(r.timed_out);
  ASSERT_TRUE(WaitFor([&] { return metrics_.Failures(FailureReason::kNoOrigDst) == 1; }));
}

TEST_F(ProxyTest, InboundDeliversFromTheClientAddress) {
  Fd server_listener = Listen4();
  uint16_t server_port = LocalPort(server_listener.get());
  ProxyConfig config;
  config.inbound_dst = [server_port](int) -> absl::StatusOr<Endpoint> {
    return Loopback(server_port);
  };
  config.transparent_delivery = IsRoot();  // IP_TRANSPARENT needs CAP_NET_ADMIN
  StartPod(std::move(config));
  Fd client = Connect4(inbound_port_);
  ASSERT_TRUE(client);
  Fd server = AcceptWithin(server_listener.get());
  ASSERT_TRUE(server);
  auto peer = PeerEndpoint(server.get());
  ASSERT_TRUE(peer.ok());
  EXPECT_EQ(peer->ip.ToString(), "127.0.0.1");
  ASSERT_TRUE(SendAll(client.get(), "ping"));
  ::shutdown(client.get(), SHUT_WR);
  EXPECT_EQ(ReadUntilEnd(server.get()).data, "ping");
  ASSERT_TRUE(SendAll(server.get(), "pong"));
  server.reset();
  EXPECT_EQ(ReadUntilEnd(client.get()).data, "pong");
  auto series = metrics_.Tcp({.direction = Direction::kInbound,
                              .destination_workload = "client",
                              .destination_namespace = "demo"});
  ASSERT_TRUE(WaitFor([&] { return series->closed.load() == 1; }));
  EXPECT_EQ(series->sent_bytes.load(), 4u);
  EXPECT_THAT(metrics_.Render(), HasSubstr("reporter=\"destination\""));
}

TEST_F(ProxyTest, InboundLoopGuardRefusesCapturePorts) {
  ProxyConfig config;
  config.inbound_dst = [](int) -> absl::StatusOr<Endpoint> {
    return Endpoint{.ip = *IpAddr::Parse("198.18.1.3"), .port = 15008};
  };
  StartPod(std::move(config));
  Fd client = Connect4(inbound_port_);
  ASSERT_TRUE(client);
  ReadResult r = ReadUntilEnd(client.get());
  EXPECT_FALSE(r.timed_out);
  ASSERT_TRUE(WaitFor([&] { return metrics_.Failures(FailureReason::kLoopGuard) == 1; }));
}

TEST(LoopGuard, Rules) {
  auto ep = [](const char* ip, uint16_t port) {
    return Endpoint{.ip = *IpAddr::Parse(ip), .port = port};
  };
  EXPECT_TRUE(OutboundLoopGuard(ep("127.0.0.1", 15001)));
  EXPECT_TRUE(OutboundLoopGuard(ep("127.0.0.5", 15006)));
  EXPECT_TRUE(OutboundLoopGuard(ep("::1", 15008)));
  EXPECT_FALSE(OutboundLoopGuard(ep("127.0.0.1", 8080)));
  EXPECT_FALSE(OutboundLoopGuard(ep("198.18.1.3", 15008)));  // a remote pod's HBONE port
  EXPECT_TRUE(InboundLoopGuard(ep("198.18.1.3", 15001)));
  EXPECT_FALSE(InboundLoopGuard(ep("198.18.1.3", 80)));
}

TEST(HostPort, Parses) {
  EXPECT_EQ(Endpoint::Parse("127.0.0.1:15020")->ToString(), "127.0.0.1:15020");
  EXPECT_EQ(Endpoint::Parse("[::1]:15020")->ToString(), "[::1]:15020");
  EXPECT_FALSE(Endpoint::Parse("127.0.0.1").ok());
  EXPECT_FALSE(Endpoint::Parse("127.0.0.1:99999").ok());
  EXPECT_FALSE(Endpoint::Parse("nope:1").ok());
}

}  // namespace
}  // namespace zm::ztunnel
