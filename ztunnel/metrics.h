#pragma once
// Counters of the data path (updated by workers, lock-free) and their Prometheus rendering
// (on the control thread), plus readiness. Names and labels follow Istio (DESIGN §8).

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <tuple>

namespace zm::ztunnel {

// Why a connection failed; doubles as the `reason` label and the access log's `result`.
enum class FailureReason {
  kNoOrigDst,
  kLoopGuard,
  kConnectRefused,
  kConnectTimeout,
  kConnectError,
  kUpstreamSocket,
  kNoConfig,       // no mesh configuration from the agent yet (or the pod is not in it)
  kNoEndpoint,     // a service VIP with no usable endpoint for the port
  kHboneConnect,   // the HBONE connection failed: connect, TLS, secure naming, HTTP/2
  kHboneRejected,  // the peer answered the CONNECT with a status other than 200
  kMtlsRequired,   // plaintext inbound refused: PeerAuthentication STRICT
  kPolicyDenied,   // inbound refused (or a live connection closed) by AuthorizationPolicy
  kCount,
};
std::string_view FailureName(FailureReason r);

enum class Direction { kOutbound, kInbound };
std::string_view DirectionName(Direction d);

// One label set of the istio_tcp_* counters.
struct TcpLabels {
  Direction direction = Direction::kOutbound;  // reporter="source" / "destination"
  std::string source_workload;                 // empty: "unknown"
  std::string source_namespace;
  std::string destination_workload;
  std::string destination_namespace;
  auto operator<=>(const TcpLabels&) const = default;
};

// The counters of one label set. Workers hold a shared_ptr for a connection's lifetime.
struct TcpSeries {
  std::atomic<uint64_t> opened{0};
  std::atomic<uint64_t> closed{0};
  std::atomic<uint64_t> sent_bytes{0};      // client -> server (request direction)
  std::atomic<uint64_t> received_bytes{0};  // server -> client (response direction)
};

// One label set of zmesh_authorization_denials_total.
struct DenialLabels {
  std::string policy;  // "ns/name"; empty: no policy matched (default deny)
  std::string destination_workload;
  std::string destination_namespace;
  auto operator<=>(const DenialLabels&) const = default;
};

class Metrics {
 public:
  // Looked up once per connection (takes a mutex); the returned counters are atomics.
  std::shared_ptr<TcpSeries> Tcp(const TcpLabels& labels);
  void CountFailure(FailureReason r) {
    failures_[static_cast<size_t>(r)].fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t Failures(FailureReason r) const {
    return failures_[static_cast<size_t>(r)].load(std::memory_order_relaxed);
  }
  void SetWorkloads(int64_t n) { workloads_.store(n, std::memory_order_relaxed); }
  // Connections accepted and not yet ended (an HBONE connection counts as one while its
  // session lives): what the SIGTERM drain waits for (held through InFlight).
  int64_t InFlightConnections() const { return in_flight_.load(std::memory_order_relaxed); }
  // A connection denied by AuthorizationPolicy (takes a mutex; denials are the slow path).
  void CountDenial(const DenialLabels& labels);
  uint64_t Denials(const DenialLabels& labels) const;

  // Prometheus text exposition format 0.0.4.
  std::string Render() const;

 private:
  mutable std::mutex mu_;
  std::map<TcpLabels, std::shared_ptr<TcpSeries>> tcp_;
  std::array<std::atomic<uint64_t>, static_cast<size_t>(FailureReason::kCount)> failures_{};
  std::map<DenialLabels, uint64_t> denials_;  // under mu_
  std::atomic<int64_t> workloads_{0};
  std::atomic<int64_t> in_flight_{0};
  friend class InFlight;
};

// Counts one connection in flight for as long as it lives (a member of each connection).
class InFlight {
 public:
  explicit InFlight(Metrics& m) : n_(&m.in_flight_) { n_->fetch_add(1, std::memory_order_relaxed); }
  ~InFlight() { n_->fetch_sub(1, std::memory_order_relaxed); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  std::atomic<int64_t>* n_;
};

// Named tasks that must finish before ztunnel reports ready ("zds-snapshot": the agent's
// first full snapshot was handled).
class Readiness {
 public:
  void AddPending(std::string task);
  void Done(const std::string& task);
  bool Ready() const;
  std::set<std::string> Pending() const;

 private:
  mutable std::mutex mu_;
  std::set<std::string> pending_;
};

}  // namespace zm::ztunnel
