#pragma once
// CertificateSource over gRPC: IstioCertificateService.CreateCertificate on the agent's Unix
// socket (local mode: plaintext, the caller known by its peer credentials) or on zmesh-ca
// (cluster mode: TLS verified against the mesh root, a bearer token on every call).

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "zmesh/ca/v1/ca.grpc.pb.h"
#include "ztunnel/identity/cert_manager.h"

namespace zm::ztunnel {

struct GrpcCaClientOptions {
  // PEM root(s) the CA's serving certificate must chain to. When set the channel is TLS.
  // Required for every target that is not a Unix socket (`unix:`/`unix-abstract:`): a TCP
  // target without it is refused, never dialled in plaintext. Read once, at construction.
  std::string root_cert_file;
  // When set, its content, trimmed, is sent as `authorization: Bearer <token>` on every call.
  // Re-read on every call, so a rotated token (a projected service-account token) is used at
  // once.
  std::string token_file;
  // The name checked against the CA certificate's SANs instead of the target's host.
  std::string tls_server_name;
  std::chrono::milliseconds deadline{std::chrono::seconds(10)};
};

class GrpcCaClient : public CertificateSource {
 public:
  // Never fails: an unusable setup (an insecure TCP target, an unreadable root file) makes
  // status() and every Fetch() return the reason. Prefer Create() to fail at start.
  GrpcCaClient(const std::string& target, GrpcCaClientOptions options);
  // Local mode, as before: a plaintext channel to a `unix:` target.
  explicit GrpcCaClient(const std::string& target,
                        std::chrono::milliseconds deadline = std::chrono::seconds(10))
      : GrpcCaClient(target, GrpcCaClientOptions{.deadline = deadline}) {}

  // The same, returning the setup error instead of a client that always fails.
  static absl::StatusOr<std::unique_ptr<GrpcCaClient>> Create(const std::string& target,
                                                              GrpcCaClientOptions options);

  // OK when the client is usable.
  const absl::Status& status() const { return status_; }

  absl::StatusOr<std::vector<std::string>> Fetch(const std::string& csr_pem,
                                                 std::chrono::seconds ttl) override;

 private:
  std::string target_;
  GrpcCaClientOptions options_;
  absl::Status status_;
  std::unique_ptr<istio::v1::auth::IstioCertificateService::Stub> stub_;  // null unless status_ ok
};

}  // namespace zm::ztunnel
