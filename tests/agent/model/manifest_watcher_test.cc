// The manifest watcher: every kind of change in the directory reaches the callback as a
// fresh snapshot, bursts coalesce, and a missing directory is refused at start.
#include "common/k8s/manifest_watcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>

namespace zm::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using Snap = std::shared_ptr<const k8s::ManifestSnapshot>;

constexpr auto kDeadline = std::chrono::seconds(10);

std::string PodYaml(std::string_view name, std::string_view ip = "10.0.0.1") {
  return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + std::string(name) +
         ", namespace: demo}\nstatus: {podIP: " + std::string(ip) + "}\n";
}

std::vector<std::string> Names(const Snap& s) {
  std::vector<std::string> out;
  for (const auto& p : s->pods) out.push_back(p.name);
  return out;
}

// Records every callback; tests wait on conditions over what was recorded.
class Recorder {
 public:
  k8s::ManifestWatcher::Callback callback() {
    return [this](Snap s) {
      std::lock_guard<std::mutex> lock(mu_);
      all_.push_back(std::move(s));
      cv_.notify_all();
    };
  }
  // Waits until the latest snapshot satisfies `pred`; returns it (null on timeout).
  Snap WaitFor(const std::function<bool(const Snap&)>& pred) {
    std::unique_lock<std::mutex> lock(mu_);
    bool ok = cv_.wait_for(lock, kDeadline, [&] { return !all_.empty() && pred(all_.back()); });
    return ok ? all_.back() : nullptr;
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mu_);
    return all_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Snap> all_;
};

class ManifestWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("zm-watch-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& name, const std::string& content) {
    std::ofstream(dir_ / name) << content;
  }
  // Writes a temporary file elsewhere in the directory and renames it into place.
  void WriteAtomically(const std::string& name, const std::string& content) {
    Write(".tmp-" + name, content);
    std::filesystem::rename(dir_ / (".tmp-" + name), dir_ / name);
  }
  std::filesystem::path dir_;
  Recorder rec_;
};

auto HasPods(std::vector<std::string> names) {
  return [names](const Snap& s) { return Names(s) == names; };
}

TEST_F(ManifestWatcherTest, InitialContentThenWriteRenameDelete) {
  Write("a.yaml", PodYaml("a"));
  auto w = k8s::ManifestWatcher::Start(dir_.string(), rec_.callback());
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_THAT(Names((*w)->Current()), ElementsAre("a"));
  // The initial content was delivered inside Start(), on this thread.
  ASSERT_EQ(rec_.count(), 1u);
  EXPECT_EQ(rec_.WaitFor(HasPods({"a"})), (*w)->Current());

  Write("b.yaml", PodYaml("b"));  // IN_CREATE + IN_CLOSE_WRITE
  ASSERT_NE(rec_.WaitFor(HasPods({"a", "b"})), nullptr) << "new file";

  Write("b.yaml", PodYaml("b", "10.0.0.2"));  // rewrite in place: IN_CLOSE_WRITE
  Snap s = rec_.WaitFor([](const Snap& s) {
    return s->pods.size() == 2 && s->pods[1].pod_ips == std::vector<std::string>{"10.0.0.2"};
  });
  ASSERT_NE(s, nullptr) << "rewrite";

  WriteAtomically("c.yaml", PodYaml("c"));  // IN_MOVED_TO
  ASSERT_NE(rec_.WaitFor(HasPods({"a", "b", "c"})), nullptr) << "rename into the directory";

  std::filesystem::rename(dir_ / "c.yaml", dir_ / "c.yaml.off");  // IN_MOVED_FROM
  ASSERT_NE(rec_.WaitFor(HasPods({"a", "b"})), nullptr) << "rename out of the set";

  std::filesystem::remove(dir_ / "a.yaml");  // IN_DELETE
  ASSERT_NE(rec_.WaitFor(HasPods({"b"})), nullptr) << "delete";

  Write("b.yaml", "{{{ not yaml");
  s = rec_.WaitFor([](const Snap& s) { return !s->errors.empty(); });
  ASSERT_NE(s, nullptr) << "broken rewrite";
  EXPECT_THAT(Names(s), ElementsAre("b"));  // last good content kept
  EXPECT_THAT(s->errors[0], HasSubstr("b.yaml: line"));
  EXPECT_EQ((*w)->Current(), s);
}

TEST_F(ManifestWatcherTest, BurstCoalesces) {
  k8s::ManifestWatcher::Options options;
  options.quiet = std::chrono::milliseconds(200);
  auto w = k8s::ManifestWatcher::Start(dir_.string(), rec_.callback(), options);
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_NE(rec_.WaitFor(HasPods({})), nullptr);
  const uint64_t before = (*w)->reloads();

  constexpr int kFiles = 40;
  std::vector<std::string> expect;
  for (int i = 0; i < kFiles; ++i) {
    std::string name = "p" + std::to_string(100 + i);
    Write(name + ".yaml", PodYaml(name));
    expect.push_back(name);
  }
  ASSERT_NE(rec_.WaitFor(HasPods(expect)), nullptr);
  // 80 events (create + close per file) in a few milliseconds: a handful of reloads at most
  // (not one per event), however the scheduler slices the writing loop.
  EXPECT_LE((*w)->reloads() - before, 5u);
  EXPECT_LT(rec_.count(), 7u);
}

TEST_F(ManifestWatcherTest, MissingDirectoryIsAnErrorNamingIt) {
  std::string missing = (dir_ / "nope").string();
  auto w = k8s::ManifestWatcher::Start(missing, rec_.callback());
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(std::string(w.status().message()), HasSubstr(missing));
  EXPECT_THAT(std::string(w.status().message()), HasSubstr("ENOENT"));
}

TEST_F(ManifestWatcherTest, AFileIsNotADirectory) {
  Write("a.yaml", PodYaml("a"));
  auto w = k8s::ManifestWatcher::Start((dir_ / "a.yaml").string(), rec_.callback());
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(std::string(w.status().message()), HasSubstr("ENOTDIR"));
}

TEST_F(ManifestWatcherTest, StopsPromptlyWhileABurstIsPending) {
  k8s::ManifestWatcher::Options options;
  options.quiet = std::chrono::hours(1);
  options.max_delay = std::chrono::hours(1);
  auto w = k8s::ManifestWatcher::Start(dir_.string(), rec_.callback(), options);
  ASSERT_TRUE(w.ok());
  Write("a.yaml", PodYaml("a"));
  auto start = std::chrono::steady_clock::now();
  w->reset();  // joins: must not wait for the hour-long debounce
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(ManifestWatcherTest, ConfigMapStyleSymlinkSwap) {
  // kubelet's ConfigMap volume: pods.yaml -> ..data/pods.yaml, ..data -> ..v1; an update
  // writes ..v2 and renames a new ..data symlink over the old one.
  std::filesystem::create_directories(dir_ / "..v1");
  std::ofstream(dir_ / "..v1" / "pods.yaml") << PodYaml("one");
  std::filesystem::create_directory_symlink("..v1", dir_ / "..data");
  std::filesystem::create_symlink("..data/pods.yaml", dir_ / "pods.yaml");
  auto w = k8s::ManifestWatcher::Start(dir_.string(), rec_.callback());
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_NE(rec_.WaitFor(HasPods({"one"})), nullptr);

  std::filesystem::create_directories(dir_ / "..v2");
  std::ofstream(dir_ / "..v2" / "pods.yaml") << PodYaml("two");
  std::filesystem::create_directory_symlink("..v2", dir_ / "..data_tmp");
  std::filesystem::rename(dir_ / "..data_tmp", dir_ / "..data");
  ASSERT_NE(rec_.WaitFor(HasPods({"two"})), nullptr);
}

}  // namespace
}  // namespace zm::agent
