// The waypoint's per-request decision: RequestAuthentication, path normalization, L7
// AuthorizationPolicy, over manifests as users write them.
#include "common/mesh/l7.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/base/strings.h"
#include "common/k8s/manifest.h"
#include "tests/common/jwt/jwt_test_util.h"
#include "tests/testutil/manifest_snapshot.h"

namespace zm::mesh {
namespace {

using jwt::HeaderEntry;
using jwt::RequestView;
using jwt::jwttest::Key;
namespace jwttest = jwt::jwttest;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

constexpr char kIss[] = "https://issuer.example";
constexpr char kAudIss[] = "https://aud.example";
constexpr char kRoot[] = "zmesh-system";

constexpr char kCluster[] = R"(
apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {zmesh.io/dataplane-mode: ambient, zmesh.io/use-waypoint: waypoint}}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: demo, labels: {app: server}}
spec: {serviceAccountName: web, nodeName: n1}
status: {podIP: 198.18.1.11, phase: Running}
---
apiVersion: v1
kind: Pod
metadata: {name: other, namespace: demo, labels: {app: other}}
spec: {serviceAccountName: other, nodeName: n1}
status: {podIP: 198.18.1.12, phase: Running}
---
apiVersion: v1
kind: Service
metadata: {name: server, namespace: demo}
spec: {selector: {app: server}, clusterIP: 198.19.0.10, ports: [{port: 80, targetPort: 8080}]}
)";

// Issuer kIss (RS256, kid k1) on the waypoint's Gateway, claim sub copied to x-jwt-sub;
// issuer kAudIss (ES256) with an audience, on the Service `server`.
std::string RequestAuthentications() {
  std::string jwks = jwttest::JwksJson({Key("RS256", "k1").Jwk()});
  std::string aud_jwks = jwttest::JwksJson({Key("ES256", "a1").Jwk()});
  return StrCat(R"(
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: demo}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}]
  jwtRules:
  - issuer: )",
                kIss, R"(
    jwks: ')", jwks, R"('
    outputClaimToHeaders: [{header: x-jwt-sub, claim: sub}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: aud, namespace: demo}
spec:
  targetRefs: [{kind: Service, name: server}]
  jwtRules:
  - issuer: )",
                kAudIss, R"(
    audiences: [api.example]
    jwks: ')", aud_jwks, R"('
)");
}

class L7Test : public ::testing::Test {
 protected:
  // Builds the snapshot and the waypoint's policies from the cluster, the RequestAuthentications
  // and `policies`.
  void Load(const std::string& policies, bool zero_trust = false, L7Options options = {},
            WaypointRef waypoint = {"demo", "waypoint"}) {
    auto parsed = k8s::ParseManifest(
        StrCat(kCluster, "---\n", RequestAuthentications(), "---\n", policies), "l7.yaml");
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    snapshot_ = BuildSnapshot(testutil::ManifestSnapshotOf(*parsed));
    snapshot_.default_policy = zero_trust ? DefaultPolicy::kZeroTrust : DefaultPolicy::kUpstream;
    policies_ = L7Policies::Build(snapshot_, kRoot, waypoint, provider_, clock_, options);
  }

  int64_t Now() const { return jwttest::Seconds(clock_); }
  std::string Token(nlohmann::json claims = {}) const {
    nlohmann::json c = {{"iss", kIss}, {"sub", "alice"}, {"exp", Now() + 600}};
    if (claims.is_object()) c.update(claims);
    return Key("RS256", "k1").Token(c);
  }
  static RequestView Get(std::string path, std::vector<HeaderEntry> headers = {}) {
    headers.push_back({"host", "server.demo"});
    return RequestView{"GET", std::move(path), std::move(headers)};
  }
  static HeaderEntry Bearer(const std::string& token) {
    return {"Authorization", "Bearer " + token};
  }
  L7Verdict Run(RequestView& http, const char* pod = "server",
                std::optional<std::string> principal = "cluster.local/ns/demo/sa/client") {
    const Workload* dst = snapshot_.FindWorkload("demo", pod);
    EXPECT_NE(dst, nullptr);
    L7Request req{.principal = std::move(principal),
                  .source_ip = *IpAddr::Parse("198.18.1.20"),
                  .destination = dst,
                  .destination_ip = dst->ips.front(),
                  .port = 8080,
                  .http = &http};
    return AuthorizeL7(snapshot_, *policies_, req, kRoot, /*want_trace=*/true);
  }
  L7Verdict Run(RequestView&& http, const char* pod = "server") { return Run(http, pod); }

  static void ExpectAuthn(const L7Verdict& v, int status, std::string_view body) {
    EXPECT_FALSE(v.allowed);
    EXPECT_EQ(v.status, status) << v.reason;
    EXPECT_EQ(v.body, body) << v.reason;
    EXPECT_EQ(v.decided_by, L7Verdict::DecidedBy::kRequestAuthentication);
    ASSERT_EQ(v.response_headers.size(), 1u);
    EXPECT_EQ(v.response_headers[0].first, "WWW-Authenticate");
    EXPECT_THAT(v.response_headers[0].second, HasSubstr("error=\"invalid_token\""));
  }
  static std::string Trace(const L7Verdict& v) {
    std::string out;
    for (const std::string& line : v.trace) out += "\n  " + line;
    return out;
  }
  static void ExpectRbacDeny(const L7Verdict& v) {
    EXPECT_FALSE(v.allowed) << Trace(v);
    EXPECT_EQ(v.status, 403) << v.reason;
    EXPECT_EQ(v.body, "RBAC: access denied");
    EXPECT_EQ(v.decided_by, L7Verdict::DecidedBy::kAuthorizationPolicy);
  }

  FakeClock clock_;
  JwksProvider provider_;
  Snapshot snapshot_;
  std::shared_ptr<const L7Policies> policies_;
};

constexpr char kDenyAdmin[] = R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: demo}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}]
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin", "/admin/*"]}}]}]
)";

// ---- Refused: authentication ------------------------------------------------------------------

TEST_F(L7Test, MissingTokenUnderZeroTrustIsDenied) {
  Load("", /*zero_trust=*/true);
  L7Verdict v = Run(Get("/api"));
  ExpectRbacDeny(v);
  EXPECT_THAT(v.reason, HasSubstr("no verified end-user JWT"));
  EXPECT_THAT(v.trace, testing::Contains(HasSubstr("no token presented")));
  // The same request with a valid token, from the destination's namespace, passes.
  v = Run(Get("/api", {Bearer(Token())}));
  EXPECT_TRUE(v.allowed) << v.reason;
  EXPECT_EQ(v.request_principal, StrCat(kIss, "/alice"));
}

TEST_F(L7Test, AlgNoneIs401) {
  Load("");
  nlohmann::json header = {{"alg", "none"}, {"typ", "JWT"}};
  nlohmann::json payload = {{"iss", kIss}, {"sub", "admin"}, {"exp", Now() + 600}};
  std::string token = jwttest::B64(header.dump()) + "." + jwttest::B64(payload.dump()) + ".";
  ExpectAuthn(Run(Get("/api", {Bearer(token)})), 401,
              "Jwt is not in the form of Header.Payload.Signature");
  // With a signature part that is not empty: the alg itself is refused.
  token += jwttest::B64("sig");
  ExpectAuthn(Run(Get("/api", {Bearer(token)})), 401, "Jwt header [alg] field value is invalid");
}

TEST_F(L7Test, ExpiredTokenIs401AndNamesTheRequestAuthentication) {
  Load("");
  L7Verdict v = Run(Get("/api", {Bearer(Token({{"exp", Now() - 61}}))}));
  ExpectAuthn(v, 401, "Jwt is expired");
  EXPECT_EQ(v.policy, "demo/jwt");
  EXPECT_EQ(v.rule, 0);
  EXPECT_THAT(v.reason, HasSubstr("RequestAuthentication demo/jwt jwtRules[0]"));
}

TEST_F(L7Test, WrongAudienceIs403) {
  Load("");
  std::string token = Key("ES256", "a1").Token(
      {{"iss", kAudIss}, {"sub", "bob"}, {"aud", "other.example"}, {"exp", Now() + 600}});
  L7Verdict v = Run(Get("/api", {Bearer(token)}));
  ExpectAuthn(v, 403, "Audiences in Jwt are not allowed");
  EXPECT_EQ(v.policy, "demo/aud");
  // The audience rule is attached to the Service `server`: for `other` its issuer is unknown.
  v = Run(Get("/api", {Bearer(token)}), "other");
  ExpectAuthn(v, 401, "Jwt issuer is not configured");
}

TEST_F(L7Test, InvalidTokenIs401WithWwwAuthenticate) {
  Load("");
  L7Verdict v = Run(Get("/api/x?access=1", {Bearer("garbage")}));
  ExpectAuthn(v, 401, "Jwt is not in the form of Header.Payload.Signature");
  EXPECT_EQ(v.response_headers[0].second,
            R"(Bearer realm="http://server.demo/api/x", error="invalid_token")");
  // A token signed by another key with the right kid.
  std::string forged = Key("RS256", "k1-attacker")
                           .Token({{"alg", "RS256"}, {"kid", "k1"}},
                                  {{"iss", kIss}, {"sub", "admin"}, {"exp", Now() + 600}});
  ExpectAuthn(Run(Get("/api", {Bearer(forged)})), 401, "Jwt verification fails");
}

TEST_F(L7Test, ARejectedRequestAuthenticationFailsClosed) {
  Load(R"(
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: broken, namespace: demo}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}]
  jwtRules: [{issuer: https://broken.example, jwksUri: "ftp://keys.example/jwks"}]
)");
  EXPECT_THAT(policies_->warnings(), testing::Contains(HasSubstr("demo/broken: rejected")));
  std::string token = Key("RS256", "k1").Token(
      {{"iss", "https://broken.example"}, {"sub", "x"}, {"exp", Now() + 600}});
  L7Verdict v = Run(Get("/api", {Bearer(token)}));
  ExpectAuthn(v, 401, "Jwks remote fetch is failed");
  EXPECT_EQ(v.policy, "demo/broken");
  EXPECT_THAT(v.reason, HasSubstr("was rejected"));
  // A token of a working rule still verifies; no token still passes.
  EXPECT_TRUE(Run(Get("/api", {Bearer(Token())})).allowed);
  EXPECT_TRUE(Run(Get("/api")).allowed);
}

TEST_F(L7Test, AJwksUriRuleAsksTheProviderOnce) {
  int calls = 0;
  auto source = jwt::StaticJwksSource::FromJson(jwttest::JwksJson({Key("EdDSA", "e1").Jwk()}));
  provider_ = [&](const jwt::JwtRuleSpec& spec) -> std::shared_ptr<const jwt::JwksSource> {
    ++calls;
    EXPECT_EQ(spec.jwks_uri, "https://keys.example/jwks");
    return source;
  };
  const char* remote = R"(
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: remote, namespace: demo}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}]
  jwtRules: [{issuer: https://remote.example, jwksUri: "https://keys.example/jwks"}]
)";
  Load(remote);
  EXPECT_EQ(calls, 1);
  std::string token = Key("EdDSA", "e1").Token(
      {{"iss", "https://remote.example"}, {"sub", "r"}, {"exp", Now() + 600}});
  EXPECT_TRUE(Run(Get("/api", {Bearer(token)})).allowed);
  // No provider: tokens of that rule fail, saying why.
  provider_ = nullptr;
  Load(remote);
  L7Verdict v = Run(Get("/api", {Bearer(token)}));
  ExpectAuthn(v, 401, "Jwks remote fetch is failed");
  EXPECT_THAT(v.reason, HasSubstr("no key source for jwksUri https://keys.example/jwks"));
}

// ---- Refused: authorization -------------------------------------------------------------------

TEST_F(L7Test, PolicyDenyIs403RbacAccessDenied) {
  Load(kDenyAdmin);
  L7Verdict v = Run(Get("/admin/users"));
  ExpectRbacDeny(v);
  EXPECT_EQ(v.policy, "demo/deny-admin");
  EXPECT_EQ(v.rule, 0);
  EXPECT_TRUE(Run(Get("/api")).allowed);
}

TEST_F(L7Test, DenyWinsOverAllow) {
  Load(StrCat(kDenyAdmin, R"(---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-all-paths, namespace: demo}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}]
  rules: [{to: [{operation: {paths: ["/*"]}}]}]
)"));
  L7Verdict v = Run(Get("/admin"));
  ExpectRbacDeny(v);
  EXPECT_EQ(v.policy, "demo/deny-admin");
  v = Run(Get("/api"));
  EXPECT_TRUE(v.allowed);
  EXPECT_EQ(v.policy, "demo/allow-all-paths");
}

TEST_F(L7Test, ClaimsAndRequestPrincipalsMatch) {
  Load(R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: admins, namespace: demo}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}]
  rules:
  - from: [{source: {requestPrincipals: ["https://issuer.example/*"]}}]
    when: [{key: "request.auth.claims[groups]", values: [admins]}]
)");
  EXPECT_TRUE(Run(Get("/api", {Bearer(Token({{"groups", {"users", "admins"}}}))})).allowed);
  ExpectRbacDeny(Run(Get("/api", {Bearer(Token({{"groups", {"users"}}}))})));
  ExpectRbacDeny(Run(Get("/api")));  // no token: no claims
}

TEST_F(L7Test, APolicyOnTheServiceAppliesOnlyToItsWorkloads) {
  Load(R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-delete, namespace: demo}
spec:
  targetRefs: [{kind: Service, name: server}]
  action: DENY
  rules: [{to: [{operation: {methods: [DELETE]}}]}]
)");
  RequestView del = Get("/x");
  del.method = "DELETE";
  RequestView del2 = del;
  ExpectRbacDeny(Run(del, "server"));
  EXPECT_TRUE(Run(del2, "other").allowed);
}

// ---- Refused: the request itself (400) and normalization ------------------------------------

TEST_F(L7Test, PathsAreNormalizedBeforePolicy) {
  Load(kDenyAdmin);
  RequestView dots = Get("/public/../admin?x=1");
  ExpectRbacDeny(Run(dots));
  EXPECT_EQ(dots.path, "/admin?x=1");  // what the backend would receive
  ExpectRbacDeny(Run(Get("/public/%2e%2e/admin")));
  ExpectRbacDeny(Run(Get("/public\\..\\admin")));
  ExpectRbacDeny(Run(Get("/%61dmin")));
  // BASE keeps "//": "//admin" is not "/admin" (Envoy's behaviour; use MERGE_SLASHES).
  EXPECT_TRUE(Run(Get("//admin")).allowed);
  Load(kDenyAdmin, false, {.path_normalization = authz::PathNormalization::kMergeSlashes});
  ExpectRbacDeny(Run(Get("//admin")));
  ExpectRbacDeny(Run(Get("///admin//users")));
}

TEST_F(L7Test, MalformedRequestsAre400BeforeAuthentication) {
  Load(kDenyAdmin);
  for (const char* path : {"/admin%00", "/a%zz", "/a#b", "relative"}) {
    L7Verdict v = Run(Get(path, {Bearer("garbage")}));
    EXPECT_FALSE(v.allowed) << path;
    EXPECT_EQ(v.status, 400) << path;
    EXPECT_EQ(v.decided_by, L7Verdict::DecidedBy::kBadRequest) << path;
  }
  RequestView lower = Get("/api");
  lower.method = "get";
  EXPECT_EQ(Run(lower).status, 400);
  EXPECT_EQ(Run(Get("/api", {{"x bad", "1"}})).status, 400);
}

// ---- Outputs ----------------------------------------------------------------------------------

TEST_F(L7Test, OutputHeadersCannotBeSpoofed) {
  Load("");
  RequestView spoofed = Get("/api", {{"x-jwt-sub", "admin"}});
  EXPECT_TRUE(Run(spoofed).allowed);
  EXPECT_FALSE(spoofed.HasHeader("x-jwt-sub"));  // removed, no token to fill it

  RequestView with_token = Get("/api", {{"X-JWT-Sub", "admin"}, Bearer(Token())});
  EXPECT_TRUE(Run(with_token).allowed);
  EXPECT_THAT(with_token.HeaderValues("x-jwt-sub"), ElementsAre("alice"));
  EXPECT_FALSE(with_token.HasHeader("authorization"));  // forwardOriginalToken: false
}

TEST_F(L7Test, OutputHeadersAreWhatPolicyMatches) {
  Load(R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: only-alice, namespace: demo}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}]
  rules: [{when: [{key: "request.headers[x-jwt-sub]", values: [alice]}]}]
)");
  ExpectRbacDeny(Run(Get("/api", {{"x-jwt-sub", "alice"}})));  // spoofed: removed first
  EXPECT_TRUE(Run(Get("/api", {Bearer(Token())})).allowed);
}

TEST_F(L7Test, TokensPassUnreadWhereNoRequestAuthenticationApplies) {
  Load("", false, {}, WaypointRef{"demo", "another-waypoint"});
  RequestView r = Get("/api", {Bearer("garbage")});
  L7Verdict v = Run(r, "other");
  EXPECT_TRUE(v.allowed) << v.reason;
  EXPECT_TRUE(r.HasHeader("authorization"));
  EXPECT_THAT(v.trace, testing::Contains(HasSubstr("RequestAuthentication: none attached")));
}

TEST_F(L7Test, AuditAndCustomAreReportedToTheCaller) {
  Load(R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit, namespace: demo}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}]
  action: AUDIT
  rules: [{to: [{operation: {methods: [GET]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: demo}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}]
  action: CUSTOM
  provider: {name: opa}
  rules: [{to: [{operation: {paths: ["/ext*"]}}]}]
)");
  L7Verdict v = Run(Get("/ext/1"));
  EXPECT_TRUE(v.allowed);
  EXPECT_THAT(v.audit, ElementsAre("demo/audit"));
  EXPECT_THAT(v.custom_providers, ElementsAre("opa"));
  v = Run(Get("/api"));
  EXPECT_THAT(v.custom_providers, IsEmpty());
}

TEST_F(L7Test, WaypointPrincipalFollowsTheGatewayName) {
  EXPECT_EQ(WaypointPrincipal({"demo", "waypoint"}), "cluster.local/ns/demo/sa/waypoint");
}

}  // namespace
}  // namespace zm::mesh
