// The config stream end to end on a Unix socket: ConfigServer behind ca::UdsGrpcServer, and
// ConfigClient; a scripted fake server for what a correct server never sends (gaps, garbage).
// No sleeps: every wait is on a condition with a deadline.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "common/ca/uds_server.h"
#include "common/config/config_client.h"
#include "common/config/config_server.h"
#include "common/config/convert.h"
#include "tests/common/config/snapshot_fixtures.h"

namespace zm::config {
namespace {

using namespace zm::config::testing;  // NOLINT
using std::chrono::steady_clock;

constexpr auto kDeadline = std::chrono::seconds(20);

// Every update the client delivered, in order.
class Recorder {
 public:
  void Add(const ConfigClient::Update& u) {
    std::lock_guard lock(mu_);
    updates_.push_back(u);
    cv_.notify_all();
  }
  // Waits until pred(updates) holds; false at the deadline.
  bool WaitFor(const std::function<bool(const std::vector<ConfigClient::Update>&)>& pred) {
    std::unique_lock lock(mu_);
    return cv_.wait_until(lock, steady_clock::now() + kDeadline, [&] { return pred(updates_); });
  }
  std::vector<ConfigClient::Update> updates() {
    std::lock_guard lock(mu_);
    return updates_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ConfigClient::Update> updates_;
};

// For state that offers no notification (server stats): polls until true or the deadline.
bool Eventually(const std::function<bool()>& pred) {
  auto end = steady_clock::now() + kDeadline;
  while (!pred()) {
    if (steady_clock::now() > end) return false;
    std::this_thread::yield();
  }
  return true;
}

std::shared_ptr<const mesh::Snapshot> Share(mesh::Snapshot s) {
  return std::make_shared<const mesh::Snapshot>(std::move(s));
}

class StreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> n{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("zmesh-cfg-" + std::to_string(getpid()) + "-" + std::to_string(n++));
    std::filesystem::create_directories(dir_);
    socket_ = (dir_ / "config.sock").string();
  }
  void TearDown() override {
    if (client_) client_->Stop();
    StopServer();
    std::filesystem::remove_all(dir_);
  }

  void StartServer(ConfigServer::Options options = {}) {
    server_ = std::make_unique<ConfigServer>(std::move(options));
    auto uds = ca::UdsGrpcServer::Start(socket_, {server_->service()});
    ASSERT_TRUE(uds.ok()) << uds.status();
    uds_ = std::move(*uds);
  }
  void StopServer() {
    if (server_) server_->Shutdown();
    uds_.reset();
    server_.reset();
  }
  void StartClient(ConfigClient::Callback cb = nullptr) {
    if (!cb) cb = [this](const ConfigClient::Update& u) { recorder_.Add(u); };
    client_ = std::make_unique<ConfigClient>(
        ConfigClient::Options{.target = "unix:" + socket_,
                              .node = "node-1",
                              .initial_backoff = std::chrono::milliseconds(5),
                              .max_backoff = std::chrono::milliseconds(50)},
        std::move(cb));
    client_->Start();
  }

  std::filesystem::path dir_;
  std::string socket_;
  std::unique_ptr<ConfigServer> server_;
  std::unique_ptr<ca::UdsGrpcServer> uds_;
  std::unique_ptr<ConfigClient> client_;
  Recorder recorder_;
};

TEST_F(StreamTest, FullSnapshotThenDeltasArriveInOrder) {
  StartServer();
  StartClient();
  // The client connects before anything is published: it waits for the first snapshot rather
  // than seeing an empty mesh.
  ASSERT_TRUE(Eventually([&] { return server_->stats().streams == 1; }));
  EXPECT_TRUE(recorder_.updates().empty());

  std::vector<mesh::Snapshot> published;
  mesh::Snapshot s = FullSnapshot();
  auto publish = [&](const mesh::Snapshot& next) {
    published.push_back(next);
    server_->Publish(Share(next));
  };
  publish(s);
  s.workloads.push_back(MakeWorkload("demo", "c", "10.0.0.3"));  // add a workload
  publish(s);
  s.workloads.back().labels["version"] = "v2";  // change it
  publish(s);
  s.workloads.pop_back();  // remove it
  publish(s);
  s.services.push_back(MakeService("demo", "zz"));  // add a service
  publish(s);
  s.services.back().ports[0].port = 81;  // change it
  publish(s);
  s.services.pop_back();  // remove it
  publish(s);
  s.peer_authentications.push_back(MakePa("demo", "late", mesh::MtlsMode::kDisable));  // add
  *s.peer_authentications.back().creation_time_ns += 1;  // younger: sorts last
  publish(s);
  s.peer_authentications.back().mode = mesh::MtlsMode::kStrict;  // change
  publish(s);
  s.peer_authentications.pop_back();  // remove
  publish(s);
  server_->Publish(Share(s));  // no change: no new version
  EXPECT_EQ(server_->version(), published.size());

  ASSERT_TRUE(recorder_.WaitFor([&](const auto& u) { return u.size() >= published.size(); }));
  std::vector<ConfigClient::Update> got = recorder_.updates();
  ASSERT_EQ(got.size(), published.size());
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(got[i].version, i + 1);
    EXPECT_EQ(got[i].full, i == 0);
    ExpectSame(*got[i].snapshot, published[i]);
  }
  EXPECT_EQ(client_->version(), published.size());
  EXPECT_EQ(client_->stats().full_updates, 1u);
  EXPECT_EQ(client_->stats().deltas, published.size() - 1);
  EXPECT_EQ(client_->stats().resyncs, 0u);
}

TEST_F(StreamTest, ClientReconnectsAfterServerRestartAndGetsAFullSnapshot) {
  StartServer();
  server_->Publish(Share(FullSnapshot()));
  StartClient();
  ASSERT_TRUE(recorder_.WaitFor([](const auto& u) { return u.size() == 1; }));

  StopServer();
  mesh::Snapshot second = FullSnapshot();
  second.workloads.push_back(MakeWorkload("demo", "z-after-restart", "10.0.0.9"));
  StartServer();
  server_->Publish(Share(second));

  ASSERT_TRUE(recorder_.WaitFor([](const auto& u) { return u.size() == 2; }));
  std::vector<ConfigClient::Update> got = recorder_.updates();
  EXPECT_TRUE(got[1].full);
  EXPECT_EQ(got[1].version, 1u);  // the new server's versions start again
  ExpectSame(*got[1].snapshot, second);
  ExpectSame(*client_->snapshot(), second);
  EXPECT_EQ(client_->stats().full_updates, 2u);
  EXPECT_GE(client_->stats().stream_errors, 1u);
}

TEST_F(StreamTest, FullSnapshotLargerThanGrpcDefaultLimitArrives) {
  StartServer();
  mesh::Snapshot s;
  for (int i = 0; i < 24; ++i) {  // 24 x 256 KiB: 6 MiB, above gRPC's default 4 MiB
    s.workloads.push_back(MakeWorkload("demo", "w" + std::to_string(100 + i), "10.0.1.1"));
    s.workloads.back().annotations["big"] = std::string(256 * 1024, 'a' + i % 26);
  }
  server_->Publish(Share(s));
  StartClient();
  ASSERT_TRUE(recorder_.WaitFor([](const auto& u) { return u.size() == 1; }));
  ExpectSame(*recorder_.updates()[0].snapshot, s);
}

TEST_F(StreamTest, SlowClientDoesNotBlockPublishAndIsResynced) {
  StartServer(ConfigServer::Options{.max_queued_updates = 2});
  mesh::Snapshot s = FullSnapshot();
  server_->Publish(Share(s));

  // The callback holds the client's only thread on the first update: the stream is not read.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  StartClient([&](const ConfigClient::Update& u) {
    if (u.version == 1 && u.full) released.wait();
    recorder_.Add(u);
  });
  ASSERT_TRUE(Eventually([&] { return client_->version() == 1; }));

  // Large deltas fill the transport's buffers, then the stream's queue. Publish keeps returning.
  const std::string big(256 * 1024, 'x');
  int published = 0;
  for (; published < 400 && server_->stats().dropped_slow == 0; ++published) {
    s.workloads[0].annotations["big"] = big + std::to_string(published);
    server_->Publish(Share(s));
  }
  EXPECT_EQ(server_->stats().dropped_slow, 1u);
  EXPECT_LT(published, 400);
  EXPECT_EQ(server_->version(), static_cast<uint64_t>(published) + 1);

  release.set_value();
  // The client drains what reached it, sees the stream dropped, reconnects, and gets a full
  // snapshot at the current version.
  const uint64_t last = server_->version();
  ASSERT_TRUE(recorder_.WaitFor(
      [&](const auto& u) { return !u.empty() && u.back().full && u.back().version == last; }));
  ExpectSame(*client_->snapshot(), s);
  EXPECT_EQ(client_->stats().full_updates, 2u);
  EXPECT_EQ(client_->stats().resyncs, 0u);  // the server dropped it, not a gap
  // Every update before the resync applied in order.
  std::vector<ConfigClient::Update> got = recorder_.updates();
  for (size_t i = 1; i + 1 < got.size(); ++i) EXPECT_EQ(got[i].version, got[i - 1].version + 1);
}

// A scripted server: stream i sends scripts[i] and then stays open (the last script) or ends.
class ScriptedService final : public v1::ConfigService::Service {
 public:
  explicit ScriptedService(std::vector<std::vector<v1::ConfigUpdate>> scripts)
      : scripts_(std::move(scripts)) {}
  grpc::Status Stream(grpc::ServerContext* ctx, const v1::StreamRequest*,
                      grpc::ServerWriter<v1::ConfigUpdate>* writer) override {
    size_t i;
    {
      std::lock_guard lock(mu_);
      i = std::min(calls_++, scripts_.size() - 1);
    }
    for (const v1::ConfigUpdate& u : scripts_[i]) {
      if (!writer->Write(u)) return grpc::Status::CANCELLED;
    }
    // Hold the stream until the client drops it or the test ends.
    std::unique_lock lock(mu_);
    while (!stopping_ && !ctx->IsCancelled()) cv_.wait_for(lock, std::chrono::milliseconds(20));
    return grpc::Status::OK;
  }
  void Stop() {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  size_t calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  std::vector<std::vector<v1::ConfigUpdate>> scripts_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t calls_ = 0;
  bool stopping_ = false;
};

class ScriptedStreamTest : public StreamTest {
 protected:
  void Serve(std::vector<std::vector<v1::ConfigUpdate>> scripts) {
    scripted_ = std::make_unique<ScriptedService>(std::move(scripts));
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + socket_, grpc::InsecureServerCredentials());
    builder.RegisterService(scripted_.get());
    grpc_server_ = builder.BuildAndStart();
    ASSERT_NE(grpc_server_, nullptr);
  }
  void TearDown() override {
    if (client_) client_->Stop();
    if (scripted_) scripted_->Stop();
    if (grpc_server_) grpc_server_->Shutdown();
    StreamTest::TearDown();
  }
  std::unique_ptr<ScriptedService> scripted_;
  std::unique_ptr<grpc::Server> grpc_server_;
};

mesh::Snapshot WithWorkloads(std::vector<std::string> names) {
  mesh::Snapshot s;
  std::sort(names.begin(), names.end());
  for (const std::string& n : names) s.workloads.push_back(MakeWorkload("demo", n, "10.0.0.1"));
  return s;
}

TEST_F(ScriptedStreamTest, VersionGapDropsTheStreamAndResyncs) {
  mesh::Snapshot a = WithWorkloads({"a"});
  mesh::Snapshot ab = WithWorkloads({"a", "b"});
  mesh::Snapshot abc = WithWorkloads({"a", "b", "c"});
  mesh::Snapshot ac = WithWorkloads({"a", "c"});
  Serve({
      {FullUpdate(a, 1), DeltaUpdate(a, ab, 1, 2), DeltaUpdate(ab, abc, 5, 6) /* gap */},
      {FullUpdate(ac, 10)},
  });
  StartClient();
  ASSERT_TRUE(recorder_.WaitFor([](const auto& u) { return u.size() == 3; }));
  std::vector<ConfigClient::Update> got = recorder_.updates();
  EXPECT_EQ(got[0].version, 1u);
  EXPECT_EQ(got[1].version, 2u);
  ExpectSame(*got[1].snapshot, ab);
  EXPECT_TRUE(got[2].full);
  EXPECT_EQ(got[2].version, 10u);
  ExpectSame(*got[2].snapshot, ac);
  EXPECT_EQ(client_->stats().resyncs, 1u);
  EXPECT_EQ(scripted_->calls(), 2u);
}

TEST_F(ScriptedStreamTest, GarbageAndDeltaFirstAreRefusedAndResynced) {
  v1::ConfigUpdate bad = FullUpdate(WithWorkloads({"a"}), 1);
  bad.mutable_workloads(0)->add_addresses("xyz");  // 3 bytes
  v1::ConfigUpdate delta_first = DeltaUpdate(mesh::Snapshot{}, WithWorkloads({"a"}), 0, 1);
  mesh::Snapshot good = WithWorkloads({"a", "b"});
  Serve({{bad}, {delta_first}, {FullUpdate(good, 3)}});
  StartClient();
  ASSERT_TRUE(recorder_.WaitFor([](const auto& u) { return u.size() == 1; }));
  std::vector<ConfigClient::Update> got = recorder_.updates();
  EXPECT_EQ(got[0].version, 3u);
  ExpectSame(*got[0].snapshot, good);
  EXPECT_EQ(client_->stats().resyncs, 2u);
  EXPECT_EQ(client_->stats().full_updates, 1u);
}

TEST_F(StreamTest, ClientStopsCleanlyWhileNoServerListens) {
  StartClient();
  ASSERT_TRUE(Eventually([&] { return client_->stats().stream_errors >= 2; }));
  EXPECT_EQ(client_->snapshot(), nullptr);
  EXPECT_FALSE(client_->last_error().empty());
  client_->Stop();
}

}  // namespace
}  // namespace zm::config
