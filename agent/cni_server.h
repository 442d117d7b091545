#pragma once
// The agent's end of the zmesh-cni protocol (common/cni/protocol.h): a SOCK_STREAM Unix socket,
// mode 0600 (only root, i.e. the container runtime, may ask). One request per connection: the
// request is read with a short deadline on the accept thread, then handed to the handler with a
// reply function the handler calls once, whenever the answer is known (the agent answers an ADD
// only when the pod is enrolled). A reply function dropped without being called closes the
// connection: the plugin reports that the agent gave no answer.
//
// Threads: Serve() runs the accept loop on the caller's thread until Shutdown(); the reply
// function may be called from any thread.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/base/fd.h"
#include "common/base/unix_socket.h"
#include "common/cni/protocol.h"

namespace zm::agent {

class CniServer {
 public:
  using Reply = std::function<void(const cni::PodReply& reply)>;
  using Handler = std::function<void(cni::PodRequest request, Reply reply)>;

  static absl::StatusOr<std::unique_ptr<CniServer>> Listen(const std::string& path);

  // Accepts until Shutdown(); OK then, an error if accepting itself fails.
  absl::Status Serve(const Handler& handler);
  void Shutdown() { listener_->Shutdown(); }

  const std::string& path() const { return listener_->path(); }
  void set_read_timeout(std::chrono::milliseconds t) { read_timeout_ = t; }

 private:
  explicit CniServer(std::unique_ptr<UnixListener> listener) : listener_(std::move(listener)) {}
  void HandleConnection(Fd conn, const Handler& handler);

  std::unique_ptr<UnixListener> listener_;
  std::chrono::milliseconds read_timeout_{2000};
};

}  // namespace zm::agent
