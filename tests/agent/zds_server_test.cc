// The agent's ZDS server against a scripted ztunnel on a real SOCK_SEQPACKET socket.
#include "agent/zds_server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include "common/zds/zds.h"

namespace zm::agent {
namespace {

class ZdsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("zds-test-" + std::to_string(getpid()));
    path_ = (dir_ / "sub" / "zds.sock").string();
    auto s = ZdsServer::Listen(path_);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    server_->set_ack_timeout(std::chrono::milliseconds(300));
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  // Connects a "ztunnel", sends its hello, and lets the server adopt it.
  Fd ConnectZtunnel(std::string hello = zds::EncodeHello({})) {
    Fd c(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un addr{.sun_family = AF_UNIX};
    std::memcpy(addr.sun_path, path_.c_str(), path_.size());
    EXPECT_EQ(connect(c.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_TRUE(zds::SendDatagram(c.get(), hello).ok());
    return c;
  }
  absl::Status AdoptNext() {
    auto conn = server_->Accept();
    if (!conn.ok()) return conn.status();
    return server_->Adopt(std::move(*conn)).status();
  }

  std::filesystem::path dir_;
  std::string path_;
  std::unique_ptr<ZdsServer> server_;
};

TEST_F(ZdsServerTest, SocketIsPrivate) {
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(ZdsServerTest, AddCarriesNetnsAndReturnsListeners) {
  Fd zt = ConnectZtunnel();
  ASSERT_TRUE(AdoptNext().ok());
  EXPECT_TRUE(server_->Connected());
  std::thread ztunnel([&] {
    auto req = zds::DecodeRequest(*zds::RecvDatagram(zt.get()));
    ASSERT_TRUE(req.ok()) << req.status();
    auto* add = std::get_if<zds::AddWorkload>(&*req);
    ASSERT_NE(add, nullptr);
    EXPECT_EQ(add->uid, "u1");
    EXPECT_EQ(add->ns, "demo");
    EXPECT_TRUE(add->netns.valid());
    Fd listener(socket(AF_INET, SOCK_STREAM, 0));
    ASSERT_TRUE(zds::SendAck(zt.get(), "", {listener.get()}).ok());
  });
  Fd netns(open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
  auto fds = server_->Add({.uid = "u1", .name = "client", .ns = "demo"}, netns.get());
  ztunnel.join();
  ASSERT_TRUE(fds.ok()) << fds.status();
  ASSERT_EQ(fds->size(), 1u);
  int type = 0;
  socklen_t len = sizeof(type);
  EXPECT_EQ(getsockopt((*fds)[0].get(), SOL_SOCKET, SO_TYPE, &type, &len), 0);
  EXPECT_EQ(type, SOCK_STREAM);
}

TEST_F(ZdsServerTest, AnErrorAckIsReportedAndTheConnectionKept) {
  Fd zt = ConnectZtunnel();
  ASSERT_TRUE(AdoptNext().ok());
  std::thread ztunnel([&] {
    ASSERT_TRUE(zds::RecvDatagram(zt.get()).ok());
    ASSERT_TRUE(zds::SendAck(zt.get(), "bind 15001: EADDRINUSE").ok());
  });
  auto st = server_->Del("u1");
  ztunnel.join();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("EADDRINUSE"), std::string_view::npos);
  EXPECT_TRUE(server_->Connected());
}

TEST_F(ZdsServerTest, NoAckBeforeTheDeadlineDropsTheConnection) {
  Fd zt = ConnectZtunnel();
  ASSERT_TRUE(AdoptNext().ok());
  auto st = server_->SnapshotSent();
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(absl::IsDeadlineExceeded(st)) << st;
  EXPECT_FALSE(server_->Connected());
}

TEST_F(ZdsServerTest, AGarbageAckDropsTheConnection) {
  Fd zt = ConnectZtunnel();
  ASSERT_TRUE(AdoptNext().ok());
  std::thread ztunnel([&] {
    ASSERT_TRUE(zds::RecvDatagram(zt.get()).ok());
    ASSERT_TRUE(zds::SendDatagram(zt.get(), std::string("\xff\xff\xff", 3)).ok());
  });
  auto st = server_->Del("u1");
  ztunnel.join();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("malformed"), std::string_view::npos) << st;
  EXPECT_FALSE(server_->Connected());
}

TEST_F(ZdsServerTest, AWrongHelloIsRefused) {
  Fd zt = ConnectZtunnel(std::string("\x08\x05", 2));  // version 5
  auto st = AdoptNext();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("unsupported ZDS version 5"), std::string_view::npos) << st;
  EXPECT_FALSE(server_->Connected());
}

TEST_F(ZdsServerTest, HangupIsNoticed) {
  Fd zt = ConnectZtunnel();
  ASSERT_TRUE(AdoptNext().ok());
  EXPECT_FALSE(server_->CheckHangup());
  zt.reset();
  EXPECT_TRUE(server_->CheckHangup());
  EXPECT_FALSE(server_->Connected());
}

TEST_F(ZdsServerTest, ANewerZtunnelReplacesTheOld) {
  Fd old_zt = ConnectZtunnel();
  ASSERT_TRUE(AdoptNext().ok());
  Fd new_zt = ConnectZtunnel();
  ASSERT_TRUE(AdoptNext().ok());
  std::thread ztunnel([&] {
    ASSERT_TRUE(zds::RecvDatagram(new_zt.get()).ok());
    ASSERT_TRUE(zds::SendAck(new_zt.get(), "").ok());
  });
  EXPECT_TRUE(server_->SnapshotSent().ok());
  ztunnel.join();
  // The old connection was closed by the server.
  char b;
  EXPECT_EQ(recv(old_zt.get(), &b, 1, 0), 0);
}

TEST_F(ZdsServerTest, ShutdownWakesAccept) {
  std::thread t([&] { server_->Shutdown(); });
  auto c = server_->Accept();
  t.join();
  EXPECT_TRUE(absl::IsCancelled(c.status()));
}

}  // namespace
}  // namespace zm::agent
