#pragma once
// CUSTOM providers of kind envoyExtAuthzGrpc (ext_authz.h): Envoy's
// envoy.service.auth.v3.Authorization/Check over gRPC (plaintext h2c, as to an in-cluster
// provider). The request carries the source (its verified principal and address), the
// destination, and the HTTP request (method, path, host, every header, scheme, protocol). An OK
// status allows (the ok_response's headers are set on the forwarded request); anything else
// denies with the denied_response's status (403 when unset), headers and body. A provider that
// cannot be reached or answers late denies with statusOnError unless failOpen.

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "waypoint/ext_authz.h"

namespace zm::waypoint {

struct CheckParties {
  std::optional<std::string> source_principal;  // without spiffe://
  std::optional<IpAddr> source_ip;
  Endpoint destination;
  bool h2 = false;
};

class GrpcExtAuthz {
 public:
  // One check; `done` runs once, on `executor`.
  void Check(asio::any_io_executor executor, const ExtAuthzProvider& provider,
             const Endpoint& address, const RequestHead& head, const CheckParties& parties,
             std::function<void(ExtAuthzResult)> done);

 private:
  std::shared_ptr<grpc::Channel> ChannelFor(const Endpoint& address);

  std::mutex mu_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;  // by "ip:port", guarded by mu_
};

}  // namespace zm::waypoint
