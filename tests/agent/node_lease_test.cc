// The node lease (agent/node_lease.h): one agent acts on a node; a newer one asks the holder to
// stand down over the handover socket; garbage on that socket changes nothing; a holder that
// is gone (its lock released by the kernel) is not waited for.
#include "agent/node_lease.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "common/base/unix_socket.h"
#include "common/cni/protocol.h"
#include "tests/testutil/temp_dir.h"

namespace zm::agent {
namespace {

using ::testing::HasSubstr;

auto Never() {
  return [] { return false; };
}

TEST(NodeLeaseTest, AFreeLeaseIsTakenAndRecordsThePid) {
  testutil::TempDir dir;
  auto lease = NodeLease::Acquire(dir.path() + "/node", Never());
  ASSERT_TRUE(lease.ok()) << lease.status();
  std::ifstream in(dir.path() + "/node/agent.lock");
  std::string pid;
  in >> pid;
  EXPECT_EQ(pid, std::to_string(::getpid()));
}

TEST(NodeLeaseTest, ANewcomerMakesTheHolderStandDownAndTakesTheLease) {
  testutil::TempDir dir;
  auto holder = NodeLease::Acquire(dir.path(), Never());
  ASSERT_TRUE(holder.ok()) << holder.status();
  std::promise<pid_t> asked;
  ASSERT_TRUE((*holder)->ServeHandover([&](pid_t newcomer) { asked.set_value(newcomer); }).ok());
  // The holder's side, as agent/main.cc runs it: when stand_down has run, stop, then hand over.
  std::thread holder_side([&] {
    asked.get_future().wait();
    ASSERT_TRUE((*holder)->BeginStop());
    EXPECT_TRUE(std::filesystem::exists(dir.path() + "/agent-handover.sock"));
    (*holder)->CompleteHandover();
  });
  auto newcomer = NodeLease::Acquire(dir.path(), Never());
  holder_side.join();
  ASSERT_TRUE(newcomer.ok()) << newcomer.status();
  // The handover socket is the newcomer's to create now.
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/agent-handover.sock"));
  EXPECT_TRUE((*newcomer)->ServeHandover([](pid_t) {}).ok());
}

TEST(NodeLeaseTest, GarbageOnTheHandoverSocketIsRefusedAndChangesNothing) {
  testutil::TempDir dir;
  auto holder = NodeLease::Acquire(dir.path(), Never());
  ASSERT_TRUE(holder.ok()) << holder.status();
  std::atomic<bool> stood_down{false};
  ASSERT_TRUE((*holder)->ServeHandover([&](pid_t) { stood_down = true; }).ok());
  auto conn = ConnectUnix(dir.path() + "/agent-handover.sock", SOCK_STREAM);
  ASSERT_TRUE(conn.ok()) << conn.status();
  ASSERT_TRUE(cni::WriteAll(conn->get(), "give me the node\n", "test").ok());
  auto reply = cni::ReadLine(conn->get(), std::chrono::steady_clock::now() + std::chrono::seconds(5),
                             "the holder");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_THAT(*reply, HasSubstr("error: expected stand-down"));
  EXPECT_FALSE(stood_down);
  // Still the holder: the lock is taken.
  Fd lock(::open((dir.path() + "/agent.lock").c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(lock);
  EXPECT_NE(::flock(lock.get(), LOCK_EX | LOCK_NB), 0);
  EXPECT_EQ(errno, EWOULDBLOCK);
  EXPECT_FALSE((*holder)->BeginStop());  // no request was taken
}

TEST(NodeLeaseTest, AHolderThatIsGoneIsNotWaitedFor) {
  testutil::TempDir dir;
  {
    auto gone = NodeLease::Acquire(dir.path(), Never());
    ASSERT_TRUE(gone.ok()) << gone.status();
  }  // its lock goes with it, as with a crashed agent's; its pid stays in the file
  auto lease = NodeLease::Acquire(dir.path(), Never());
  EXPECT_TRUE(lease.ok()) << lease.status();
}

}  // namespace
}  // namespace zm::agent
