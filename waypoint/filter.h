#pragma once
// The waypoint's filter chain for one CONNECT stream (DESIGN §6): RequestAuthentication, path
// normalization and the L7 AuthorizationPolicy, all in mesh::AuthorizeL7 (the code `zmeshctl
// explain --layer l7` runs too), against the mesh view current when the request arrives; when
// a CUSTOM policy matches, its provider is asked first (ext_authz.h) and its deny is the answer.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/base/ip.h"
#include "waypoint/ext_authz.h"
#include "waypoint/ext_authz_grpc.h"
#include "waypoint/http/http.h"
#include "waypoint/mesh_config.h"
#include "waypoint/metrics.h"

namespace zm::waypoint {

// Who is asking and for what, fixed for the stream.
struct StreamContext {
  std::optional<std::string> principal;  // the source's verified SPIFFE id, without spiffe://
  std::optional<IpAddr> source_ip;       // from the CONNECT's `forwarded: for=`
  Endpoint target;                       // the original destination (the CONNECT authority)
  uint64_t session = 0;
  int32_t stream = 0;
};

class L7Filter final : public RequestFilter {
 public:
  L7Filter(const MeshConfig& config, StreamContext context, Metrics& metrics,
           const std::vector<ExtAuthzProvider>& providers, GrpcExtAuthz& grpc,
           asio::any_io_executor executor)
      : config_(config),
        context_(std::move(context)),
        metrics_(metrics),
        providers_(providers),
        grpc_(grpc),
        executor_(std::move(executor)) {}

  void Decide(RequestHead& head, std::function<void(Decision)> done) override;

  const StreamContext& context() const { return context_; }

 private:
  // Answers with the L7 verdict (the CUSTOM provider, if any, already allowed).
  void Finish(RequestHead& head, const mesh::L7Verdict& v, std::function<void(Decision)> done);

  const MeshConfig& config_;
  const StreamContext context_;
  Metrics& metrics_;
  const std::vector<ExtAuthzProvider>& providers_;
  GrpcExtAuthz& grpc_;
  asio::any_io_executor executor_;
};

}  // namespace zm::waypoint
