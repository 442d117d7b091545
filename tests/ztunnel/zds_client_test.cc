// ZDS client against a fake agent: a real SOCK_SEQPACKET listener in a temp dir, driven by
// the test with the zds codec. The first tests use a recording handler (protocol only); the
// Workload* tests drive the real WorkloadManager with network namespaces (root).

#include "ztunnel/zds_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

#include "common/base/netns.h"
#include "common/base/strings.h"
#include "common/zds/zds.h"
#include "tests/ztunnel/fake_agent.h"
#include "tests/ztunnel/test_helpers.h"
#include "ztunnel/metrics.h"
#include "ztunnel/proxy.h"
#include "ztunnel/workers.h"
#include "ztunnel/workload_manager.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace zm::ztunnel {
namespace {

using ::testing::HasSubstr;
using namespace zm::ztunnel::testing;

class RecordingHandler : public WorkloadHandler {
 public:
  void OnSessionStart() override {
    std::lock_guard lock(mu_);
    ++sessions_;
  }
  zds::Ack Handle(zds::Request request) override {
    std::lock_guard lock(mu_);
    seen_.push_back(zds::Describe(request));
    return {};
  }
  std::vector<std::string> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  std::mutex mu_;
  int sessions_ = 0;
  std::vector<std::string> seen_;
};

class ZdsTestBase : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/zt-zds-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    agent_ = std::make_unique<FakeAgent>(dir_ + "/zds.sock");
  }
  void TearDown() override {
    if (client_) {
      asio::post(control_, [this] { client_->Stop(); });
    }
    guard_.reset();
    control_.stop();
    if (thread_.joinable()) thread_.join();
    client_.reset();
    agent_.reset();
    std::filesystem::remove_all(dir_);
  }
  void StartClient(WorkloadHandler& handler) {
    client_ = std::make_unique<ZdsClient>(
        control_,
        ZdsClientOptions{.socket_path = dir_ + "/zds.sock",
                         .backoff_initial = std::chrono::milliseconds(5),
                         .backoff_max = std::chrono::milliseconds(40)},
        handler);
    asio::post(control_, [this] { client_->Start(); });
    thread_ = std::thread([this] { control_.run(); });
  }

  std::string dir_;
  std::unique_ptr<FakeAgent> agent_;
  asio::io_context control_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_{control_.get_executor()};
  std::unique_ptr<ZdsClient> client_;
  std::thread thread_;
};

class ZdsClientTest : public ZdsTestBase {
 protected:
  void TearDown() override {
    ZdsTestBase::TearDown();  // the client's thread is gone before the handler goes
  }
  RecordingHandler handler_;
};

TEST_F(ZdsClientTest, SaysHelloThenAcksEachRequest) {
  StartClient(handler_);
  ASSERT_TRUE(agent_->AcceptHello());
  auto ack = agent_->Request(zds::KeepWorkload{.uid = "u1"});
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_EQ(ack->error, "");
  ack = agent_->Request(zds::SnapshotSent{});
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_THAT(handler_.seen(), ::testing::ElementsAre("keep(u1)", "snapshot-sent"));
}

TEST_F(ZdsClientTest, InvalidRequestGetsAnErrorAck) {
  StartClient(handler_);
  ASSERT_TRUE(agent_->AcceptHello());
  // An Add without its netns fd: the request is identifiable, so it is answered.
  zds::AddWorkload add{.uid = "u1", .name = "p", .ns = "demo"};
  ASSERT_TRUE(
      zds::SendDatagram(agent_->conn(), zds::EncodeRequest(zds::Request(std::move(add)))).ok());
  auto d = agent_->Recv();
  ASSERT_TRUE(d.ok()) << d.status();
  auto ack = zds::DecodeAck(std::move(*d));
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_THAT(ack->error, HasSubstr("netns fd"));
  // The session goes on.
  auto next = agent_->Request(zds::KeepWorkload{.uid = "u2"});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->error, "");
  EXPECT_THAT(handler_.seen(), ::testing::ElementsAre("keep(u2)"));
}

TEST_F(ZdsClientTest, GarbageDropsTheConnectionAndZtunnelComesBack) {
  StartClient(handler_);
  ASSERT_TRUE(agent_->AcceptHello());
  ASSERT_TRUE(zds::SendDatagram(agent_->conn(), "\xff\xff\xff\xff garbage").ok());
  // ztunnel hangs up...
  auto d = agent_->Recv();
  EXPECT_TRUE(absl::IsUnavailable(d.status())) << d.status();
  // ...and comes back with a Hello.
  ASSERT_TRUE(agent_->AcceptHello());
  EXPECT_TRUE(WaitFor([&] { return client_->sessions() == 2u; }));
  auto ack = agent_->Request(zds::SnapshotSent{});
  ASSERT_TRUE(ack.ok()) << ack.status();
}

TEST_F(ZdsClientTest, ReconnectsWhenTheAgentRestarts) {
  StartClient(handler_);
  ASSERT_TRUE(agent_->AcceptHello());
  agent_->Crash();
  agent_->Listen();
  ASSERT_TRUE(agent_->AcceptHello());
  EXPECT_TRUE(WaitFor([&] { return client_->sessions() == 2u; }));
}

TEST_F(ZdsClientTest, ConnectsOnceTheAgentAppears) {
  agent_->Crash();
  StartClient(handler_);
  agent_->Listen();
  ASSERT_TRUE(agent_->AcceptHello());
}

TEST(ZdsBackoff, DoublesToTheCapWithJitter) {
  ZdsClientOptions opts;
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100; ++i) {
    auto d0 = ZdsClient::Backoff(opts, 0, rng).count();
    EXPECT_GE(d0, 50);
    EXPECT_LE(d0, 100);
    auto d3 = ZdsClient::Backoff(opts, 3, rng).count();
    EXPECT_GE(d3, 400);
    EXPECT_LE(d3, 800);
    auto dmax = ZdsClient::Backoff(opts, 30, rng).count();
    EXPECT_GE(dmax, 2500);
    EXPECT_LE(dmax, 5000);
  }
}

// --- With the real WorkloadManager and network namespaces (root) ---

class WorkloadTest : public ZdsTestBase {
 protected:
  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "needs root: creates network namespaces and sets SO_MARK";
    ZdsTestBase::SetUp();
    manager_ = std::make_unique<WorkloadManager>(workers_, proxy_, metrics_, readiness_);
    StartClient(*manager_);
    ASSERT_TRUE(agent_->AcceptHello());
  }
  void TearDown() override {
    if (!IsRoot()) return;
    ZdsTestBase::TearDown();  // the control thread is gone before the manager goes
    manager_.reset();
    workers_.Stop();
  }

  static int ConnectIn(int netns, uint16_t port) { return ConnectInNetns(netns, port); }

  static uint64_t Inode(int fd) {
    struct stat st {};
    ::fstat(fd, &st);
    return st.st_ino;
  }

  Metrics metrics_;
  Readiness readiness_;
  Workers workers_{2};
  // SO_ORIGINAL_DST is answered by eBPF in production; here every outbound connection is
  // said to go to 127.0.0.1:<upstream_port_> (as seen from inside the pod netns).
  std::atomic<uint16_t> upstream_port_{0};
  // Likewise sk_lookup keeps the original destination of inbound connections; without it
  // getsockname() says 15006, so a test names the app's address here.
  std::atomic<uint16_t> inbound_app_port_{0};
  Proxy proxy_{ProxyConfig{.outbound_dst = [this](int) -> absl::StatusOr<Endpoint> {
                             return Endpoint{.ip = *IpAddr::Parse("127.0.0.1"),
                                             .port = upstream_port_.load()};
                           },
                           .inbound_dst = [this](int fd) -> absl::StatusOr<Endpoint> {
                             if (inbound_app_port_ == 0) return LocalEndpoint(fd);
                             return Endpoint{.ip = *IpAddr::Parse("10.77.0.2"),
                                             .port = inbound_app_port_.load()};
                           }},
               metrics_};
  std::unique_ptr<WorkloadManager> manager_;
};

TEST_F(WorkloadTest, AddCreatesListenersInThePodNetnsAndAcksTheInboundOne) {
  auto ns = NewNetns();
  ASSERT_TRUE(ns.ok()) << ns.status();
  auto ack = agent_->Add("u1", ns->get());
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_EQ(ack->error, "");
  ASSERT_EQ(ack->listeners.size(), 1u);
  int fd = ack->listeners[0].get();
  int listening = 0;
  socklen_t len = sizeof(listening);
  ASSERT_EQ(::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len), 0);
  EXPECT_EQ(listening, 1);
  EXPECT_EQ(LocalPort(fd), 15006);
  uint64_t cookie = 0;
  len = sizeof(cookie);
  ASSERT_EQ(::getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len), 0);
  EXPECT_EQ(cookie, *NetnsCookie(ns->get()));
  uint32_t mark = 0;
  len = sizeof(mark);
  ASSERT_EQ(::getsockopt(fd, SOL_SOCKET, SO_MARK, &mark, &len), 0);
  EXPECT_EQ(mark, 0x539u);

  EXPECT_EQ(ConnectIn(ns->get(), 15001), 0);
  EXPECT_EQ(ConnectIn(ns->get(), 15008), 0);
  EXPECT_NE(ConnectIn(ns->get(), 15002), 0);  // and nothing else listens there
  // Not in the test's own netns.
  EXPECT_THAT(manager_->Uids(), ::testing::ElementsAre("u1"));
  EXPECT_THAT(metrics_.Render(), HasSubstr("zmesh_ztunnel_workloads 1\n"));
}

TEST_F(WorkloadTest, SecondAddOfTheSameUidIsIdempotent) {
  auto ns = NewNetns();
  ASSERT_TRUE(ns.ok()) << ns.status();
  auto first = agent_->Add("u1", ns->get());
  ASSERT_TRUE(first.ok() && first->error.empty() && first->listeners.size() == 1u);
  auto second = agent_->Add("u1", ns->get());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->error, "");
  ASSERT_EQ(second->listeners.size(), 1u);
  // The very same socket, not a new one.
  EXPECT_EQ(Inode(first->listeners[0].get()), Inode(second->listeners[0].get()));
  EXPECT_EQ(manager_->Uids().size(), 1u);
  EXPECT_EQ(ConnectIn(ns->get(), 15001), 0);
}

TEST_F(WorkloadTest, SameUidInAnotherNetnsReplacesThePod) {
  auto a = NewNetns();
  auto b = NewNetns();
  ASSERT_TRUE(a.ok() && b.ok());
  auto first = agent_->Add("u1", a->get());
  ASSERT_TRUE(first.ok() && first->error.empty());
  auto second = agent_->Add("u1", b->get());
  ASSERT_TRUE(second.ok() && second->error.empty()) << second->error;
  EXPECT_NE(Inode(first->listeners[0].get()), Inode(second->listeners[0].get()));
  EXPECT_EQ(ConnectIn(a->get(), 15001), ECONNREFUSED);
  EXPECT_EQ(ConnectIn(b->get(), 15001), 0);
}

TEST_F(WorkloadTest, DelClosesTheListeners) {
  auto ns = NewNetns();
  ASSERT_TRUE(ns.ok()) << ns.status();
  auto ack = agent_->Add("u1", ns->get());
  ASSERT_TRUE(ack.ok() && ack->error.empty());
  ASSERT_EQ(ConnectIn(ns->get(), 15001), 0);
  auto del = agent_->Request(zds::DelWorkload{.uid = "u1"});
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_EQ(del->error, "");
  EXPECT_EQ(ConnectIn(ns->get(), 15001), ECONNREFUSED);
  // The inbound one too, although the agent still holds a dup of it.
  EXPECT_EQ(ConnectIn(ns->get(), 15006), ECONNREFUSED);
  EXPECT_TRUE(manager_->Uids().empty());
}

TEST_F(WorkloadTest, SnapshotDropsPodsNotNamedSinceHelloAndKeepKeeps) {
  auto a = NewNetns();
  auto b = NewNetns();
  auto c = NewNetns();
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  ASSERT_TRUE(agent_->Add("a", a->get())->error.empty());
  ASSERT_TRUE(agent_->Add("b", b->get())->error.empty());
  EXPECT_FALSE(readiness_.Ready());

  // The agent restarts: new connection, new Hello; it keeps a, re-adds c, forgets b.
  agent_->Crash();
  agent_->Listen();
  ASSERT_TRUE(agent_->AcceptHello());
  auto keep = agent_->Request(zds::KeepWorkload{.uid = "a"});
  ASSERT_TRUE(keep.ok() && keep->error.empty());
  ASSERT_TRUE(agent_->Add("c", c->get())->error.empty());
  auto snap = agent_->Request(zds::SnapshotSent{});
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_EQ(snap->error, "");

  EXPECT_THAT(manager_->Uids(), ::testing::ElementsAre("a", "c"));
  EXPECT_EQ(ConnectIn(a->get(), 15001), 0);
  EXPECT_EQ(ConnectIn(b->get(), 15001), ECONNREFUSED);
  EXPECT_EQ(ConnectIn(c->get(), 15001), 0);
  EXPECT_TRUE(readiness_.Ready());
}

TEST_F(WorkloadTest, FailureIsAckedWithTheCause) {
  Fd not_netns(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  auto ack = agent_->Add("bad", not_netns.get());
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_THAT(ack->error, HasSubstr("add(bad demo/pod-bad)"));
  EXPECT_THAT(ack->error, HasSubstr("setns"));
  EXPECT_TRUE(ack->listeners.empty());
  EXPECT_TRUE(manager_->Uids().empty());
  // ztunnel goes on.
  auto ns = NewNetns();
  ASSERT_TRUE(ns.ok());
  EXPECT_TRUE(agent_->Add("good", ns->get())->error.empty());
}

TEST_F(WorkloadTest, GarbageDoesNotLoseThePods) {
  auto ns = NewNetns();
  ASSERT_TRUE(ns.ok());
  ASSERT_TRUE(agent_->Add("u1", ns->get())->error.empty());
  ASSERT_TRUE(zds::SendDatagram(agent_->conn(), std::string("\x0a\xff\xff\xff", 4)).ok());
  ASSERT_TRUE(agent_->AcceptHello());
  EXPECT_EQ(ConnectIn(ns->get(), 15001), 0);
  EXPECT_THAT(manager_->Uids(), ::testing::ElementsAre("u1"));
}

TEST_F(WorkloadTest, OutboundConnectsFromInsideThePodNetns) {
  auto ns = NewNetns();
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE(agent_->Add("u1", ns->get())->error.empty());
  // An app server inside the pod netns on 127.0.0.1: reachable only from that netns, so
  // the relay works only if ztunnel's upstream socket was created there.
  Fd server_listener;
  Fd client;
  ASSERT_TRUE(RunInNetns(ns->get(), [&]() -> absl::Status {
                server_listener = Listen4();
                upstream_port_ = LocalPort(server_listener.get());
                client = Connect4(15001);
                return client ? absl::OkStatus() : ErrnoError("connect", "127.0.0.1:15001");
              }).ok());
  Fd server = AcceptWithin(server_listener.get());
  ASSERT_TRUE(server);
  ASSERT_TRUE(SendAll(client.get(), "GET / HTTP/1.0\r\n\r\n"));
  ::shutdown(client.get(), SHUT_WR);
  EXPECT_EQ(ReadUntilEnd(server.get()).data, "GET / HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(SendAll(server.get(), "HTTP/1.0 200 OK\r\n\r\n"));
  server.reset();
  EXPECT_EQ(ReadUntilEnd(client.get()).data, "HTTP/1.0 200 OK\r\n\r\n");
  auto series = metrics_.Tcp(
      {.direction = Direction::kOutbound, .source_workload = "pod-u1", .source_namespace = "demo"});
  ASSERT_TRUE(WaitFor([&] { return series->closed.load() == 1; }));
  EXPECT_EQ(series->sent_bytes.load(), 18u);
  EXPECT_EQ(series->received_bytes.load(), 19u);
}

// Source-IP preservation (DESIGN-ebpf.md): the app sees the client's address although the
// connection went through ztunnel. Two netns joined by a veth: the client's (10.77.0.9) and
// the pod's (10.77.0.2), which gets what the agent installs there (fwmark accept, the 0x538
// rule, the local route table). The app's replies to 10.77.0.9 come back to ztunnel only
// through that rule, so this also checks the delivery mark.
TEST_F(WorkloadTest, InboundDeliversFromTheClientIpInThePodNetns) {
  auto pod_ns = NewNetns();
  auto client_ns = NewNetns();
  ASSERT_TRUE(pod_ns.ok() && client_ns.ok());
  auto run = [](int netns, std::vector<std::string> cmds) {
    return RunInNetns(netns, [&]() -> absl::Status {
      for (const auto& c : cmds) {
        if (std::system(c.c_str()) != 0) return absl::InternalError(c);
      }
      return absl::OkStatus();
    });
  };
  std::string client_ns_path = StrCat("/proc/", ::getpid(), "/fd/", client_ns->get());
  absl::Status st =
      run(pod_ns->get(),
          {StrCat("ip link add name p0 type veth peer name c0 netns ", client_ns_path),
           "ip addr add 10.77.0.2/24 dev p0", "ip link set p0 up",
           "sysctl -qw net.ipv4.tcp_fwmark_accept=1", "ip rule add fwmark 0x538/0xfff lookup 1337",
           "ip route add local 0.0.0.0/0 dev lo table 1337"});
  ASSERT_TRUE(st.ok()) << st;
  st = run(client_ns->get(), {"ip addr add 10.77.0.9/24 dev c0", "ip link set c0 up"});
  ASSERT_TRUE(st.ok()) << st;
  ASSERT_TRUE(agent_->Add("srv", pod_ns->get())->error.empty());

  Fd app_listener;
  st = RunInNetns(pod_ns->get(), [&]() -> absl::Status {
    app_listener = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in app{.sin_family = AF_INET, .sin_port = 0};
    ::inet_pton(AF_INET, "10.77.0.2", &app.sin_addr);
    if (::bind(app_listener.get(), reinterpret_cast<sockaddr*>(&app), sizeof(app)) ||
        ::listen(app_listener.get(), 8)) {
      return ErrnoError("bind/listen", "app");
    }
    inbound_app_port_ = LocalPort(app_listener.get());
    return absl::OkStatus();
  });
  ASSERT_TRUE(st.ok()) << st;
  Fd client;
  st = RunInNetns(client_ns->get(), [&]() -> absl::Status {
    client = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in to{.sin_family = AF_INET, .sin_port = htons(15006)};
    ::inet_pton(AF_INET, "10.77.0.2", &to.sin_addr);
    if (::connect(client.get(), reinterpret_cast<sockaddr*>(&to), sizeof(to))) {
      return ErrnoError("connect", "10.77.0.2:15006");
    }
    return absl::OkStatus();
  });
  ASSERT_TRUE(st.ok()) << st;
  Fd app = AcceptWithin(app_listener.get());
  ASSERT_TRUE(app);
  auto peer = PeerEndpoint(app.get());
  ASSERT_TRUE(peer.ok());
  EXPECT_EQ(peer->ip.ToString(), "10.77.0.9");
  ASSERT_TRUE(SendAll(client.get(), "hi"));
  EXPECT_EQ(ReadUntilEnd(app.get(), 2).data, "hi");
  ASSERT_TRUE(SendAll(app.get(), "there"));
  app.reset();
  EXPECT_EQ(ReadUntilEnd(client.get()).data, "there");
  client.reset();
  auto series = metrics_.Tcp({.direction = Direction::kInbound,
                              .destination_workload = "pod-srv",
                              .destination_namespace = "demo"});
  ASSERT_TRUE(WaitFor([&] { return series->closed.load() == 1; }));
}

}  // namespace
}  // namespace zm::ztunnel
