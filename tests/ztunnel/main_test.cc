// The ztunnel binary as a process: flags, readiness over HTTP after the first snapshot,
// access to /metrics, and a clean exit 0 on SIGTERM. Uses a fake agent; no root needed.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/ca/uds_server.h"
#include "common/config/config_server.h"
#include "tests/testutil/child_process.h"
#include "tests/ztunnel/fake_agent.h"
#include "tests/ztunnel/test_helpers.h"

namespace zm::ztunnel {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using namespace zm::ztunnel::testing;

class ZtunnelProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/zt-main-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    agent_ = std::make_unique<FakeAgent>(dir_ + "/zds.sock");
    // Reserve a metrics port: bound with SO_REUSEADDR but not listening, so ztunnel (also
    // SO_REUSEADDR) can take it and nobody else can.
    reserve_ = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    ::setsockopt(reserve_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in sa{.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(reserve_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    port_ = LocalPort(reserve_.get());
  }
  void TearDown() override {
    child_.reset();  // killed and reaped if it still runs
    agent_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Spawn(std::vector<std::string> args) {
    auto child = testutil::ChildProcess::Spawn(testutil::ChildProcess::BuildBinary("ztunnel"),
                                               std::move(args), dir_ + "/ztunnel.log");
    ASSERT_TRUE(child.ok()) << child.status();
    child_ = std::move(*child);
  }
  // The child's exit status; -1 at the deadline.
  int WaitExit() { return child_->WaitExit(); }

  std::string Get(const std::string& path) {
    Fd c;
    WaitFor([&] { return static_cast<bool>(c = Connect4(port_)); });
    if (!c) return "connect failed";
    SendAll(c.get(), "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n");
    return ReadUntilEnd(c.get()).data;
  }

  std::string Log() { return child_ ? child_->Log() : ""; }

  std::string dir_;
  std::unique_ptr<FakeAgent> agent_;
  Fd reserve_;
  uint16_t port_ = 0;
  std::unique_ptr<testutil::ChildProcess> child_;
};

// Ready only once the first mesh configuration and then the ZDS snapshot arrived. ztunnel asks
// the agent for pods (ZDS) only once it knows the mesh: a pod's listeners may take connections
// as soon as they exist (SO_REUSEPORT beside a draining ztunnel), and without the mesh every
// connection would fail closed. The readiness file follows /healthz/ready; SIGTERM with
// nothing in flight exits at once.
TEST_F(ZtunnelProcessTest, ReadyAfterConfigThenSnapshotAndExitsCleanlyOnSigterm) {
  config::ConfigServer config;
  auto uds = ca::UdsGrpcServer::Start(dir_ + "/config.sock", {config.service()});
  ASSERT_TRUE(uds.ok()) << uds.status();
  const std::string ready_file = dir_ + "/ready";
  Spawn({"--node", "n1", "--zds-socket", dir_ + "/zds.sock", "--metrics-addr",
         "127.0.0.1:" + std::to_string(port_), "--workers", "1", "--log-level", "debug",
         "--config-address", "unix:" + dir_ + "/config.sock", "--ca-address",
         "unix:" + dir_ + "/ca.sock", "--ready-file", ready_file});
  ASSERT_TRUE(WaitFor([&] { return Get("/healthz/ready").starts_with("HTTP/1.1 503 "); }))
      << Log();
  std::string r = Get("/healthz/ready");
  EXPECT_THAT(r, HasSubstr("zds-snapshot"));
  EXPECT_THAT(r, HasSubstr("config-snapshot"));
  EXPECT_FALSE(agent_->AcceptHello()) << "ztunnel asked for pods before it knew the mesh";

  config.Publish(std::make_shared<mesh::Snapshot>());
  ASSERT_TRUE(agent_->AcceptHello()) << Log();
  r = Get("/healthz/ready");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 503 ")) << Log();
  EXPECT_THAT(r, HasSubstr("zds-snapshot"));
  EXPECT_THAT(r, Not(HasSubstr("config-snapshot")));
  EXPECT_FALSE(std::filesystem::exists(ready_file));

  auto ack = agent_->Request(zds::SnapshotSent{});
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_EQ(ack->error, "");
  EXPECT_TRUE(WaitFor([&] { return Get("/healthz/ready").starts_with("HTTP/1.1 200 OK"); }))
      << Log();
  EXPECT_TRUE(WaitFor([&] { return std::filesystem::exists(ready_file); }));
  EXPECT_THAT(Get("/metrics"), HasSubstr("zmesh_ztunnel_workloads 0\n"));
  EXPECT_THAT(Get("/metrics"), HasSubstr("zmesh_ztunnel_connections_in_flight 0\n"));
  EXPECT_THAT(Get("/nope"), StartsWith("HTTP/1.1 404 "));

  ASSERT_TRUE(child_->Signal(SIGTERM));
  EXPECT_EQ(WaitExit(), 0) << Log();
  EXPECT_THAT(Log(), HasSubstr("zds: connected to the agent"));
  EXPECT_THAT(Log(), HasSubstr("drained: no connection in flight"));
  EXPECT_FALSE(std::filesystem::exists(ready_file));
  config.Shutdown();
}

TEST_F(ZtunnelProcessTest, JsonLogs) {
  config::ConfigServer config;
  auto uds = ca::UdsGrpcServer::Start(dir_ + "/config.sock", {config.service()});
  ASSERT_TRUE(uds.ok()) << uds.status();
  config.Publish(std::make_shared<mesh::Snapshot>());
  Spawn({"--node", "n1", "--zds-socket", dir_ + "/zds.sock", "--metrics-addr",
         "127.0.0.1:" + std::to_string(port_), "--log-format", "json", "--config-address",
         "unix:" + dir_ + "/config.sock"});
  ASSERT_TRUE(agent_->AcceptHello()) << Log();
  ASSERT_TRUE(child_->Signal(SIGINT));
  EXPECT_EQ(WaitExit(), 0) << Log();
  EXPECT_THAT(Log(), HasSubstr("\"scope\":\"zds\""));
  config.Shutdown();
}

TEST_F(ZtunnelProcessTest, MissingNodeIsAUsageError) {
  Spawn({"--zds-socket", dir_ + "/zds.sock"});
  int code = WaitExit();
  EXPECT_NE(code, 0);
  EXPECT_NE(code, -1);
  EXPECT_THAT(Log(), HasSubstr("--node"));
}

}  // namespace
}  // namespace zm::ztunnel
