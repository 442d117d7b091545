// The agent's CNI socket with the plugin's own client (CallAgent): private, the request arrives
// intact, the answer may come later from another thread, a dropped answer closes the connection,
// a malformed request is answered with the reason.
#include "agent/cni_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <atomic>
#include <future>
#include <thread>

#include "tests/testutil/temp_dir.h"

namespace zm::agent {
namespace {

using ::testing::HasSubstr;

class CniServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = CniServer::Listen(path_);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    server_->set_read_timeout(std::chrono::milliseconds(300));
  }
  void Serve(CniServer::Handler handler) {
    thread_ = std::thread(
        [this, handler = std::move(handler)] { EXPECT_TRUE(server_->Serve(handler).ok()); });
  }
  void TearDown() override {
    server_->Shutdown();
    if (thread_.joinable()) thread_.join();
  }
  cni::PodRequest Request() {
    return {.command = cni::Command::kAdd,
            .container_id = "c1",
            .netns = "/var/run/netns/p",
            .ifname = "eth0",
            .pod_namespace = "demo",
            .pod_name = "web",
            .pod_uid = "u1",
            .ips = {"10.0.0.7"},
            .timeout_ms = 5000};
  }

  testutil::TempDir dir_{"zmesh-cni-server"};
  std::string path_ = dir_.File("run/node-a/cni.sock");
  std::unique_ptr<CniServer> server_;
  std::thread thread_;
};

TEST_F(CniServerTest, SocketIsPrivate) {
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(CniServerTest, TheAnswerMayComeLaterFromAnotherThread) {
  std::promise<cni::PodRequest> got;
  std::promise<CniServer::Reply> reply_fn;
  Serve([&](cni::PodRequest r, CniServer::Reply reply) {
    got.set_value(std::move(r));
    reply_fn.set_value(std::move(reply));
  });
  std::future<absl::StatusOr<cni::PodReply>> answer = std::async(std::launch::async, [&] {
    return cni::CallAgent(path_, Request(), std::chrono::seconds(5));
  });
  EXPECT_EQ(got.get_future().get(), Request());
  CniServer::Reply reply = reply_fn.get_future().get();
  // Still waiting: the agent has not answered.
  EXPECT_EQ(answer.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  std::thread([reply] { reply({.ok = true, .state = "enrolled"}); }).join();
  auto r = answer.get();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->ok);
  EXPECT_EQ(r->state, "enrolled");
}

TEST_F(CniServerTest, ADroppedAnswerClosesTheConnection) {
  Serve([](cni::PodRequest, CniServer::Reply) {});
  auto r = cni::CallAgent(path_, Request(), std::chrono::seconds(5));
  ASSERT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("without an answer"));
}

TEST_F(CniServerTest, AMalformedRequestIsAnsweredWithTheReason) {
  std::atomic<int> calls{0};
  Serve([&](cni::PodRequest, CniServer::Reply) { ++calls; });
  auto c = ConnectUnix(path_, SOCK_STREAM);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(cni::WriteAll(c->get(), "{\"cmd\":\"add\"}\n", "test").ok());
  auto line =
      cni::ReadLine(c->get(), std::chrono::steady_clock::now() + std::chrono::seconds(5), "t");
  ASSERT_TRUE(line.ok()) << line.status();
  auto reply = cni::DecodeReply(*line);
  ASSERT_TRUE(reply.ok());
  EXPECT_FALSE(reply->ok);
  EXPECT_THAT(reply->error, HasSubstr("namespace and name are required"));
  // A client that sends nothing does not hold the socket up for the next one.
  auto silent = ConnectUnix(path_, SOCK_STREAM);
  ASSERT_TRUE(silent.ok());
  auto r = cni::CallAgent(path_, Request(), std::chrono::seconds(5));
  EXPECT_TRUE(absl::IsUnavailable(r.status()));  // the handler above drops every answer
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace zm::agent
