#include "waypoint/filter.h"

#include <algorithm>
#include <nlohmann/json.hpp>

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
    // One JSON object per matching AUDIT policy (escaped: paths and names are the client's).
    nlohmann::ordered_json line = {{"policy", a},           {"src", src},
                                   {"dst", dst},            {"method", head.method},
                                   {"path", head.path},     {"allowed", v.allowed},
                                   {"request_principal", v.request_principal}};
    Log("audit").info("{}", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  if (v.decided_by == mesh::L7Verdict::DecidedBy::kAuthorizationPolicy &&
      !v.custom_providers.empty()) {
    // policy-semantics §2.8 step 1: the CUSTOM provider first; its deny is the answer, its
    // allow does not bypass DENY and ALLOW.
    const std::string& name = v.custom_providers.front();
    auto provider = std::find_if(providers_.begin(), providers_.end(),
                                 [&](const ExtAuthzProvider& p) { return p.name == name; });
    auto deny = [&](const std::string& why) {
      metrics_.CountDenial("custom");
      Log("waypoint").warn(
          "result=policy-denied src={} dst={} method={} path={} status=403 policy={} hop=waypoint "
          "reason=\"CUSTOM provider {}: {} (fail closed)\"",
          src, dst, head.method, head.path,
          "-", name, why);
      done(Local(403, "RBAC: access denied"));
    };
    if (provider == providers_.end()) return deny("not defined in --mesh-config");
    auto address = ResolveProvider(*provider, *view->snapshot);
    if (!address.ok() && !provider->fail_open) return deny(std::string(address.status().message()));
    auto finish = [this, &head, v, done, src, dst](ExtAuthzResult r) mutable {
      if (!r.allowed) {
        metrics_.CountDenial("custom");
        Log("waypoint").info(
            "result=policy-denied src={} dst={} method={} path={} status={} hop=waypoint "
            "reason=\"CUSTOM: {}\"",
            src, dst, head.method, head.path, r.status, r.detail);
        Decision d = Local(r.status, r.body);
        d.response_headers = std::move(r.downstream_headers);
        return done(std::move(d));
      }
      for (HttpHeader& h : r.upstream_headers) head.Set(h.name, h.value);
      Finish(head, v, std::move(done));
    };
    if (!address.ok()) {  // failOpen and nowhere to ask
      return finish(ExtAuthzResult{.allowed = true,
                                   .detail = std::string(address.status().message())});
    }
    if (provider->kind == ExtAuthzProvider::Kind::kGrpc) {
      grpc_.Check(executor_, *provider, *address, head,
                  CheckParties{.source_principal = context_.principal,
                               .source_ip = context_.source_ip,
                               .destination = context_.target,
                               .h2 = head.h2},
                  std::move(finish));
    } else {
      CheckHttp(executor_, *provider, *address, head, std::move(finish));
    }
    return;
  }
  Finish(head, v, std::move(done));
}

void L7Filter::Finish(RequestHead& head, const mesh::L7Verdict& v,
                      std::function<void(Decision)> done) {
  if (v.allowed) {
    done(Decision{});
    return;
  }
  const std::string dst = context_.target.ToString();
  const std::string src = context_.principal.value_or("-");
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
