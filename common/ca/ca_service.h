#pragma once
// The certificate service (IstioCertificateService.CreateCertificate, proto/zmesh/ca/v1),
// independent of how callers are authenticated: local mode serves it on a Unix socket and
// knows callers by their peer credentials (UdsCaServer); cluster mode (zmesh-ca, ca/) knows
// them by a bearer token. Every issuance and every refusal is logged with the
// caller and the reason.

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "common/tls/ca.h"
#include "common/tls/spiffe.h"
#include "zmesh/ca/v1/ca.grpc.pb.h"

namespace zm::ca {

// Who is asking, as the transport established it.
struct Caller {
  pid_t pid = 0;
  uid_t uid = 0;
  std::string node;  // cluster mode: the node whose ztunnel the caller's token names
  // Cluster mode, a caller that is not a ztunnel (a waypoint): the one SPIFFE ID it may obtain,
  // its own ("spiffe://cluster.local/ns/demo/sa/waypoint").
  std::string identity;
  std::string description;  // for logs: "pid 123 (ztunnel)"
};

// May `caller` obtain a certificate for `identity`? An error says why not: PermissionDenied, or
// Unavailable when the authorizer cannot decide now (its source of truth is unreachable).
using Authorizer = std::function<absl::Status(const Caller&, const tls::SpiffeId&)>;
// The caller of the RPC being served, from the transport.
using CallerOf = std::function<absl::StatusOr<Caller>(grpc::ServerContext*)>;

struct CaPolicy {
  std::chrono::seconds default_ttl{24 * 3600};
  std::chrono::seconds max_ttl{24 * 3600};
  std::chrono::seconds min_ttl{60};
};

class CaService final : public istio::v1::auth::IstioCertificateService::Service {
 public:
  CaService(tls::CertificateAuthority& ca, CallerOf caller_of, Authorizer authorize,
            CaPolicy policy = {})
      : ca_(ca),
        caller_of_(std::move(caller_of)),
        authorize_(std::move(authorize)),
        policy_(policy) {}

  grpc::Status CreateCertificate(grpc::ServerContext* ctx,
                                 const istio::v1::auth::IstioCertificateRequest* req,
                                 istio::v1::auth::IstioCertificateResponse* resp) override;

  // The work of CreateCertificate, without gRPC types (tested directly).
  absl::StatusOr<std::vector<std::string>> Issue(const Caller& caller, const std::string& csr_pem,
                                                 int64_t validity_seconds);

 private:
  tls::CertificateAuthority& ca_;
  CallerOf caller_of_;
  Authorizer authorize_;
  CaPolicy policy_;
};

// absl::Status -> grpc::Status with the same code and message.
grpc::Status ToGrpc(const absl::Status& st);

}  // namespace zm::ca
