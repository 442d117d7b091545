#include "ca/cluster_server.h"

#include "common/base/log.h"
#include "common/base/strings.h"

namespace zm::ca {

absl::Status AuthorizeCaller(NodeAuthorizer& authz, const Caller& caller,
                             const tls::SpiffeId& identity) {
  if (!caller.node.empty()) return authz.Authorize(caller.node, identity);
  if (!caller.identity.empty()) {
    if (identity.ToString() == caller.identity) return absl::OkStatus();
    return absl::PermissionDeniedError(StrCat(
        "a caller that is not a ztunnel may obtain only its own identity, ", caller.identity));
  }
  return absl::PermissionDeniedError("the caller is bound to neither a node nor an identity");
}

ClusterCaServer::ClusterCaServer(tls::CertificateAuthority& ca, TokenAuthenticator& authn,
                                 NodeAuthorizer& authz, CaPolicy policy)
    : service_(
          ca,
          [&authn](grpc::ServerContext* ctx) -> absl::StatusOr<Caller> {
            auto token = BearerToken(ctx->client_metadata());
            if (!token.ok()) return token.status();
            return authn.Authenticate(*token);
          },
          [&authz](const Caller& caller, const tls::SpiffeId& id) {
            return AuthorizeCaller(authz, caller, id);
          },
          policy) {}

absl::StatusOr<std::unique_ptr<ClusterCaServer>> ClusterCaServer::Start(
    tls::CertificateAuthority& ca, TokenAuthenticator& authn, NodeAuthorizer& authz,
    const ClusterCaOptions& options) {
  auto out =
      std::unique_ptr<ClusterCaServer>(new ClusterCaServer(ca, authn, authz, options.policy));
  auto serving = IssueServingCredentials(ca, options.dns_names, options.serving_ttl);
  if (!serving.ok()) return serving.status();
  out->serving_ = std::move(*serving);

  grpc::SslServerCredentialsOptions tls(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  tls.pem_key_cert_pairs.push_back({out->serving_.key_pem, out->serving_.chain_pem});
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, grpc::SslServerCredentials(tls), &out->port_);
  builder.RegisterService(&out->service_);
  out->server_ = builder.BuildAndStart();
  if (out->server_ == nullptr || out->port_ == 0) {
    return absl::UnavailableError(StrCat("cannot listen on ", options.listen));
  }
  return out;
}

void ClusterCaServer::Shutdown() {
  if (shut_down_ || server_ == nullptr) return;
  shut_down_ = true;
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
}

ClusterCaServer::~ClusterCaServer() { Shutdown(); }

}  // namespace zm::ca
