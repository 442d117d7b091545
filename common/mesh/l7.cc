// AuthorizeL7: the waypoint's per-request decision (see l7.h).
#include "common/mesh/l7.h"

#include <algorithm>

#include "absl/strings/str_join.h"
#include "common/base/strings.h"
#include "common/jwt/claims.h"

namespace zm::mesh {
namespace {

// RFC 9110 token characters without lower-case letters (the proxy refuses those, §2.4).
bool IsUpperToken(std::string_view method) {
  return !method.empty() && std::all_of(method.begin(), method.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

bool IsHeaderName(std::string_view name) {
  if (name.empty()) return false;
  std::string_view rest = name.front() == ':' ? name.substr(1) : name;  // HTTP/2 pseudo-headers
  return !rest.empty() && std::all_of(rest.begin(), rest.end(), [](char c) {
    return c > 0x20 && c < 0x7f && std::string_view("\"(),/:;<=>?@[\\]{}").find(c) ==
                                       std::string_view::npos;
  });
}

std::string FirstHeader(const jwt::RequestView& http, std::string_view name) {
  auto values = http.HeaderValues(name);
  return values.empty() ? std::string() : std::string(values.front());
}

L7Verdict BadRequest(std::string reason) {
  L7Verdict v;
  v.allowed = false;
  v.status = 400;
  v.body = "Bad Request";
  v.decided_by = L7Verdict::DecidedBy::kBadRequest;
  v.reason = std::move(reason);
  return v;
}

authz::JwtIdentity IdentityOf(const jwt::RequestIdentity& id) {
  authz::JwtIdentity j;
  j.issuer = id.jwt.issuer;
  j.subject = id.jwt.subject;
  j.audiences = id.jwt.audiences;
  if (!id.jwt.presenter.empty()) j.presenter = id.jwt.presenter;
  j.claim = [&id](std::span<const std::string> path) {
    return jwt::ClaimValues(id.jwt.claims, std::vector<std::string>(path.begin(), path.end()),
                            id.space_delimited_claims);
  };
  return j;
}

}  // namespace

L7Verdict AuthorizeL7(const Snapshot& snapshot, const L7Policies& policies,
                      const L7Request& request, std::string_view root_namespace,
                      bool want_trace) {
  (void)snapshot;
  (void)root_namespace;
  if (request.http == nullptr) return BadRequest("no HTTP request to authorize");
  jwt::RequestView& http = *request.http;
  const WaypointRef& wp = policies.waypoint();

  // 1. The request as the connection manager accepts it.
  if (!IsUpperToken(http.method)) {
    return BadRequest(StrCat("method \"", http.method.substr(0, 32),
                             "\" is not an upper-case HTTP token"));
  }
  for (const jwt::HeaderEntry& h : http.headers) {
    if (!IsHeaderName(h.name)) {
      return BadRequest(StrCat("header name \"", h.name.substr(0, 64), "\" is not a token"));
    }
  }
  const authz::PathNormalization mode = policies.options().path_normalization;
  auto normalized = authz::NormalizePath(http.path, mode);
  if (!normalized.ok()) return BadRequest(std::string(normalized.status().message()));
  L7Verdict v;
  if (want_trace) {
    v.trace.push_back(StrCat("waypoint ", wp.ns, "/", wp.name, ": ", http.method, " ", http.path,
                             *normalized == http.path
                                 ? std::string()
                                 : StrCat(" normalized to ", *normalized, " (",
                                          authz::PathNormalizationName(mode), ")")));
  }
  http.path = *std::move(normalized);

  // 2. RequestAuthentication.
  const L7Policies::Destination& dest = policies.For(request.destination);
  std::optional<jwt::AuthnResult> authn;
  if (dest.authenticator == nullptr) {
    if (want_trace) {
      v.trace.push_back(
          "RequestAuthentication: none attached to this waypoint or the destination's Services; "
          "tokens are not read");
    }
  } else {
    authn = dest.authenticator->Authenticate(http);
    auto origin = [&](std::optional<size_t> rule) -> const std::pair<std::string,
                                                                      std::optional<int>>* {
      return rule && *rule < dest.rule_origin.size() ? &dest.rule_origin[*rule] : nullptr;
    };
    if (!authn->ok) {
      v.allowed = false;
      v.status = authn->http_status;
      v.body = authn->reason;
      v.decided_by = L7Verdict::DecidedBy::kRequestAuthentication;
      if (const auto* o = origin(authn->rule)) {
        v.policy = o->first;
        v.rule = o->second;
      }
      v.reason = StrCat(authn->reason, " (", authn->detail, ")");
      const std::string scheme = FirstHeader(http, ":scheme");
      std::string authority = FirstHeader(http, ":authority");
      if (authority.empty()) authority = FirstHeader(http, "host");
      v.response_headers.emplace_back(
          "WWW-Authenticate",
          jwt::WwwAuthenticate(scheme.empty() ? "http" : scheme, authority, http.path));
      if (want_trace) {
        v.trace.push_back(StrCat("RequestAuthentication (", absl::StrJoin(dest.request_authentications, ", "),
                                 "): ", v.status, " ", v.reason));
      }
      return v;
    }
    if (want_trace) {
      std::string line = StrCat("RequestAuthentication (", absl::StrJoin(dest.request_authentications, ", "),
                                "): ");
      if (authn->identity) {
        const auto* o = origin(authn->rule);
        line += StrCat("token verified",
                       o ? StrCat(" by ", o->first,
                                  o->second ? StrCat(" jwtRules[", *o->second, "]") : "")
                         : std::string(),
                       ", issuer \"", authn->identity->jwt.issuer, "\", subject \"",
                       authn->identity->jwt.subject, "\"");
      } else {
        line += "no token presented: the request goes on without an end-user identity";
      }
      v.trace.push_back(std::move(line));
    }
  }

  // 3. AuthorizationPolicy at L7.
  std::optional<authz::JwtIdentity> identity;
  if (authn && authn->identity) {
    identity = IdentityOf(*authn->identity);
    v.request_principal = authn->identity->jwt.principal;
  }
  authz::HttpRequest attrs_http;
  attrs_http.method = http.method;
  attrs_http.path = std::string(authz::PathWithoutQuery(http.path));
  attrs_http.host = FirstHeader(http, ":authority");
  if (attrs_http.host.empty()) attrs_http.host = FirstHeader(http, "host");
  for (const jwt::HeaderEntry& h : http.headers) {
    if (h.name.starts_with(':')) continue;
    attrs_http.headers.emplace_back(h.name, h.value);
  }
  authz::Attributes attrs{.principal = request.principal,
                          .source_ip = request.source_ip,
                          .destination_ip = request.destination_ip,
                          .destination_port = request.port,
                          .http = &attrs_http,
                          .jwt = identity ? &*identity : nullptr};
  const std::string dest_ns = request.destination ? request.destination->ns : wp.ns;
  authz::Decision d = policies.policy_set().Evaluate(dest.policies, dest_ns, attrs, want_trace);
  v.allowed = d.allowed;
  v.status = d.allowed ? 200 : 403;
  v.body = d.allowed ? std::string() : std::string(kRbacDeniedBody);
  v.decided_by = L7Verdict::DecidedBy::kAuthorizationPolicy;
  v.policy = std::move(d.policy);
  v.rule = d.rule;
  v.reason = std::move(d.reason);
  v.audit = std::move(d.audit);
  v.custom_providers = std::move(d.custom_providers);
  v.dry_run = std::move(d.dry_run);
  if (want_trace) {
    if (dest.policies.empty()) v.trace.push_back("policy: no AuthorizationPolicy attached");
    for (std::string& line : d.trace) v.trace.push_back(StrCat("policy: ", line));
  }
  return v;
}

}  // namespace zm::mesh
