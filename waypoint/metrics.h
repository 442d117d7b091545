#pragma once
// The waypoint's Prometheus metrics (DESIGN §8): Istio's request counter by response code, the
// denials by kind, and the HBONE connections and streams served. Thread-safe.

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace zm::waypoint {

class Metrics {
 public:
  void CountRequest(int status);
  void CountDenial(const std::string& kind);  // "authn", "policy", "bad-request", "custom"
  std::atomic<uint64_t> connections_total{0};
  std::atomic<int64_t> connections_open{0};
  std::atomic<uint64_t> streams_total{0};
  std::atomic<uint64_t> streams_refused{0};

  std::string Render() const;

 private:
  mutable std::mutex mu_;
  std::map<int, uint64_t> requests_;           // by status, guarded by mu_
  std::map<std::string, uint64_t> denials_;    // by kind, guarded by mu_
};

}  // namespace zm::waypoint
