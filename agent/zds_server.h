#pragma once
// The ZDS server (DESIGN §5): a SOCK_SEQPACKET Unix socket that ztunnel connects to.
// One ztunnel connection is active at a time; a newer one replaces it (ztunnel restart or
// upgrade). Requests are synchronous: send, then wait for exactly one Ack with a deadline.
// Threads: Accept() blocks on its own thread; everything else runs on the agent's control
// thread.

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>

#include "agent/ztunnel_link.h"
#include "common/base/fd.h"
#include "common/base/unix_socket.h"

namespace zm::agent {

struct ZtunnelPeer {
  pid_t pid = 0;
  uid_t uid = 0;
};

class ZdsServer : public ZtunnelLink {
 public:
  // Creates the socket (mode 0600, parent directories 0700), replacing a stale one.
  static absl::StatusOr<std::unique_ptr<ZdsServer>> Listen(const std::string& path);
  ~ZdsServer() override;

  // Blocks until a ztunnel connects; returns the connection (hello not read yet), or an
  // error once Shutdown() was called.
  absl::StatusOr<Fd> Accept();
  void Shutdown();

  // Adopts a freshly accepted connection: reads the Hello (deadline) and the peer's
  // credentials. Replaces the current connection, unless the peer is `refused_pid` (the
  // ztunnel being replaced in a surge upgrade, draining: it must not take the node back).
  absl::StatusOr<ZtunnelPeer> Adopt(Fd conn, pid_t refused_pid = 0);
  // Hands the current connection over (closing it would make its ztunnel reconnect: a stood-down
  // agent keeps it open until it exits).
  Fd TakeConnection() { return std::move(conn_); }
  // True when the connection is gone (peer closed, error); drops it. Non-blocking.
  bool CheckHangup();

  bool Connected() const override { return conn_.valid(); }
  absl::StatusOr<std::vector<Fd>> Add(const WorkloadRef& workload, int netns_fd) override;
  absl::Status Del(const std::string& uid) override;
  absl::Status SnapshotSent() override;

  void set_ack_timeout(std::chrono::milliseconds t) { ack_timeout_ = t; }

 private:
  explicit ZdsServer(std::unique_ptr<UnixListener> listener) : listener_(std::move(listener)) {}
  absl::StatusOr<std::vector<Fd>> Exchange(const std::string& what, const std::string& bytes,
                                           int fd);
  void Drop(const absl::Status& why);

  std::unique_ptr<UnixListener> listener_;
  Fd conn_;
  std::chrono::milliseconds ack_timeout_{5000};
};

}  // namespace zm::agent
