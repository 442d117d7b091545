#include "common/ca/ca_service.h"

#include <algorithm>

#include "common/base/log.h"
#include "common/base/strings.h"
#include "common/tls/csr.h"

namespace zm::ca {
namespace {

spdlog::logger& L() {
  static spdlog::logger& l = Log("ca");
  return l;
}

}  // namespace

grpc::Status ToGrpc(const absl::Status& st) {
  if (st.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(st.code()), std::string(st.message()));
}

absl::StatusOr<std::vector<std::string>> CaService::Issue(const Caller& caller,
                                                          const std::string& csr_pem,
                                                          int64_t validity_seconds) {
  auto csr = tls::ParseCsr(csr_pem);
  if (!csr.ok()) {
    L().warn("refused {}: bad CSR: {}", caller.description, csr.status().message());
    return absl::InvalidArgumentError(StrCat("bad CSR: ", csr.status().message()));
  }
  const tls::SpiffeId& identity = csr->identity;
  if (absl::Status st = authorize_(caller, identity); !st.ok()) {
    L().warn("refused {} a certificate for {}: {}", caller.description, identity.ToString(),
             st.message());
    // Unavailable stays Unavailable (the caller retries); every other refusal is a denial.
    if (absl::IsUnavailable(st)) {
      return absl::UnavailableError(
          StrCat("cannot authorize ", identity.ToString(), " now: ", st.message()));
    }
    return absl::PermissionDeniedError(
        StrCat("not authorized for ", identity.ToString(), ": ", st.message()));
  }
  std::chrono::seconds ttl = validity_seconds > 0 ? std::chrono::seconds(validity_seconds)
                                                  : policy_.default_ttl;
  ttl = std::clamp(ttl, policy_.min_ttl, policy_.max_ttl);
  auto chain = ca_.Sign(csr_pem, identity, ttl);
  if (!chain.ok()) {
    L().error("signing {} for {} failed: {}", identity.ToString(), caller.description,
              chain.status().message());
    return chain.status();
  }
  L().info("issued {} to {} for {}s", identity.ToString(), caller.description, ttl.count());
  return chain;
}

grpc::Status CaService::CreateCertificate(grpc::ServerContext* ctx,
                                          const istio::v1::auth::IstioCertificateRequest* req,
                                          istio::v1::auth::IstioCertificateResponse* resp) {
  auto caller = caller_of_(ctx);
  if (!caller.ok()) {
    L().warn("refused an unidentified caller {}: {}", ctx->peer(), caller.status().message());
    return ToGrpc(caller.status());
  }
  auto chain = Issue(*caller, req->csr(), req->validity_duration());
  if (!chain.ok()) return ToGrpc(chain.status());
  for (auto& pem : *chain) resp->add_cert_chain(std::move(pem));
  return grpc::Status::OK;
}

}  // namespace zm::ca
