#pragma once
// Watches a manifest directory (local mode, DESIGN §2) with inotify on a thread of its own
// (DirWatcher) and hands every change to a callback as a fresh, immutable ManifestStore snapshot.
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
#include "common/k8s/dir_watcher.h"
#include "common/k8s/object_source.h"
#include "common/k8s/manifest_store.h"

namespace zm::k8s {

class ManifestWatcher final : public ObjectSource {
 public:
  using Options = DirWatcher::Options;

  // Fails, naming the directory, when it does not exist or cannot be watched or listed.
  static absl::StatusOr<std::unique_ptr<ManifestWatcher>> Start(std::string dir, Callback callback,
                                                                Options options);
  static absl::StatusOr<std::unique_ptr<ManifestWatcher>> Start(std::string dir,
                                                                Callback callback) {
    return Start(std::move(dir), std::move(callback), Options{});
  }

  ~ManifestWatcher() override;
  ManifestWatcher(const ManifestWatcher&) = delete;
  ManifestWatcher& operator=(const ManifestWatcher&) = delete;

  std::shared_ptr<const ManifestSnapshot> Current() const override;
  // How many reloads have happened (the initial load counts): for tests and metrics.
  uint64_t reloads() const;

 private:
  ManifestWatcher(std::string dir, Callback callback);
  void ReloadAndNotify();

  const std::string dir_;
  const Callback callback_;
  k8s::ManifestStore store_;  // watcher thread only (and Start, before the thread exists)
  mutable std::mutex mu_;
  std::shared_ptr<const ManifestSnapshot> current_;  // guarded by mu_
  uint64_t reloads_ = 0;                                  // guarded by mu_
  std::unique_ptr<DirWatcher> watcher_;  // last: stopped first, while the rest still lives
};

}  // namespace zm::k8s
