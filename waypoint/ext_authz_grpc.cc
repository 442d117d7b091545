#include "waypoint/ext_authz_grpc.h"

#include "common/base/strings.h"
#include "envoy/service/auth/v3/external_auth.grpc.pb.h"

namespace zm::waypoint {
namespace v3 = ::envoy::service::auth::v3;

std::shared_ptr<grpc::Channel> GrpcExtAuthz::ChannelFor(const Endpoint& address) {
  const std::string target = address.ToString();
  std::lock_guard lock(mu_);
  auto& channel = channels_[target];
  if (!channel) channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  return channel;
}

void GrpcExtAuthz::Check(asio::any_io_executor executor, const ExtAuthzProvider& provider,
                         const Endpoint& address, const RequestHead& head,
                         const CheckParties& parties, std::function<void(ExtAuthzResult)> done) {
  struct Call {
    grpc::ClientContext context;
    v3::CheckRequest request;
    v3::CheckResponse response;
    std::unique_ptr<v3::Authorization::Stub> stub;
  };
  auto call = std::make_shared<Call>();
  call->stub = v3::Authorization::NewStub(ChannelFor(address));
  call->context.set_deadline(std::chrono::system_clock::now() + provider.timeout);
  v3::AttributeContext* attrs = call->request.mutable_attributes();
  if (parties.source_principal) {
    attrs->mutable_source()->set_principal(StrCat("spiffe://", *parties.source_principal));
  }
  if (parties.source_ip) {
    attrs->mutable_source()->mutable_address()->mutable_socket_address()->set_address(
        parties.source_ip->ToString());
  }
  auto* dst = attrs->mutable_destination()->mutable_address()->mutable_socket_address();
  dst->set_address(parties.destination.ip.ToString());
  dst->set_port_value(parties.destination.port);
  v3::AttributeContext::HttpRequest* http = attrs->mutable_request()->mutable_http();
  http->set_method(head.method);
  http->set_path(head.path);
  http->set_host(head.authority);
  http->set_scheme(head.scheme);
  http->set_protocol(parties.h2 ? "HTTP/2" : "HTTP/1.1");
  http->set_size(-1);
  auto& headers = *http->mutable_headers();
  headers[":authority"] = head.authority;
  headers[":method"] = head.method;
  headers[":path"] = head.path;
  for (const HttpHeader& h : head.headers) {
    std::string name = h.name;
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto [it, inserted] = headers.try_emplace(name, h.value);
    if (!inserted) it->second += StrCat(",", h.value);  // merged as HTTP allows
  }
  call->stub->async()->Check(
      &call->context, &call->request, &call->response,
      [call, executor, provider, done = std::move(done)](grpc::Status status) mutable {
        ExtAuthzResult r;
        if (!status.ok()) {
          r.allowed = provider.fail_open;
          r.status = provider.status_on_error;
          r.detail = StrCat("provider ", provider.name, ": gRPC ", static_cast<int>(status.error_code()),
                            " ", status.error_message(), provider.fail_open ? " (failOpen: allowed)" : "");
        } else if (call->response.status().code() == 0) {
          r.allowed = true;
          r.detail = StrCat("provider ", provider.name, " allowed");
          for (const auto& h : call->response.ok_response().headers()) {
            r.upstream_headers.push_back({h.header().key(), h.header().value()});
          }
        } else {
          const auto& denied = call->response.denied_response();
          r.allowed = false;
          r.status = denied.status().code() >= 100 && denied.status().code() <= 599
                         ? denied.status().code()
                         : 403;
          r.body = denied.body();
          for (const auto& h : denied.headers()) {
            r.downstream_headers.push_back({h.header().key(), h.header().value()});
          }
          r.detail = StrCat("provider ", provider.name, " denied (status ",
                            call->response.status().code(), " ", call->response.status().message(),
                            ")");
        }
        asio::post(executor, [done = std::move(done), r = std::move(r)]() mutable {
          done(std::move(r));
        });
      });
}

}  // namespace zm::waypoint
