#pragma once
// The agent's side of ZDS for the ztunnel tests: a real SOCK_SEQPACKET listener, driven
// with the zds codec.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>

#include "common/base/status.h"
#include "common/zds/zds.h"
#include "tests/ztunnel/test_helpers.h"

namespace zm::ztunnel::testing {

// The agent's side of ZDS.
class FakeAgent {
 public:
  explicit FakeAgent(std::string path) : path_(std::move(path)) { Listen(); }

  void Listen() {
    ::unlink(path_.c_str());
    listener_ = Fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path_.c_str());
    EXPECT_EQ(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    EXPECT_EQ(::listen(listener_.get(), 8), 0);
  }
  // The agent process going away: connection and listener closed.
  void Crash() {
    conn_.reset();
    listener_.reset();
    ::unlink(path_.c_str());
  }

  // Accepts ztunnel's connection and expects its Hello.
  ::testing::AssertionResult AcceptHello() {
    conn_ = AcceptWithin(listener_.get());
    if (!conn_) return ::testing::AssertionFailure() << "ztunnel did not connect";
    auto d = Recv();
    if (!d.ok()) return ::testing::AssertionFailure() << d.status();
    auto hello = zds::DecodeHello(std::move(*d));
    if (!hello.ok()) return ::testing::AssertionFailure() << hello.status();
    return ::testing::AssertionSuccess();
  }

  absl::StatusOr<zds::Datagram> Recv() {
    if (!PollFd(conn_.get(), POLLIN)) return absl::DeadlineExceededError("no datagram");
    return zds::RecvDatagram(conn_.get());
  }

  absl::StatusOr<zds::Ack> Request(const zds::Request& req) {
    ZM_RETURN_IF_ERROR(zds::SendRequest(conn_.get(), req));
    ZM_ASSIGN_OR_RETURN(auto d, Recv());
    return zds::DecodeAck(std::move(d));
  }

  absl::StatusOr<zds::Ack> Add(const std::string& uid, int netns_fd) {
    zds::AddWorkload add{.uid = uid, .name = "pod-" + uid, .ns = "demo"};
    add.netns = Fd(::fcntl(netns_fd, F_DUPFD_CLOEXEC, 0));
    return Request(zds::Request(std::move(add)));
  }

  int conn() const { return conn_.get(); }

 private:
  std::string path_;
  Fd listener_;
  Fd conn_;
};

}  // namespace zm::ztunnel::testing
