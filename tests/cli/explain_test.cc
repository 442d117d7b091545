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
  auto bad = [&](auto mutate, const char* says) {
    ExplainOptions o = Base();
    mutate(o);
    auto r = Explain(o);
    ASSERT_FALSE(r.ok()) << says;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(says));
  };
  bad([](ExplainOptions& o) { o.to = "demo/nope"; }, "no such Pod");
  bad([](ExplainOptions& o) { o.to = "server"; }, "want NAMESPACE/POD");
  bad([](ExplainOptions& o) { o.port = 0; }, "not a port");
  bad([](ExplainOptions& o) { o.from_principal = "bob"; }, "not a workload identity");
  bad([](ExplainOptions& o) { o.from_ip = "1.2.3"; }, "--from-ip");
  bad([](ExplainOptions& o) { o.layer = "l7"; }, "waypoint");
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
  EXPECT_THAT(out, HasSubstr("zmeshctl explain: --layer l7"));
  EXPECT_EQ(RunCli("explain --manifests " + dir_ + " --to demo/server", &out), 2);  // no --port
  EXPECT_EQ(RunCli("explain --manifests " + dir_ + "/nope --to demo/server --port 1", &out), 2);
  EXPECT_EQ(RunCli(common + " --port 70000", &out), 2);
}

}  // namespace
}  // namespace zm::cli
