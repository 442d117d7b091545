#include "ztunnel/identity/ca_client.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/ascii.h"
#include "common/base/strings.h"
#include "common/tls/pem.h"

namespace zm::ztunnel {
namespace {

bool IsUnixTarget(std::string_view target) {
  return target.rfind("unix:", 0) == 0 || target.rfind("unix-abstract:", 0) == 0;
}

// The channel for `target`, or why there is none.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& target,
                                                           const GrpcCaClientOptions& options) {
  if (options.root_cert_file.empty()) {
    if (!IsUnixTarget(target)) {
      return absl::FailedPreconditionError(
          StrCat("CA ", target,
                 ": refusing a plaintext channel to a non-Unix target; give the "
                 "mesh root to verify the CA with (--ca-root-cert)"));
    }
    return grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  }
  auto pem = tls::ReadFile(options.root_cert_file);
  if (!pem.ok()) {
    return absl::FailedPreconditionError(StrCat("CA root certificate: ", pem.status().message()));
  }
  if (auto roots = tls::CertsFromPem(*pem, options.root_cert_file); !roots.ok()) {
    return absl::FailedPreconditionError(StrCat("CA root certificate: ", roots.status().message()));
  }
  grpc::SslCredentialsOptions tls{.pem_root_certs = *pem};
  grpc::ChannelArguments args;
  if (!options.tls_server_name.empty()) args.SetSslTargetNameOverride(options.tls_server_name);
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(tls), args);
}

}  // namespace

GrpcCaClient::GrpcCaClient(const std::string& target, GrpcCaClientOptions options)
    : target_(target), options_(std::move(options)) {
  auto channel = MakeChannel(target_, options_);
  if (!channel.ok()) {
    status_ = channel.status();
    return;
  }
  stub_ = istio::v1::auth::IstioCertificateService::NewStub(*channel);
}

absl::StatusOr<std::unique_ptr<GrpcCaClient>> GrpcCaClient::Create(const std::string& target,
                                                                   GrpcCaClientOptions options) {
  auto client = std::make_unique<GrpcCaClient>(target, std::move(options));
  if (!client->status().ok()) return client->status();
  return client;
}

absl::StatusOr<std::vector<std::string>> GrpcCaClient::Fetch(const std::string& csr_pem,
                                                             std::chrono::seconds ttl) {
  if (!status_.ok()) return status_;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + options_.deadline);
  if (!options_.token_file.empty()) {
    auto content = tls::ReadFile(options_.token_file);
    if (!content.ok()) {
      return absl::FailedPreconditionError(StrCat("CA token: ", content.status().message()));
    }
    absl::string_view token = absl::StripAsciiWhitespace(*content);
    if (token.empty()) {
      return absl::FailedPreconditionError(StrCat("CA token: ", options_.token_file, " is empty"));
    }
    for (char c : token) {
      if (c <= 0x20 || c >= 0x7f) {
        return absl::FailedPreconditionError(
            StrCat("CA token: ", options_.token_file,
                   " holds a blank or non-printable character inside the token"));
      }
    }
    ctx.AddMetadata("authorization", StrCat("Bearer ", std::string(token.data(), token.size())));
  }
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
