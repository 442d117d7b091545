// HbonePool with a plain-TCP factory against the in-process HBONE server, and a fake clock.

#include "common/hbone/pool.h"

#include <gtest/gtest.h>

#include <atomic>

#include "tests/common/hbone/hbone_test_util.h"

namespace zm::hbone::testing {
namespace {

class HbonePoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    h_.StartServer();
    key_.source_identity = kPeerIdentity;
    key_.destination_identities = {"spiffe://cluster.local/ns/b/sa/y",
                                   "spiffe://cluster.local/ns/a/sa/x"};
    key_.destination = *Endpoint::Parse(zm::StrCat("127.0.0.1:", h_.server_port()));
    pool_ = h_.Run([&] {
      return std::make_shared<HbonePool>(
          h_.ioc().get_executor(),
          [this](const PoolKey&, std::function<void(HbonePool::SessionOr)> done) {
            factory_calls_++;
            auto sock = std::make_shared<tcp::socket>(h_.ioc());
            // Asynchronous like a real connect + handshake: waiters pile up meanwhile.
            sock->async_connect(
                tcp::endpoint(asio::ip::make_address("127.0.0.1"), h_.server_port()),
                [sock, done](const asio::error_code& ec) {
                  if (ec) return done(absl::UnavailableError(ec.message()));
                  auto c = HboneClientSession::Create(MakeTransport(std::move(*sock)));
                  c->Start();
                  done(c);
                });
          },
          HbonePoolOptions{}, [this] { return now_.load(); });
    });
  }
  void TearDown() override {
    h_.Run([&] {
      pool_.reset();
      return 0;
    });
  }

  // Opens `n` streams at once (one worker turn) and waits for all answers.
  std::vector<OpenResult> OpenMany(int n, PoolKey key) {
    std::vector<std::shared_ptr<std::promise<OpenResult>>> ps;
    std::vector<std::future<OpenResult>> fs;
    for (int i = 0; i < n; ++i) {
      ps.push_back(std::make_shared<std::promise<OpenResult>>());
      fs.push_back(ps.back()->get_future());
    }
    h_.Run([&] {
      for (auto& p : ps) {
        pool_->OpenStream(key, h_.UpstreamAuthority(), {},
                          [p](absl::StatusOr<int> s, std::shared_ptr<HboneStream> st) {
                            p->set_value(OpenResult{s, std::move(st)});
                          });
      }
      return 0;
    });
    std::vector<OpenResult> out;
    for (auto& f : fs) out.push_back(HboneHarness::Wait(f));
    return out;
  }

  size_t Connections() {
    return h_.Run([&] { return pool_->connection_count(); });
  }

  HboneHarness h_;
  PoolKey key_;
  std::atomic<int> factory_calls_{0};
  std::atomic<std::chrono::steady_clock::time_point> now_{std::chrono::steady_clock::time_point{}};
  std::shared_ptr<HbonePool> pool_;
};

TEST_F(HbonePoolTest, ConcurrentOpensShareOneConnection) {
  auto results = OpenMany(10, key_);
  for (auto& r : results) {
    ASSERT_TRUE(r.status.ok()) << r.status.status();
    EXPECT_EQ(*r.status, 200);
  }
  EXPECT_EQ(factory_calls_.load(), 1);
  EXPECT_EQ(Connections(), 1u);
  EXPECT_EQ(h_.server_session_count(), 1u);
  // Same key with the identities in another order: same connection.
  PoolKey k2 = key_;
  std::swap(k2.destination_identities[0], k2.destination_identities[1]);
  auto more = OpenMany(1, k2);
  EXPECT_EQ(*more[0].status, 200);
  EXPECT_EQ(factory_calls_.load(), 1);
  // Another source identity: another connection.
  PoolKey k3 = key_;
  k3.source_identity = "spiffe://cluster.local/ns/other/sa/z";
  auto other = OpenMany(1, k3);
  EXPECT_EQ(*other[0].status, 200);
  EXPECT_EQ(factory_calls_.load(), 2);
  EXPECT_EQ(Connections(), 2u);
}

TEST_F(HbonePoolTest, StreamOneHundredAndOneOpensASecondConnection) {
  auto results = OpenMany(101, key_);
  for (auto& r : results) {
    ASSERT_TRUE(r.status.ok()) << r.status.status();
    EXPECT_EQ(*r.status, 200);
  }
  EXPECT_EQ(factory_calls_.load(), 2);
  EXPECT_EQ(Connections(), 2u);
  EXPECT_EQ(h_.server_session_count(), 2u);
}

TEST_F(HbonePoolTest, IdleConnectionsAreReleasedAfterTheTimeout) {
  auto r = OpenMany(1, key_);
  ASSERT_EQ(*r[0].status, 200);
  // While the stream lives, time passing does not release the connection.
  now_ = now_.load() + std::chrono::minutes(10);
  EXPECT_EQ(h_.Run([&] { return pool_->ReleaseIdle(); }), 0u);
  r[0].stream->Reset();
  ASSERT_TRUE(WaitFor([&] { return h_.Run([&] { return pool_->active_streams(); }) == 0; }));
  // Idle from now on (the last sweep saw the stream): released only after 5 minutes.
  EXPECT_EQ(h_.Run([&] { return pool_->ReleaseIdle(); }), 0u);
  now_ = now_.load() + std::chrono::minutes(4);
  EXPECT_EQ(h_.Run([&] { return pool_->ReleaseIdle(); }), 0u);
  now_ = now_.load() + std::chrono::minutes(1);
  EXPECT_EQ(h_.Run([&] { return pool_->ReleaseIdle(); }), 1u);
  EXPECT_EQ(Connections(), 0u);
  auto again = OpenMany(1, key_);
  EXPECT_EQ(*again[0].status, 200);
  EXPECT_EQ(factory_calls_.load(), 2);
}

TEST_F(HbonePoolTest, BrokenConnectionIsEvicted) {
  auto r = OpenMany(1, key_);
  ASSERT_EQ(*r[0].status, 200);
  ASSERT_EQ(Connections(), 1u);
  auto s = h_.server_session(0);
  h_.Run([&] {
    s->Close("test kills the connection");
    return 0;
  });
  ASSERT_TRUE(WaitFor([&] { return Connections() == 0; }));
  auto again = OpenMany(1, key_);
  EXPECT_EQ(*again[0].status, 200);
  EXPECT_EQ(factory_calls_.load(), 2);
}

TEST_F(HbonePoolTest, FactoryFailureFailsTheWaiters) {
  PoolKey bad = key_;
  bad.destination.port = 1;  // the factory above ignores the key; make it fail instead
  h_.Run([&] {
    pool_ = std::make_shared<HbonePool>(
        h_.ioc().get_executor(),
        [this](const PoolKey&, std::function<void(HbonePool::SessionOr)> done) {
          factory_calls_++;
          asio::post(h_.ioc(), [done] { done(absl::UnavailableError("handshake failed")); });
        });
    return 0;
  });
  auto r = OpenMany(3, bad);
  for (auto& x : r) {
    EXPECT_FALSE(x.status.ok());
    EXPECT_NE(x.status.status().message().find("handshake failed"), absl::string_view::npos);
  }
  EXPECT_EQ(factory_calls_.load(), 1);
  EXPECT_EQ(Connections(), 0u);
}

}  // namespace
}  // namespace zm::hbone::testing
