#pragma once
// The ztunnel's side of the config stream (DESIGN §5 "Config"): connects to the agent, applies
// the full snapshot and the deltas that follow into an immutable mesh::Snapshot, swapped
// atomically, and calls back on every change.
//
// Threads: one thread of its own runs the stream (connect, read, apply, callback). The callback
// runs on it: keep it short (hand the snapshot to the workers); while it runs the stream is not
// read, and a callback that blocks long enough gets the stream dropped by the server (the client
// then resyncs). snapshot() may be called from any thread.
//
// Failures: a stream that ends, a delta whose base_version is not the version held (a gap), a
// first update that is not full, or an update that does not decode: the stream is dropped and
// a new one opened after a backoff (doubling from initial_backoff to max_backoff; reset by every
// applied update). The last good snapshot stays in place until a new full one replaces it.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/mesh/workload.h"

namespace grpc {
class ClientContext;
}

namespace zm::config {

class ConfigClient {
 public:
  struct Options {
    std::string target;  // gRPC target: "unix:/run/zmesh/config.sock"
    std::string node;    // sent in StreamRequest
    std::string client_name = "ztunnel";
    std::chrono::milliseconds initial_backoff{100};
    std::chrono::milliseconds max_backoff{10'000};
  };

  struct Update {
    std::shared_ptr<const mesh::Snapshot> snapshot;  // never null
    uint64_t version = 0;
    bool full = false;  // a full snapshot (first on a stream) rather than a delta
  };
  using Callback = std::function<void(const Update&)>;

  struct Stats {
    bool connected = false;      // a stream is open and has delivered its full snapshot
    uint64_t streams = 0;        // streams opened (attempts that reached the server)
    uint64_t full_updates = 0;   // applied
    uint64_t deltas = 0;         // applied
    uint64_t resyncs = 0;        // streams dropped by the client: gap, not full first, bad update
    uint64_t stream_errors = 0;  // streams that failed or ended otherwise (incl. connect failures)
  };

  ConfigClient(Options options, Callback on_change);
  ~ConfigClient();  // Stop()
  ConfigClient(const ConfigClient&) = delete;
  ConfigClient& operator=(const ConfigClient&) = delete;

  // Starts the stream thread. Call once.
  void Start();
  // Ends the stream and joins the thread; no callback runs after it returns. Idempotent.
  void Stop();

  // The current snapshot: null until the first full update.
  std::shared_ptr<const mesh::Snapshot> snapshot() const;
  uint64_t version() const;
  Stats stats() const;
  std::string last_error() const;

 private:
  void Run();
  // Runs one stream until it ends; returns why it ended ("" when stopped).
  std::string RunStream(bool* applied_any);

  const Options options_;
  const Callback on_change_;
  std::thread thread_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                           // guarded by mu_
  std::shared_ptr<grpc::ClientContext> ctx_;        // the open stream's; guarded by mu_
  std::shared_ptr<const mesh::Snapshot> snapshot_;  // guarded by mu_
  uint64_t version_ = 0;                            // guarded by mu_
  Stats stats_;                                     // guarded by mu_
  std::string last_error_;                          // guarded by mu_
};

}  // namespace zm::config
