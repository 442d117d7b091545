#include "cli/explain_l7.h"

#include <charconv>
#include <fstream>
#include <sstream>

#include "common/base/strings.h"
#include "common/jwt/jwks.h"
#include "common/mesh/authorization.h"
#include "common/mesh/l7.h"

namespace zm::cli {
namespace {

constexpr std::string_view kUseWaypoint = "zmesh.io/use-waypoint";

absl::Status Bad(std::string_view message) {
  return absl::InvalidArgumentError(std::string(message));
}

// The value of `key` in labels, else in annotations.
std::optional<std::string> Find(const std::map<std::string, std::string>& labels,
                                const std::map<std::string, std::string>* annotations) {
  if (auto it = labels.find(std::string(kUseWaypoint)); it != labels.end()) return it->second;
  if (annotations) {
    if (auto it = annotations->find(std::string(kUseWaypoint)); it != annotations->end()) {
      return it->second;
    }
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<L7Inputs> ReadL7Inputs(const ExplainOptions& o, const mesh::Snapshot& snapshot,
                                      const mesh::Workload& dst) {
  L7Inputs in;
  std::string name;
  if (o.via_waypoint) {
    name = *o.via_waypoint;
    in.waypoint_source = "--via-waypoint";
  } else if (auto v = Find(dst.labels, &dst.annotations)) {
    name = *v;
    in.waypoint_source = StrCat("pod ", dst.key(), " ", kUseWaypoint);
  } else if (const mesh::Namespace* ns = snapshot.FindNamespace(dst.ns);
             ns != nullptr && Find(ns->labels, nullptr)) {
    name = *Find(ns->labels, nullptr);
    in.waypoint_source = StrCat("namespace ", dst.ns, " ", kUseWaypoint);
  } else {
    return Bad(StrCat("--layer l7: ", dst.key(), " has no waypoint (no ", kUseWaypoint,
                      " on the pod or its namespace); name one with --via-waypoint NAME"));
  }
  const size_t slash = name.find('/');
  in.waypoint_ns = slash == std::string::npos ? dst.ns : name.substr(0, slash);
  in.waypoint_name = slash == std::string::npos ? name : name.substr(slash + 1);
  if (in.waypoint_ns.empty() || in.waypoint_name.empty() ||
      in.waypoint_name.find('/') != std::string::npos) {
    return Bad(StrCat("waypoint \"", name, "\" (", in.waypoint_source,
                      "): want NAME or NAMESPACE/NAME"));
  }

  if (o.now) {
    int64_t seconds = 0;
    const std::string& t = *o.now;
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), seconds);
    if (ec != std::errc() || end != t.data() + t.size() || seconds < 0) {
      return Bad(StrCat("--now \"", t, "\": want UNIX seconds (a non-negative integer)"));
    }
    in.now = std::make_unique<FakeClock>(
        std::chrono::system_clock::time_point(std::chrono::seconds(seconds)));
  }
  for (const std::string& spec : o.jwks_files) {
    const size_t eq = spec.rfind('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      return Bad(StrCat("--jwks \"", spec, "\": want ISSUER_OR_URI=FILE"));
    }
    const std::string file = spec.substr(eq + 1);
    std::ifstream f(file);
    if (!f) return Bad(StrCat("--jwks ", spec, ": cannot read ", file));
    std::stringstream text;
    text << f.rdbuf();
    if (auto parsed = jwt::Jwks::Parse(text.str()); !parsed.ok()) {
      return Bad(StrCat("--jwks ", spec, ": ", file, ": ", parsed.status().message()));
    }
    in.jwks[spec.substr(0, eq)] = text.str();
  }
  if (o.method && o.method->empty()) return Bad("--method: empty");
  if (o.path && o.path->empty()) return Bad("--path: empty");
  return in;
}

void ExplainL7(const ExplainOptions& o, const mesh::Snapshot& snapshot,
               const authz::PolicySet& l4_policies, const mesh::Workload& dst,
               std::optional<std::string> principal, std::optional<IpAddr> from_ip,
               const L7Inputs& in, ExplainResult& r) {
  const mesh::WaypointRef wp{in.waypoint_ns, in.waypoint_name};
  // jwksUri cannot be fetched offline: --jwks supplies the set by URI or issuer.
  mesh::JwksProvider provider =
      [&in](const jwt::JwtRuleSpec& rule) -> std::shared_ptr<const jwt::JwksSource> {
    for (const std::string& key : {rule.jwks_uri, rule.issuer}) {
      if (auto it = in.jwks.find(key); !key.empty() && it != in.jwks.end()) {
        return jwt::StaticJwksSource::FromJson(it->second);
      }
    }
    return std::make_shared<jwt::StaticJwksSource>(absl::UnavailableError(
        StrCat("jwksUri ", rule.jwks_uri, " is not fetched offline; give its key set with --jwks ",
               rule.issuer.empty() ? rule.jwks_uri : rule.issuer, "=FILE")));
  };
  const Clock& clock = in.now ? static_cast<const Clock&>(*in.now) : SystemClock::Get();
  auto policies = mesh::L7Policies::Build(snapshot, o.root_namespace, wp, provider, clock);
  for (const std::string& w : policies->warnings()) r.warnings.push_back(w);

  jwt::RequestView http{o.method.value_or("GET"), o.path.value_or("/"), {}};
  if (o.host) http.headers.push_back({"host", *o.host});
  for (const std::string& h : o.headers) {
    const size_t eq = h.find('=');
    http.headers.push_back({h.substr(0, eq), h.substr(eq + 1)});
  }
  if (o.jwt) http.headers.push_back({"authorization", StrCat("Bearer ", *o.jwt)});

  r.hop = "waypoint";
  r.trace.push_back(StrCat("waypoint ", wp.ns, "/", wp.name, " (from ", in.waypoint_source,
                           "); source ", principal ? *principal : "plaintext (no identity)",
                           in.now ? StrCat("; time ", *o.now) : std::string()));
  mesh::L7Request req{
      .principal = principal,
      .source_ip = from_ip,
      .destination = &dst,
      .destination_ip = dst.ips.empty() ? std::nullopt : std::optional<IpAddr>(dst.ips.front()),
      .port = static_cast<uint16_t>(o.port),
      .http = &http};
  mesh::L7Verdict v = mesh::AuthorizeL7(snapshot, *policies, req, o.root_namespace, true);
  r.allowed = v.allowed;
  r.status = v.status;
  r.policy = v.policy.empty() ? std::nullopt : std::optional<std::string>(v.policy);
  r.rule = v.rule;
  r.reason = v.reason;
  for (std::string& line : v.trace) r.trace.push_back(std::move(line));
  for (std::string& line : v.dry_run) r.trace.push_back(std::move(line));
  for (const std::string& p : v.custom_providers) {
    r.trace.push_back(StrCat("CUSTOM provider ", p, " would be asked (not offline)"));
  }
  if (!v.allowed) return;

  // The next hop: the destination's node tunnel, the waypoint's identity as the source.
  for (const std::string& w : l4_policies.warnings()) {
    r.warnings.push_back(StrCat("AuthorizationPolicy ", w));
  }
  const std::string wp_principal = mesh::WaypointPrincipal(wp, o.trust_domain);
  mesh::L4Request l4{.principal = wp_principal,
                     .destination_ip = req.destination_ip,
                     .port = req.port,
                     .tunneled = true};
  mesh::L4Verdict l4v =
      mesh::AuthorizeL4(snapshot, l4_policies, dst, l4, o.root_namespace, /*want_trace=*/true);
  r.trace.push_back(StrCat("then ztunnel of ", dst.key(), ", source ", wp_principal,
                           " (the waypoint) over HBONE:"));
  for (std::string& line : l4v.trace) r.trace.push_back(StrCat("  ", line));
  if (l4v.allowed) return;
  r.allowed = false;
  r.hop = "ztunnel";
  r.status = 503;  // the waypoint's upstream connection is refused
  r.policy = l4v.policy.empty() ? std::nullopt : std::optional<std::string>(l4v.policy);
  r.rule = l4v.rule;
  r.reason = StrCat("the waypoint allowed the request, but the destination's ztunnel refuses the "
                    "waypoint's connection: ",
                    l4v.reason, " (allow ", wp_principal, " there)");
}

}  // namespace zm::cli
