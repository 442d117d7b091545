#pragma once
// Key sets for `jwksUri` rules (policy-semantics §4.1, §4.3 step 7; DESIGN §6): a JwksSource
// that fetches the document over HTTP(S) with libcurl on a background thread of its own.
//
//   - The first fetch starts at construction; Current() never waits for it: before the first
//     success it is Unavailable, naming the URI and the last error (tokens of the rule then fail
//     with 401 "Jwks remote fetch is failed"; requests without a token pass).
//   - After a success the set is fetched again every `refresh_interval` (default 20 min, as
//     Istio's jwksResolver refreshes); a failed fetch keeps the last good set (stale on error)
//     and is retried with exponential backoff from `initial_backoff`, capped at `max_backoff`
//     (60 s) and never later than the refresh interval (NextFetchDelay).
//   - Each fetch: GET, http and https only, no redirects followed, `timeout` for the whole
//     exchange (default 5 s, the rule's `timeout`), body at most `max_body_bytes` (1 MiB),
//     HTTP 200 only, and the body must be a JWKS with at least one usable key (Jwks::Parse).
//   - HTTPS verifies the server's certificate and name against `ca_file` (a PEM bundle) or the
//     system's bundle. Verification can be turned off only with `verify_tls = false`, which is
//     logged as a warning at construction and shown in Status().
//
// Threads: one thread per fetcher; Current(), Status() and RefreshNow() are thread-safe and
// never block on the network. The destructor stops the thread, aborting a fetch in flight (the
// transfer's progress callback checks the stop flag).
//
// JwksFetcherRegistry shares one fetcher per URI between rules and destinations; the waypoint
// builds its JwksProvider from it and calls Sweep() after each rebuild.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/jwt/jwks.h"
#include "common/jwt/jwks_source.h"
#include "common/jwt/policy.h"

namespace zm::jwt {

struct JwksFetcherOptions {
  std::chrono::milliseconds timeout{5000};
  std::chrono::milliseconds refresh_interval{std::chrono::minutes(20)};
  std::chrono::milliseconds initial_backoff{1000};
  std::chrono::milliseconds max_backoff{60'000};
  size_t max_body_bytes = 1 << 20;
  std::string ca_file;    // PEM CA bundle for https; empty: the system's
  bool verify_tls = true;  // false: never silently (warning + Status)
};

// What the admin endpoint shows for one URI.
struct JwksFetcherStatus {
  std::string uri;
  std::optional<std::chrono::system_clock::time_point> last_success;
  std::optional<std::chrono::system_clock::time_point> last_attempt;
  std::string last_error;  // of the last attempt; empty when it succeeded
  int consecutive_failures = 0;
  size_t keys = 0;           // usable keys in the current set
  uint64_t fetches = 0;      // attempts completed
  bool verify_tls = true;
};

// The wait before the next fetch: the refresh interval after a success (failures == 0), else
// initial_backoff * 2^(failures - 1), capped at max_backoff and at the refresh interval.
std::chrono::milliseconds NextFetchDelay(const JwksFetcherOptions& options, int failures);

// One GET of `uri` under `options` (timeout, size limit, TLS): the body, or an error naming
// the URI and what failed. `stop`, when set during the transfer, aborts it.
absl::StatusOr<std::string> FetchDocument(const std::string& uri,
                                          const JwksFetcherOptions& options,
                                          const std::atomic<bool>* stop = nullptr);

class JwksFetcher final : public JwksSource {
 public:
  // `clock` stamps Status() times; it must outlive the fetcher.
  JwksFetcher(std::string uri, JwksFetcherOptions options,
              const Clock& clock = SystemClock::Get());
  ~JwksFetcher() override;
  JwksFetcher(const JwksFetcher&) = delete;
  JwksFetcher& operator=(const JwksFetcher&) = delete;

  absl::StatusOr<std::shared_ptr<const Jwks>> Current() const override;
  JwksFetcherStatus Status() const;
  const std::string& uri() const { return uri_; }

  // Fetches now instead of at the next scheduled time (admin, tests).
  void RefreshNow();
  // Waits until at least `count` attempts have completed; false at the deadline.
  bool WaitForFetches(uint64_t count, std::chrono::milliseconds deadline) const;
  // Raises the fetch timeout (several rules with different `timeout` share a fetcher: the
  // longest wins).
  void RaiseTimeout(std::chrono::milliseconds timeout);

 private:
  void Run();

  const std::string uri_;
  JwksFetcherOptions options_;  // timeout guarded by mu_
  const Clock& clock_;
  std::atomic<bool> stop_{false};

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;  // wakes the thread (stop, refresh) and waiters
  bool refresh_requested_ = false;
  std::shared_ptr<const Jwks> jwks_;
  JwksFetcherStatus status_;

  std::thread thread_;  // last: starts after everything above is initialized
};

class JwksFetcherRegistry {
 public:
  explicit JwksFetcherRegistry(JwksFetcherOptions defaults = {},
                               const Clock& clock = SystemClock::Get());

  // The fetcher for `uri`, created on first use; `timeout` (0: the default) raises its timeout.
  std::shared_ptr<JwksFetcher> Get(const std::string& uri, std::chrono::milliseconds timeout = {});
  // For a rule with jwksUri (its `timeout`): what a JwksProvider returns. nullptr for a rule
  // without jwksUri.
  std::shared_ptr<const JwksSource> ForRule(const JwtRuleSpec& rule);
  // Drops the fetchers no one else holds any more (their rules are gone from every live
  // L7Policies); returns their URIs. Call on the control thread after swapping in a rebuild, so
  // that a fetcher's thread is joined there and never on a worker.
  std::vector<std::string> Sweep();
  std::vector<JwksFetcherStatus> Status() const;

 private:
  JwksFetcherOptions defaults_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<JwksFetcher>> fetchers_;
};

}  // namespace zm::jwt
