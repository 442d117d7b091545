#pragma once
// CertificateSource over gRPC: IstioCertificateService.CreateCertificate on the agent's Unix
// socket (local mode) or any gRPC target.

#include <chrono>
#include <memory>
#include <string>

#include "ztunnel/identity/cert_manager.h"
#include "zmesh/ca/v1/ca.grpc.pb.h"

namespace zm::ztunnel {

class GrpcCaClient : public CertificateSource {
 public:
  // `target`: "unix:/var/run/zmesh/node1/ca.sock", or any gRPC target (insecure channel: local
  // mode only; cluster mode adds TLS and a token).
  explicit GrpcCaClient(const std::string& target,
                        std::chrono::milliseconds deadline = std::chrono::seconds(10));
  absl::StatusOr<std::vector<std::string>> Fetch(const std::string& csr_pem,
                                                 std::chrono::seconds ttl) override;

 private:
  std::string target_;
  std::chrono::milliseconds deadline_;
  std::unique_ptr<istio::v1::auth::IstioCertificateService::Stub> stub_;
};

}  // namespace zm::ztunnel
