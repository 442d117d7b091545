// The zmesh-cni <-> agent protocol: what goes on the wire round-trips, a malformed line is refused
// naming the field, and CallAgent over a real Unix socket: an answer, no agent, a silent agent.
#include "common/cni/protocol.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <thread>

#include "common/base/unix_socket.h"
#include "tests/testutil/temp_dir.h"

namespace zm::cni {
namespace {

using ::testing::HasSubstr;

PodRequest Sample() {
  return {.command = Command::kAdd,
          .container_id = "c0ffee",
          .netns = "/var/run/netns/cni-1",
          .ifname = "eth0",
          .pod_namespace = "demo",
          .pod_name = "web-0",
          .pod_uid = "4f1c",
          .ips = {"10.1.0.7", "fd00::7"},
          .timeout_ms = 30000};
}

TEST(CniProtocol, RequestsAndRepliesRoundTripAsOneLine) {
  for (Command c : {Command::kAdd, Command::kDel, Command::kCheck}) {
    PodRequest r = Sample();
    r.command = c;
    std::string line = EncodeRequest(r);
    ASSERT_EQ(line.back(), '\n');
    EXPECT_EQ(line.find('\n'), line.size() - 1);
    auto back = DecodeRequest(line);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, r);
  }
  for (const PodReply& r : {PodReply{.ok = true, .state = "enrolled"},
                            PodReply{.ok = false, .error = "demo/x: no", .retry = true}}) {
    auto back = DecodeReply(EncodeReply(r));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, r);
  }
}

TEST(CniProtocol, MalformedLinesNameTheField) {
  EXPECT_THAT(std::string(DecodeRequest("[1]").status().message()), HasSubstr("not a JSON object"));
  EXPECT_THAT(
      std::string(DecodeRequest(R"({"cmd":"nuke","namespace":"a","name":"b"})").status().message()),
      HasSubstr("cmd: unknown command \"nuke\""));
  EXPECT_THAT(std::string(DecodeRequest(R"({"cmd":"add","name":"b"})").status().message()),
              HasSubstr("namespace and name are required"));
  EXPECT_THAT(std::string(DecodeRequest(R"({"cmd":"add","namespace":"a","name":"b","ips":"x"})")
                              .status()
                              .message()),
              HasSubstr("ips: not a list"));
  EXPECT_THAT(
      std::string(DecodeRequest(R"({"cmd":"add","namespace":"a","name":"b","timeout_ms":-1})")
                      .status()
                      .message()),
      HasSubstr("timeout_ms"));
  EXPECT_THAT(std::string(DecodeReply(R"({"state":"enrolled"})").status().message()),
              HasSubstr("ok: missing"));
}

class CallAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto l = UnixListener::Listen(path_, SOCK_STREAM, 0600, "CNI");
    ASSERT_TRUE(l.ok()) << l.status();
    listener_ = std::move(*l);
  }
  testutil::TempDir dir_{"zmesh-cni-proto"};
  std::string path_ = dir_.File("cni.sock");
  std::unique_ptr<UnixListener> listener_;
};

TEST_F(CallAgentTest, SendsTheRequestAndReadsTheAnswer) {
  std::thread agent([&] {
    auto c = listener_->Accept();
    ASSERT_TRUE(c.ok()) << c.status();
    auto line = ReadLine(c->get(), std::chrono::steady_clock::now() + std::chrono::seconds(5), "t");
    ASSERT_TRUE(line.ok()) << line.status();
    auto req = DecodeRequest(*line);
    ASSERT_TRUE(req.ok());
    EXPECT_EQ(*req, Sample());
    ASSERT_TRUE(WriteAll(c->get(), EncodeReply({.ok = true, .state = "enrolled"}), "t").ok());
  });
  auto reply = CallAgent(path_, Sample(), std::chrono::seconds(5));
  agent.join();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_TRUE(reply->ok);
  EXPECT_EQ(reply->state, "enrolled");
}

TEST_F(CallAgentTest, NoAgentIsUnavailable) {
  listener_.reset();  // removes the socket
  auto reply = CallAgent(path_, Sample(), std::chrono::seconds(1));
  ASSERT_TRUE(absl::IsUnavailable(reply.status())) << reply.status();
  EXPECT_THAT(std::string(reply.status().message()), HasSubstr("cannot reach the zmesh agent"));
  EXPECT_THAT(std::string(reply.status().message()), HasSubstr(path_));
}

TEST_F(CallAgentTest, AnAgentThatNeverAnswersTimesOut) {
  Fd held;
  std::thread agent([&] {
    auto c = listener_->Accept();
    ASSERT_TRUE(c.ok());
    held = std::move(*c);  // read nothing, answer nothing
  });
  auto reply = CallAgent(path_, Sample(), std::chrono::milliseconds(200));
  agent.join();
  EXPECT_TRUE(absl::IsDeadlineExceeded(reply.status())) << reply.status();
}

TEST_F(CallAgentTest, AnAgentThatHangsUpIsUnavailable) {
  std::thread agent([&] {
    auto c = listener_->Accept();
    ASSERT_TRUE(c.ok());
  });  // closes at once
  auto reply = CallAgent(path_, Sample(), std::chrono::seconds(5));
  agent.join();
  ASSERT_TRUE(absl::IsUnavailable(reply.status())) << reply.status();
  EXPECT_THAT(std::string(reply.status().message()), HasSubstr("without an answer"));
}

}  // namespace
}  // namespace zm::cni
