#pragma once
// Pooled HBONE client connections (DESIGN §5): key = (source, source identity, sorted expected
// destination identities, destination ip:15008); at most `max_streams_per_connection`
// streams per connection (another connection is opened when all are full); single-flight
// creation per key; connections idle for `idle_timeout` are released; a closed or GOAWAY'd
// connection is evicted.
//
// Threading: a pool belongs to one worker and is used only on its executor (call every
// method there; the factory's sessions must live on it too). Creation is single-flight by a
// per-key "connecting" flag and a waiter queue, so nothing is ever held locked across the
// connect + TLS handshake, which is the caller-supplied asynchronous factory. The pool sets
// each session's OnClosed (for eviction): the factory must not rely on its own.

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/ip.h"
#include "common/hbone/client_session.h"

namespace zm::hbone {

struct PoolKey {
  // Opaque to the pool: which local source the connection belongs to (ztunnel: the source pod,
  // whose netns the socket lives in). Connections are never shared between sources.
  std::string source;
  std::string source_identity;
  std::vector<std::string> destination_identities;  // the pool sorts and dedupes them
  Endpoint destination;                             // <next hop ip>:15008
  auto operator<=>(const PoolKey&) const = default;
};

struct HbonePoolOptions {
  size_t max_streams_per_connection = 100;
  std::chrono::milliseconds idle_timeout = std::chrono::minutes(5);
};

class HbonePool {
 public:
  using SessionOr = absl::StatusOr<std::shared_ptr<HboneClientSession>>;
  // Connects to key.destination, handshakes (TLS as key.source_identity, verifying the
  // server against key.destination_identities) and calls `done` once, on the pool's
  // executor, with a started session (or the error).
  using Factory = std::function<void(const PoolKey& key, std::function<void(SessionOr)> done)>;
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  using Options = HbonePoolOptions;

  HbonePool(
      asio::any_io_executor executor, Factory factory, Options options = {},
      Clock clock = [] { return std::chrono::steady_clock::now(); });
  // Shutdown().
  ~HbonePool();
  // Closes every connection and fails queued opens. The pool is unusable afterwards.
  void Shutdown();

  // Opens a CONNECT stream to `authority` on a pooled connection for `key`, creating one when
  // none has room. `cb` as HboneClientSession::OpenCallback (errors of the factory included).
  void OpenStream(PoolKey key, std::string authority, std::vector<Header> headers,
                  HboneClientSession::OpenCallback cb);

  // Closes connections without streams for idle_timeout; returns how many.
  size_t ReleaseIdle();
  // Calls ReleaseIdle every `period` until the pool is destroyed.
  void StartIdleSweep(std::chrono::milliseconds period);

  size_t connection_count() const;
  size_t active_streams() const;  // over all connections
  size_t connection_count(const PoolKey& key) const;

 private:
  struct Conn {
    std::shared_ptr<HboneClientSession> session;
    std::chrono::steady_clock::time_point last_active;
  };
  struct Waiter {
    std::string authority;
    std::vector<Header> headers;
    HboneClientSession::OpenCallback cb;
  };
  struct Entry {
    std::vector<std::shared_ptr<Conn>> conns;
    bool connecting = false;
    std::deque<Waiter> waiters;
  };

  static PoolKey Normalize(PoolKey key);
  void Drain(const PoolKey& key);
  void Connect(const PoolKey& key);
  void OnConnected(const PoolKey& key, SessionOr session);
  void Evict(const PoolKey& key, const HboneClientSession* session);
  void Sweep();

  asio::any_io_executor executor_;
  Factory factory_;
  Options options_;
  Clock clock_;
  std::map<PoolKey, Entry> entries_;
  asio::steady_timer sweep_timer_;
  std::chrono::milliseconds sweep_period_{0};
  // Outlives nothing: callbacks hold a weak copy to know whether the pool is still there.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace zm::hbone
