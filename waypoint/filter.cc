#include "waypoint/filter.h"

#include "common/base/log.h"
#include "common/base/strings.h"
#include "common/jwt/extract.h"

namespace zm::waypoint {
namespace {

Decision Local(int status, std::string body) {
  Decision d;
  d.forward = false;
  d.status = status;
  d.body = std::move(body);
  return d;
}

}  // namespace

void L7Filter::Decide(RequestHead& head, std::function<void(Decision)> done) {
  auto view = config_.Current();
  const std::string dst = context_.target.ToString();
  const std::string src = context_.principal.value_or("-");
  if (!view) {
    done(Local(503, "no mesh configuration yet"));
    return;
  }
  const mesh::Workload* workload = view->snapshot->FindWorkloadByIp(context_.target.ip);
  // The request as the JWT and policy code read and edit it; Host is a header there.
  jwt::RequestView request{.method = head.method, .path = head.path, .headers = {}};
  request.headers.reserve(head.headers.size() + 1);
  request.headers.push_back({.name = "host", .value = head.authority});
  for (HttpHeader& h : head.headers) {
    request.headers.push_back({.name = std::move(h.name), .value = std::move(h.value)});
  }
  mesh::L7Request r{.principal = context_.principal,
                    .source_ip = context_.source_ip,
                    .destination = workload,
                    .destination_ip = context_.target.ip,
                    .port = context_.target.port,
                    .http = &request};
  mesh::L7Verdict v = mesh::AuthorizeL7(*view->snapshot, *view->policies, r, config_.root_namespace());
  // What is forwarded is what the filter chain left: tokens removed, output headers, the
  // normalized path.
  head.path = std::move(request.path);
  head.headers.clear();
  for (jwt::HeaderEntry& h : request.headers) {
    if (jwt::HeaderNameEquals(h.name, "host")) {
      head.authority = std::move(h.value);
      continue;
    }
    head.headers.push_back({.name = std::move(h.name), .value = std::move(h.value)});
  }
  for (const std::string& a : v.audit) {
    Log("audit").info(
        R"({{"policy":"{}","src":"{}","dst":"{}","method":"{}","path":"{}","allowed":{}}})", a,
        src, dst, head.method, head.path, v.allowed ? "true" : "false");
  }
  if (v.allowed && !v.custom_providers.empty()) {
    // CUSTOM providers are not wired to an external authorizer in this build: a request a
    // CUSTOM policy selects is denied rather than let through unchecked.
    metrics_.CountDenial("custom");
    Log("waypoint").warn(
        "result=policy-denied src={} dst={} method={} path={} hop=waypoint reason=\"CUSTOM "
        "provider {} is not configured (fail closed)\"",
        src, dst, head.method, head.path, v.custom_providers.front());
    done(Local(403, "RBAC: access denied"));
    return;
  }
  if (v.allowed) {
    done(Decision{});
    return;
  }
  const bool authn = v.decided_by == mesh::L7Verdict::DecidedBy::kRequestAuthentication;
  metrics_.CountDenial(authn ? "authn" : (v.status == 400 ? "bad-request" : "policy"));
  Log("waypoint").info(
      "result={} src={} dst={} method={} path={} status={} policy={} rule={} hop=waypoint "
      "reason=\"{}\"",
      authn ? "jwt-denied" : "policy-denied", src, dst, head.method, head.path, v.status,
      v.policy.empty() ? "-" : v.policy, v.rule ? StrCat(*v.rule) : "-", v.reason);
  Decision d = Local(v.status, v.body);
  for (auto& [name, value] : v.response_headers) d.response_headers.push_back({name, value});
  done(std::move(d));
}

}  // namespace zm::waypoint
