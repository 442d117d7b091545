#pragma once
// Serves gRPC services on a Unix socket and knows every caller by its peer credentials
// (SO_PEERCRED, taken at accept time — the kernel's word, not the caller's).
// Connections are accepted here and handed to gRPC with AddInsecureChannelFromFd; gRPC names
// such a peer "fd:<n>", which maps the RPC back to the credentials of its connection.

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/base/fd.h"
#include "common/ca/ca_service.h"

namespace zm::ca {

class UdsGrpcServer {
 public:
  // Creates the socket (mode 0600; parent directories created), starts gRPC and the accept
  // thread. `services` must outlive the server.
  static absl::StatusOr<std::unique_ptr<UdsGrpcServer>> Start(
      const std::string& path, const std::vector<grpc::Service*>& services);
  ~UdsGrpcServer();

  // The peer credentials of the connection an RPC arrived on.
  absl::StatusOr<Caller> CallerOf(grpc::ServerContext* ctx) const;

 private:
  UdsGrpcServer(std::string path, Fd listener, Fd wake, std::unique_ptr<grpc::Server> server);
  void AcceptLoop();

  std::string path_;
  Fd listener_;
  Fd wake_;
  std::unique_ptr<grpc::Server> server_;
  mutable std::mutex mu_;
  std::map<int, Caller> callers_;  // by fd number, guarded by mu_
  std::thread accept_thread_;
};

}  // namespace zm::ca
