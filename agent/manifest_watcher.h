#pragma once
// Watches a manifest directory (local mode, DESIGN §2) with inotify on a thread of its own
// and hands every change to a callback as a fresh, immutable ManifestStore snapshot.
//
// Bursts are coalesced: a reload happens after `quiet` without events (or `max_delay` after
// the first event of a burst that never goes quiet). All events in the directory count,
// whatever the name, so a ConfigMap mount's atomic `..data` symlink swap is seen too.
//
// Threads: the first call, with the content found at start, happens inside Start() on the
// calling thread; every later call comes from the watcher thread. Calls never overlap. The
// destructor stops and joins the thread (a callback in progress finishes first); do not
// destroy the watcher from inside its callback.

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/base/fd.h"
#include "common/k8s/manifest_store.h"

namespace zm::agent {

class ManifestWatcher {
 public:
  using Callback = std::function<void(std::shared_ptr<const k8s::ManifestSnapshot>)>;

  struct Options {
    std::chrono::milliseconds quiet{100};
    std::chrono::milliseconds max_delay{2000};
  };

  // Fails, naming the directory, when it does not exist or cannot be watched or listed.
  static absl::StatusOr<std::unique_ptr<ManifestWatcher>> Start(std::string dir, Callback callback,
                                                                Options options);
  static absl::StatusOr<std::unique_ptr<ManifestWatcher>> Start(std::string dir,
                                                                Callback callback) {
    return Start(std::move(dir), std::move(callback), Options{});
  }

  ~ManifestWatcher();
  ManifestWatcher(const ManifestWatcher&) = delete;
  ManifestWatcher& operator=(const ManifestWatcher&) = delete;

  // The latest snapshot (the one last given to the callback, or about to be).
  std::shared_ptr<const k8s::ManifestSnapshot> Current() const;
  // How many reloads have happened (the initial load counts): for tests and metrics.
  uint64_t reloads() const;

 private:
  ManifestWatcher(std::string dir, Callback callback, Options options, Fd inotify, Fd wake);
  void Run();
  void ReloadAndNotify();

  const std::string dir_;
  const Callback callback_;
  const Options options_;
  Fd inotify_;
  Fd wake_;  // eventfd: written by the destructor to stop the thread
  k8s::ManifestStore store_;  // watcher thread only (and Start, before the thread exists)
  mutable std::mutex mu_;
  std::shared_ptr<const k8s::ManifestSnapshot> current_;  // guarded by mu_
  uint64_t reloads_ = 0;                                 // guarded by mu_
  std::thread thread_;
};

}  // namespace zm::agent
