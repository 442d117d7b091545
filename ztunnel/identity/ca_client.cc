#include "ztunnel/identity/ca_client.h"

#include <grpcpp/grpcpp.h>

#include "common/base/strings.h"

namespace zm::ztunnel {

GrpcCaClient::GrpcCaClient(const std::string& target, std::chrono::milliseconds deadline)
    : target_(target),
      deadline_(deadline),
      stub_(istio::v1::auth::IstioCertificateService::NewStub(
          grpc::CreateChannel(target, grpc::InsecureChannelCredentials()))) {}

absl::StatusOr<std::vector<std::string>> GrpcCaClient::Fetch(const std::string& csr_pem,
                                                             std::chrono::seconds ttl) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + deadline_);
  istio::v1::auth::IstioCertificateRequest req;
  req.set_csr(csr_pem);
  req.set_validity_duration(ttl.count());
  istio::v1::auth::IstioCertificateResponse resp;
  grpc::Status st = stub_->CreateCertificate(&ctx, req, &resp);
  if (!st.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(st.error_code()),
                        StrCat("CA ", target_, ": ", st.error_message()));
  }
  return std::vector<std::string>(resp.cert_chain().begin(), resp.cert_chain().end());
}

}  // namespace zm::ztunnel
