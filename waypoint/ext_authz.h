#pragma once
// CUSTOM authorization at the waypoint (policy-semantics §2.8, §9.7): a request that a CUSTOM
// policy matches is sent to the policy's provider first; a provider deny is the answer (its
// status, default 403, its body and the headers it may set downstream); a provider allow does
// not bypass DENY and ALLOW policies. Providers are Istio's MeshConfig `extensionProviders`
// (`--mesh-config FILE`); `envoyExtAuthzHttp` is spoken here, Envoy's HTTP ext_authz protocol:
// the request's method, `pathPrefix` + path, the headers listed in
// `includeRequestHeadersInCheck` (plus Host, Method-independent), no body; a 200 allows (the
// headers in `headersToUpstreamOnAllow` are copied onto the request), anything else denies (the
// response's status and body, and the headers in `headersToDownstreamOnDeny`). A provider that
// cannot be reached, or answers late (`timeout`, default 10 s), denies with `statusOnError`
// (default 403) unless `failOpen`. `envoyExtAuthzGrpc` providers: ext_authz_grpc.h.

#include <asio.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/ip.h"
#include "common/mesh/workload.h"
#include "waypoint/http/http.h"

namespace zm::waypoint {

struct ExtAuthzProvider {
  enum class Kind { kHttp, kGrpc };
  std::string name;
  Kind kind = Kind::kHttp;
  std::string service;  // "name.ns.svc.cluster.local", "name.ns", or an IP address
  uint16_t port = 0;
  std::string path_prefix;
  std::vector<std::string> include_request_headers;  // lower case
  std::vector<std::string> headers_to_upstream_on_allow;
  std::vector<std::string> headers_to_downstream_on_deny;
  std::chrono::milliseconds timeout{10'000};
  bool fail_open = false;
  int status_on_error = 403;
};

// Reads `extensionProviders` from an Istio MeshConfig YAML document (other keys are ignored;
// unknown fields inside a provider are errors naming the file, provider and field).
absl::StatusOr<std::vector<ExtAuthzProvider>> ParseMeshConfigProviders(std::string_view yaml,
                                                                       const std::string& source);

// Where a provider's `service` listens, from the mesh: an IP literal as is; a Service name
// (name.ns[.svc[.cluster.local]]) -> one running endpoint's address and the target port of
// `port`. Errors say why.
absl::StatusOr<Endpoint> ResolveProvider(const ExtAuthzProvider& provider,
                                         const mesh::Snapshot& snapshot);

struct ExtAuthzResult {
  bool allowed = false;
  int status = 403;                          // on deny
  std::string body;                          // on deny
  std::vector<HttpHeader> upstream_headers;  // on allow: set on the forwarded request
  std::vector<HttpHeader> downstream_headers;  // on deny: set on the response
  std::string detail;                        // for the log: what the provider said, or the error
};

// One check over HTTP/1.1 (a connection per check, `Connection: close`), on `executor`; `done`
// runs there once.
void CheckHttp(asio::any_io_executor executor, const ExtAuthzProvider& provider,
               const Endpoint& address, const RequestHead& head,
               std::function<void(ExtAuthzResult)> done);

}  // namespace zm::waypoint
