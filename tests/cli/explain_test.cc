// zmeshctl explain: the function and the binary (exit codes, the JSON object scripts read).
#include "cli/explain.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/base/strings.h"
#include "tests/common/jwt/jwt_test_util.h"

namespace zm::cli {
namespace {

using ::testing::HasSubstr;

constexpr char kCluster[] = R"(
apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {zmesh.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Namespace
metadata: {name: other, labels: {zmesh.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Namespace
metadata: {name: legacy}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: demo, labels: {app: server}}
spec: {serviceAccountName: web, nodeName: n1}
status: {podIP: 198.18.1.11, phase: Running}
---
apiVersion: v1
kind: Pod
metadata: {name: old, namespace: legacy}
spec: {nodeName: n1}
status: {podIP: 198.18.1.20, phase: Running}
)";

constexpr char kPolicies[] = R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-demo, namespace: demo}
spec:
  selector: {matchLabels: {app: server}}
  rules:
  - from: [{source: {namespaces: [demo]}}]
  - from: [{source: {principals: [cluster.local/ns/other/sa/trusted]}}]
    to: [{operation: {ports: ["8080"]}}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: demo}
spec: {mtls: {mode: STRICT}}
)";

// `base` changed by `mutate` is bad input: InvalidArgument saying `says`.
template <typename Mutate>
void ExpectBadInput(ExplainOptions o, Mutate mutate, const char* says) {
  mutate(o);
  auto r = Explain(o);
  ASSERT_FALSE(r.ok()) << says;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(says));
}

class ExplainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/zmesh-explain-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    std::filesystem::create_directories(dir_ + "/cluster");
    Write(dir_ + "/cluster/cluster.yaml", kCluster);
    Write(dir_ + "/policies.yaml", kPolicies);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  static void Write(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
  }
  ExplainOptions Base() {
    ExplainOptions o;
    o.manifests = {dir_ + "/cluster", dir_ + "/policies.yaml"};
    o.to = "demo/server";
    o.port = 8080;
    return o;
  }
  std::string dir_;
};

TEST_F(ExplainTest, AllowedByAnAllowRule) {
  ExplainOptions o = Base();
  o.from_principal = "cluster.local/ns/demo/sa/client";
  auto r = Explain(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->allowed);
  EXPECT_EQ(r->policy, "demo/allow-demo");
  EXPECT_EQ(r->rule, 0);
  EXPECT_EQ(ExplainJson(*r).dump(),
            R"({"decision":"allow","status":null,"hop":"ztunnel","policy":"demo/allow-demo",)"
            R"("rule":0,"reason":"allowed by ALLOW policy demo/allow-demo rule 0"})");
}

TEST_F(ExplainTest, SecondRuleAndItsPort) {
  ExplainOptions o = Base();
  o.from_principal = "spiffe://cluster.local/ns/other/sa/trusted";  // the scheme is accepted
  auto r = Explain(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->allowed);
  EXPECT_EQ(r->rule, 1);
  o.port = 9090;
  r = Explain(o);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->allowed);
  EXPECT_EQ(r->policy, std::nullopt);
  EXPECT_EQ(r->rule, std::nullopt);
  EXPECT_THAT(r->reason, HasSubstr("ALLOW policies apply (demo/allow-demo) but none matches"));
}

TEST_F(ExplainTest, PlaintextToStrictIsDeniedByPeerAuthentication) {
  ExplainOptions o = Base();
  o.plaintext = true;
  auto r = Explain(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->allowed);
  EXPECT_EQ(r->policy, "demo/strict");
  EXPECT_THAT(r->reason, HasSubstr("plaintext to port 8080 but mTLS is STRICT"));
  EXPECT_EQ(r->hop, "ztunnel");
  EXPECT_EQ(r->status, std::nullopt);
}

TEST_F(ExplainTest, ZeroTrustDefault) {
  Write(dir_ + "/policies.yaml", "");
  ExplainOptions o = Base();
  o.default_policy = "zero-trust";
  o.from_principal = "cluster.local/ns/other/sa/x";
  auto r = Explain(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->allowed);
  EXPECT_THAT(r->reason,
              HasSubstr("zero-trust default admits only the destination's namespace demo"));
  o.from_principal = "cluster.local/ns/demo/sa/x";
  r = Explain(o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->allowed);
}

TEST_F(ExplainTest, ADestinationOutsideTheMeshIsNotEnforced) {
  ExplainOptions o = Base();
  o.to = "legacy/old";
  auto r = Explain(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->allowed);
  EXPECT_THAT(r->reason, HasSubstr("not in the mesh"));
}

TEST_F(ExplainTest, AnotherTrustDomainFailsAtMutualTls) {
  ExplainOptions o = Base();
  o.from_principal = "evil.example/ns/demo/sa/client";
  auto r = Explain(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->allowed);
  EXPECT_THAT(r->reason, HasSubstr("trust domain evil.example"));
}

TEST_F(ExplainTest, TheTableNamesTheDecisionTraceAndWarnings) {
  Write(dir_ + "/more.yaml", R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-post, namespace: demo}
spec: {action: DENY, rules: [{to: [{operation: {methods: [POST]}}]}]}
)");
  ExplainOptions o = Base();
  o.manifests.push_back(dir_ + "/more.yaml");
  o.from_principal = "cluster.local/ns/demo/sa/client";
  auto r = Explain(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->allowed);
  std::string table = RenderExplain(*r);
  EXPECT_THAT(table, HasSubstr("DECISION"));
  EXPECT_THAT(table, HasSubstr("deny"));
  EXPECT_THAT(table, HasSubstr("demo/no-post"));
  EXPECT_THAT(table, HasSubstr("DENY demo/no-post: rule 0 matches"));
  EXPECT_THAT(table, HasSubstr("enforced at L4 as a broader deny"));
}

TEST_F(ExplainTest, BadInputIsAnError) {
  auto bad = [&](auto mutate, const char* says) { ExpectBadInput(Base(), mutate, says); };
  bad([](ExplainOptions& o) { o.to = "demo/nope"; }, "no such Pod");
  bad([](ExplainOptions& o) { o.to = "server"; }, "want NAMESPACE/POD");
  bad([](ExplainOptions& o) { o.port = 0; }, "not a port");
  bad([](ExplainOptions& o) { o.from_principal = "bob"; }, "not a workload identity");
  bad([](ExplainOptions& o) { o.from_ip = "1.2.3"; }, "--from-ip");
  bad([](ExplainOptions& o) { o.layer = "l7"; }, "has no waypoint");
  bad([](ExplainOptions& o) { o.layer = "l3"; }, "want l4 or l7");
  bad([](ExplainOptions& o) { o.via_waypoint = "wp"; }, "--via-waypoint needs --layer l7");
  bad([&](ExplainOptions& o) { o.manifests = {dir_ + "/missing.yaml"}; }, "missing.yaml");
  bad(
      [](ExplainOptions& o) {
        o.plaintext = true;
        o.from_principal = "cluster.local/ns/a/sa/b";
      },
      "exclude each other");
  bad([](ExplainOptions& o) { o.headers = {"novalue"}; }, "NAME=VALUE");
}

// ---- --layer l7: the waypoint (mesh::AuthorizeL7), then the destination's ztunnel ---------

constexpr char kIss[] = "https://issuer.example";
constexpr int64_t kExp = 2'000'000'000;

std::string L7Manifests() {
  std::string jwks = jwt::jwttest::JwksJson({jwt::jwttest::Key("RS256", "k1").Jwk()});
  return StrCat(R"(
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: demo}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}]
  jwtRules:
  - issuer: https://issuer.example
    jwks: ')", jwks, R"('
  - issuer: https://remote.example
    jwksUri: https://keys.remote.example/jwks
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: demo}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}]
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
)");
}

std::string Token(const char* iss = kIss, const char* kid = "k1") {
  return jwt::jwttest::Key(iss == std::string(kIss) ? "RS256" : "ES256", kid)
      .Token({{"iss", iss}, {"sub", "alice"}, {"exp", kExp}});
}

class ExplainL7Test : public ExplainTest {
 protected:
  void SetUp() override {
    ExplainTest::SetUp();
    Write(dir_ + "/l7.yaml", L7Manifests());
  }
  ExplainOptions L7() {
    ExplainOptions o = Base();
    o.manifests.push_back(dir_ + "/l7.yaml");
    o.layer = "l7";
    o.via_waypoint = "waypoint";
    o.from_principal = "cluster.local/ns/demo/sa/client";
    o.now = std::to_string(kExp - 600);
    return o;
  }
};

TEST_F(ExplainL7Test, ABadTokenIs401AtTheWaypoint) {
  ExplainOptions o = L7();
  o.jwt = "garbage";
  auto r = Explain(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->allowed);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(r->hop, "waypoint");
  EXPECT_THAT(r->reason, HasSubstr("Jwt is not in the form of Header.Payload.Signature"));
}

TEST_F(ExplainL7Test, NowMakesATokenExpired) {
  ExplainOptions o = L7();
  o.jwt = Token();
  o.now = std::to_string(kExp + 61);
  auto r = Explain(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(r->policy, "demo/jwt");
  EXPECT_EQ(r->rule, 0);
  EXPECT_THAT(r->reason, HasSubstr("Jwt is expired"));
  o.now = std::to_string(kExp + 59);  // within the 60 s skew
  r = Explain(o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->reason;
}

TEST_F(ExplainL7Test, ADeniedPathIs403) {
  ExplainOptions o = L7();
  o.jwt = Token();
  o.path = "/public/../admin";
  auto r = Explain(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->allowed);
  EXPECT_EQ(r->status, 403);
  EXPECT_EQ(r->policy, "demo/deny-admin");
  EXPECT_EQ(r->rule, 0);
  EXPECT_THAT(RenderExplain(*r), HasSubstr("normalized to /admin"));
  o.path = "/admin%00";
  r = Explain(o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
}

TEST_F(ExplainL7Test, AJwksUriRuleNeedsItsKeySetFromAFile) {
  ExplainOptions o = L7();
  o.jwt = Token("https://remote.example", "r1");
  auto r = Explain(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 401);
  EXPECT_THAT(r->reason, HasSubstr("not fetched offline; give its key set with --jwks "
                                   "https://remote.example=FILE"));
  Write(dir_ + "/remote.json",
        jwt::jwttest::JwksJson({jwt::jwttest::Key("ES256", "r1").Jwk()}));
  o.jwks_files = {"https://remote.example=" + dir_ + "/remote.json"};
  r = Explain(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200) << r->reason;
  o.jwks_files = {"https://keys.remote.example/jwks=" + dir_ + "/remote.json"};  // by URI
  r = Explain(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200) << r->reason;
}

TEST_F(ExplainL7Test, AllowedWithAGoodTokenThenTheZtunnelSeesTheWaypoint) {
  ExplainOptions o = L7();
  o.jwt = Token();
  o.path = "/api";
  auto r = Explain(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->allowed) << r->reason;
  EXPECT_EQ(r->hop, "waypoint");
  EXPECT_EQ(ExplainJson(*r)["status"], 200);
  std::string table = RenderExplain(*r);
  EXPECT_THAT(table, HasSubstr("token verified by demo/jwt jwtRules[0]"));
  EXPECT_THAT(table, HasSubstr("then ztunnel of demo/server, source cluster.local/ns/demo/sa/waypoint"));

  // A node-tunnel policy that refuses the waypoint: the request fails at the next hop.
  Write(dir_ + "/no-waypoint.yaml", R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-waypoint, namespace: demo}
spec:
  action: DENY
  rules: [{from: [{source: {principals: [cluster.local/ns/demo/sa/waypoint]}}]}]
)");
  o.manifests.push_back(dir_ + "/no-waypoint.yaml");
  r = Explain(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->allowed);
  EXPECT_EQ(r->hop, "ztunnel");
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->policy, "demo/no-waypoint");
}

TEST_F(ExplainL7Test, TheWaypointComesFromTheNamespaceLabel) {
  Write(dir_ + "/cluster/cluster.yaml",
        std::string(kCluster).replace(
            std::string(kCluster).find("zmesh.io/dataplane-mode: ambient}}"),
            std::string("zmesh.io/dataplane-mode: ambient}}").size(),
            "zmesh.io/dataplane-mode: ambient, zmesh.io/use-waypoint: waypoint}}"));
  ExplainOptions o = L7();
  o.via_waypoint.reset();
  o.jwt = "garbage";
  auto r = Explain(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 401);
  EXPECT_THAT(RenderExplain(*r), HasSubstr("from namespace demo zmesh.io/use-waypoint"));
}

TEST_F(ExplainL7Test, BadL7FlagsAreErrors) {
  auto bad = [&](auto mutate, const char* says) { ExpectBadInput(L7(), mutate, says); };
  bad([](ExplainOptions& o) { o.now = "yesterday"; }, "--now \"yesterday\"");
  bad([](ExplainOptions& o) { o.now = "-5"; }, "--now");
  bad([](ExplainOptions& o) { o.jwks_files = {"nofile"}; }, "want ISSUER_OR_URI=FILE");
  bad([&](ExplainOptions& o) { o.jwks_files = {"iss=" + dir_ + "/nope.json"}; }, "cannot read");
  bad([&](ExplainOptions& o) { o.jwks_files = {"iss=" + dir_ + "/l7.yaml"}; }, "l7.yaml");
  bad([](ExplainOptions& o) { o.via_waypoint = "a/b/c"; }, "want NAME or NAMESPACE/NAME");
  bad(
      [](ExplainOptions& o) {
        o.layer = "l4";
        o.via_waypoint.reset();
        o.jwks_files = {"a=b"};
      },
      "--jwks needs --layer l7");
}

// The binary: JSON on stdout and 0 whatever the decision; 2 and stderr on bad input.
int RunCli(const std::string& args, std::string* out) {
  const char* build = std::getenv("ZMESH_BUILD_DIR");
  std::string bin = std::string(build ? build : ".") + "/bin/zmeshctl";
  std::string cmd = bin + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t n;
  out->clear();
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out->append(buf, n);
  int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(ExplainTest, TheBinary) {
  const char* build = std::getenv("ZMESH_BUILD_DIR");
  if (build == nullptr || !std::filesystem::exists(std::string(build) + "/bin/zmeshctl")) {
    GTEST_SKIP() << "zmeshctl not built (ZMESH_BUILD_DIR unset)";
  }
  std::string out;
  std::string common = "explain --manifests " + dir_ + "/cluster --manifests " + dir_ +
                       "/policies.yaml --to demo/server --port 8080";
  EXPECT_EQ(RunCli(common + " --from-principal cluster.local/ns/other/sa/x -o json", &out), 0);
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["decision"], "deny");
  EXPECT_TRUE(j["status"].is_null());
  EXPECT_EQ(j["hop"], "ztunnel");
  EXPECT_TRUE(j["policy"].is_null());
  EXPECT_TRUE(j["rule"].is_null());
  EXPECT_EQ(RunCli(common + " --from-principal cluster.local/ns/demo/sa/x -o json", &out), 0);
  EXPECT_EQ(nlohmann::json::parse(out)["decision"], "allow");
  EXPECT_EQ(RunCli(common + " --plaintext", &out), 0);
  EXPECT_THAT(out, HasSubstr("deny"));
  EXPECT_EQ(RunCli(common + " --layer l7 -o json", &out), 2);
  EXPECT_THAT(out, HasSubstr("zmeshctl explain: --layer l7: demo/server has no waypoint"));
  Write(dir_ + "/l7.yaml", L7Manifests());
  std::string l7 = common + " --manifests " + dir_ + "/l7.yaml --layer l7 --via-waypoint waypoint" +
                   " --from-principal cluster.local/ns/demo/sa/client --now " +
                   std::to_string(kExp - 600);
  EXPECT_EQ(RunCli(l7 + " --jwt " + Token() + " -o json", &out), 0) << out;
  j = nlohmann::json::parse(out);
  EXPECT_EQ(j["decision"], "allow");
  EXPECT_EQ(j["status"], 200);
  EXPECT_EQ(j["hop"], "waypoint");
  EXPECT_EQ(RunCli(l7 + " --jwt garbage -o json", &out), 0) << out;
  EXPECT_EQ(nlohmann::json::parse(out)["status"], 401);
  EXPECT_EQ(RunCli(l7 + " --path /admin", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("403"));
  EXPECT_THAT(out, HasSubstr("Evaluated:"));
  EXPECT_EQ(RunCli(l7 + " --now soon", &out), 2);
  EXPECT_EQ(RunCli(l7 + " --jwks nofile", &out), 2);
  EXPECT_EQ(RunCli("explain --manifests " + dir_ + " --to demo/server", &out), 2);  // no --port
  EXPECT_EQ(RunCli("explain --manifests " + dir_ + "/nope --to demo/server --port 1", &out), 2);
  EXPECT_EQ(RunCli(common + " --port 70000", &out), 2);
}

}  // namespace
}  // namespace zm::cli
