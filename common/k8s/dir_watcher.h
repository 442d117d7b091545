#pragma once
// Watches one directory with inotify on a thread of its own and calls back after each burst of
// changes (the manifest directory in local mode; the CNI configuration directory, so the agent
// chains its plugin again when the pod network's plugin rewrites its file).
//
// Bursts are coalesced: the callback runs `quiet` after the last event, or `max_delay` after the
// first event of a burst that never goes quiet. Every event in the directory counts, whatever
// the name, so a ConfigMap mount's atomic `..data` symlink swap is seen too. The watch exists
// from Watch() on, so a change between Watch() and a first read of the directory is not missed.
// The destructor stops and joins the thread (a callback in progress finishes first); do not
// destroy the watcher from inside its callback.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/base/fd.h"

namespace zm::k8s {

class DirWatcher {
 public:
  struct Options {
    std::chrono::milliseconds quiet{100};
    std::chrono::milliseconds max_delay{2000};
  };

  // Starts watching `dir` (`what` names it in errors and logs: "manifest directory"). Fails,
  // naming the directory, when it does not exist or cannot be watched.
  static absl::StatusOr<std::unique_ptr<DirWatcher>> Watch(std::string dir, std::string what,
                                                           Options options);
  // Starts the thread: `on_change` runs on it after every burst. Once.
  void Start(std::function<void()> on_change);

  ~DirWatcher();
  DirWatcher(const DirWatcher&) = delete;
  DirWatcher& operator=(const DirWatcher&) = delete;

 private:
  DirWatcher(std::string dir, std::string what, Options options, Fd inotify, Fd wake);
  void Run();

  const std::string dir_;
  const std::string what_;
  const Options options_;
  Fd inotify_;
  Fd wake_;  // eventfd: written by the destructor to stop the thread
  std::function<void()> on_change_;
  std::thread thread_;
};

}  // namespace zm::k8s
