#pragma once
// zmesh-ca's server (cluster mode): IstioCertificateService.CreateCertificate (common/ca's
// CaService) over gRPC with TLS only — no plaintext port. The caller is who its bearer token
// says (TokenAuthenticator): a ztunnel's node, which may obtain only identities of pods on that
// node (NodeAuthorizer), or a waypoint's own identity (AuthorizeCaller). Every issuance and refusal
// is logged by CaService, with the reason.
//
// Threads: gRPC's own; the authenticator and authorizer are called from them concurrently.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ca/node_authorizer.h"
#include "ca/serving_cert.h"
#include "ca/token_auth.h"
#include "common/ca/ca_service.h"
#include "common/tls/ca.h"

namespace zm::ca {

// The rule: a caller bound to a node (a ztunnel) gets what `authz` allows that node; a caller
// bound to an identity (Caller::identity, a waypoint) gets that identity only; anyone else
// nothing. PermissionDenied says why; `authz`'s Unavailable passes through.
absl::Status AuthorizeCaller(NodeAuthorizer& authz, const Caller& caller,
                             const tls::SpiffeId& identity);

struct ClusterCaOptions {
  std::string listen = "127.0.0.1:15012";  // host:port; port 0 picks a free one (see port())
  std::vector<std::string> dns_names = {"zmesh-ca.zmesh-system.svc"};
  // Of the serving certificate (capped by the root's own lifetime); a restart issues a new one.
  std::chrono::seconds serving_ttl{365 * 24 * 3600};
  CaPolicy policy;
};

class ClusterCaServer {
 public:
  // Issues the serving certificate with `ca` (at `ca`'s clock) and starts listening.
  // Everything passed in must outlive the server.
  static absl::StatusOr<std::unique_ptr<ClusterCaServer>> Start(tls::CertificateAuthority& ca,
                                                                TokenAuthenticator& authn,
                                                                NodeAuthorizer& authz,
                                                                const ClusterCaOptions& options);
  ~ClusterCaServer();

  int port() const { return port_; }
  const ServingCredentials& serving() const { return serving_; }
  // Stops accepting and waits (up to 1 s) for calls in flight. Idempotent.
  void Shutdown();

 private:
  ClusterCaServer(tls::CertificateAuthority& ca, TokenAuthenticator& authn, NodeAuthorizer& authz,
                  CaPolicy policy);

  CaService service_;
  ServingCredentials serving_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace zm::ca
