// The readiness file the DaemonSet's exec probes test (common/base/ready_file.h): it exists
// exactly while the process says it is ready, a stale one from an earlier run is removed, and
// it is gone once the owner is.
#include "common/base/ready_file.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/testutil/temp_dir.h"
#include "tests/testutil/wait.h"

namespace zm {
namespace {

using testutil::WaitFor;

TEST(ReadyFileTest, AStaleFileIsRemovedAndTheFileFollowsTheState) {
  testutil::TempDir dir;
  const std::filesystem::path path = std::filesystem::path(dir.path()) / "ready";
  std::ofstream(path) << "ready\n";  // left by a process that was killed
  {
    ReadyFile file(path.string());
    EXPECT_FALSE(std::filesystem::exists(path)) << "a stale file must not say ready";
    std::atomic<bool> ready{false};
    file.Follow([&] { return ready.load(); }, std::chrono::milliseconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    EXPECT_FALSE(std::filesystem::exists(path));
    ready = true;
    EXPECT_TRUE(WaitFor([&] { return std::filesystem::exists(path); }, std::chrono::seconds(5)));
    ready = false;
    EXPECT_TRUE(WaitFor([&] { return !std::filesystem::exists(path); }, std::chrono::seconds(5)));
    ready = true;
    EXPECT_TRUE(WaitFor([&] { return std::filesystem::exists(path); }, std::chrono::seconds(5)));
  }
  EXPECT_FALSE(std::filesystem::exists(path)) << "the file outlived its owner";
}

TEST(ReadyFileTest, SetIsImmediateAndAnEmptyPathDoesNothing) {
  testutil::TempDir dir;
  const std::filesystem::path path = std::filesystem::path(dir.path()) / "ready";
  ReadyFile file(path.string());
  file.Set(true);
  EXPECT_TRUE(std::filesystem::exists(path));
  file.Set(false);
  EXPECT_FALSE(std::filesystem::exists(path));

  ReadyFile none("");
  none.Set(true);
  none.Follow([] { return true; });
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

}  // namespace
}  // namespace zm
