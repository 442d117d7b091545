#pragma once
// Readiness as a file that exists while the process is ready: the DaemonSet's exec readiness
// probe (`test -f`). The agent and ztunnel run in the node's network namespace, so during a
// surge upgrade the old and the new pod share 127.0.0.1:15020/15030 and an HTTP probe could be
// answered by the other instance; each container's own filesystem cannot be.

#include <string>

namespace zm {

class ReadyFile {
 public:
  // Empty path: does nothing. Removes a stale file left by an earlier run.
  explicit ReadyFile(std::string path);
  ~ReadyFile();  // removes the file
  ReadyFile(const ReadyFile&) = delete;
  ReadyFile& operator=(const ReadyFile&) = delete;

  // Writes the file (atomically) or removes it when the state changes; errors are logged once
  // per change, never fatal. Not thread-safe: call from one thread.
  void Set(bool ready);

 private:
  std::string path_;
  int state_ = -1;  // -1 unknown, 0 not ready, 1 ready
};

}  // namespace zm
