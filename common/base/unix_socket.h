#pragma once
// Unix-domain sockets the agent serves to local peers (ZDS for ztunnel, the CNI plugin's
// requests) and the client side.

#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/base/fd.h"

namespace zm {

// A listening Unix socket whose blocking Accept() another thread can end (Shutdown). The socket
// file is removed with the listener.
class UnixListener {
 public:
  // Creates the parent directories, removes a stale socket of an earlier run, binds `path` with
  // socket `type` (SOCK_STREAM, SOCK_SEQPACKET), sets `mode` and listens. Errors name the call
  // and the path; `what` names the socket ("ZDS", "CNI").
  static absl::StatusOr<std::unique_ptr<UnixListener>> Listen(const std::string& path, int type,
                                                              mode_t mode, std::string_view what);
  ~UnixListener();
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;

  // Blocks until a peer connects; Cancelled once Shutdown() was called.
  absl::StatusOr<Fd> Accept();
  // Ends the Accept() in progress and every later one. Thread-safe.
  void Shutdown();
  const std::string& path() const { return path_; }

 private:
  UnixListener(std::string path, std::string what, Fd listener, Fd wake)
      : path_(std::move(path)),
        what_(std::move(what)),
        listener_(std::move(listener)),
        wake_(std::move(wake)) {}

  const std::string path_;
  const std::string what_;
  Fd listener_;
  Fd wake_;  // eventfd
};

// Connects to `path` (blocking). Errors name the call and the path.
absl::StatusOr<Fd> ConnectUnix(const std::string& path, int type);

}  // namespace zm
