#pragma once
// ZDS client (DESIGN §5): connects to the agent's SOCK_SEQPACKET Unix socket, says Hello,
// then handles WorkloadRequests one at a time with exactly one Ack each. Runs on the control
// thread's io_context. Reconnects with exponential backoff and jitter; never exits on bad
// input: a datagram that names a request gets an error Ack, anything else drops the
// connection (and reconnects).

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>

#include "ztunnel/workload_handler.h"

namespace zm::ztunnel {

struct ZdsClientOptions {
  std::string socket_path;
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{5000};
};

class ZdsClient {
 public:
  ZdsClient(asio::io_context& ctx, ZdsClientOptions opts, WorkloadHandler& handler);
  // Start and Stop run on the io_context's thread (or before it runs).
  void Start();
  void Stop();

  // Hellos sent so far (one per established connection); readable from any thread.
  uint64_t sessions() const { return sessions_.load(); }

  // The delay before reconnect attempt `attempt` (0-based): min(max, initial * 2^attempt),
  // jittered uniformly into [d/2, d].
  static std::chrono::milliseconds Backoff(const ZdsClientOptions& opts, int attempt,
                                           std::mt19937_64& rng);

 private:
  void Connect();
  void Disconnect(bool retry);
  void WaitReadable();
  void OnReadable();

  ZdsClientOptions opts_;
  WorkloadHandler& handler_;
  asio::generic::seq_packet_protocol::socket sock_;
  asio::steady_timer timer_;
  std::mt19937_64 rng_;
  int attempt_ = 0;
  bool good_session_ = false;
  bool stopped_ = false;
  std::atomic<uint64_t> sessions_{0};
};

}  // namespace zm::ztunnel
