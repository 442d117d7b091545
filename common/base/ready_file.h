#pragma once
// Readiness as a file that exists while the process is ready: the DaemonSet's exec readiness
// probe (`test -f`). The agent and ztunnel run in the node's network namespace, so during a
// surge upgrade the old and the new pod share 127.0.0.1:15020/15030 and an HTTP probe could be
// answered by the other instance; each container's own filesystem cannot be.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace zm {

class ReadyFile {
 public:
  // Empty path: does nothing. Removes a stale file left by an earlier run.
  explicit ReadyFile(std::string path);
  ~ReadyFile();  // stops following, removes the file
  ReadyFile(const ReadyFile&) = delete;
  ReadyFile& operator=(const ReadyFile&) = delete;

  // Writes the file (atomically) or removes it when the state changes; errors are logged once
  // per change, never fatal. Thread-safe.
  void Set(bool ready);
  // Set(ready()) now and every `every` after, on a thread of its own, until destruction.
  // `ready` must be thread-safe (the process's /healthz/ready answer).
  void Follow(std::function<bool()> ready,
              std::chrono::milliseconds every = std::chrono::milliseconds(200));

 private:
  std::string path_;
  std::mutex mu_;
  int state_ = -1;  // -1 unknown, 0 not ready, 1 ready; guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::condition_variable cv_;
  std::thread follower_;
};

}  // namespace zm
