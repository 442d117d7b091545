// Reading and validating AuthorizationPolicy manifests (policy-semantics §2.1, §2.10, §9.8):
// every rejection names the file, the policy and the field; a rejected policy keeps what could
// be read of its scope and action (it fails closed downstream).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "common/base/strings.h"
#include "common/k8s/manifest.h"

namespace zm::k8s {
namespace {

using ::testing::HasSubstr;

std::string Policy(std::string_view spec, std::string_view meta_extra = "") {
  return StrCat(
      "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: p\n"
      "  namespace: demo\n",
      meta_extra, "spec:\n", spec);
}

ParsedFile Parse(const std::string& yaml) {
  auto parsed = ParseManifest(yaml, "policies.yaml");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return *parsed;
}

TEST(AuthorizationPolicyManifestTest, ReadsEveryField) {
  ParsedFile f = Parse(Policy(R"(
  selector: {matchLabels: {app: server}}
  action: DENY
  rules:
  - from:
    - source:
        principals: [cluster.local/ns/a/sa/b]
        notPrincipals: ["*/sa/x"]
        requestPrincipals: ["iss/sub"]
        notRequestPrincipals: ["*"]
        namespaces: [a]
        notNamespaces: [b]
        ipBlocks: [10.0.0.0/8]
        notIpBlocks: [10.1.0.0/16]
        remoteIpBlocks: [203.0.113.0/24]
        notRemoteIpBlocks: [203.0.113.7]
        trustDomains: [cluster.local]
        notTrustDomains: ["*.evil"]
    - source:
        serviceAccounts: [a/b, c]
        notServiceAccounts: [d/e]
    to:
    - operation:
        hosts: [a.example]
        notHosts: ["*.evil"]
        ports: ["80", 8080]
        notPorts: ["9090"]
        methods: [GET]
        notMethods: [DELETE]
        paths: ["/api/*", "/store/{*}/cart"]
        notPaths: [/admin]
    when:
    - key: request.headers[x-user]
      values: [alice]
      notValues: [bob]
    - key: request.auth.claims[realm][role]
      values: [admin]
)"));
  ASSERT_EQ(f.errors.size(), 0u) << f.errors.front();
  ASSERT_EQ(f.authorization_policies.size(), 1u);
  const authz::AuthorizationPolicy& p = f.authorization_policies[0];
  EXPECT_EQ(p.key(), "demo/p");
  EXPECT_EQ(p.action, authz::Action::kDeny);
  ASSERT_TRUE(p.selector.has_value());
  EXPECT_EQ(p.selector->at("app"), "server");
  ASSERT_EQ(p.rules.size(), 1u);
  const authz::Rule& r = p.rules[0];
  ASSERT_EQ(r.from.size(), 2u);
  EXPECT_EQ(r.from[0].principals.values, std::vector<std::string>{"cluster.local/ns/a/sa/b"});
  EXPECT_EQ(r.from[0].principals.not_values, std::vector<std::string>{"*/sa/x"});
  EXPECT_EQ(r.from[0].request_principals.not_values, std::vector<std::string>{"*"});
  EXPECT_EQ(r.from[0].remote_ip_blocks.not_values, std::vector<std::string>{"203.0.113.7"});
  EXPECT_EQ(r.from[0].trust_domains.not_values, std::vector<std::string>{"*.evil"});
  EXPECT_EQ(r.from[1].service_accounts.values, (std::vector<std::string>{"a/b", "c"}));
  ASSERT_EQ(r.to.size(), 1u);
  EXPECT_EQ(r.to[0].ports.values, (std::vector<std::string>{"80", "8080"}));
  EXPECT_EQ(r.to[0].paths.values, (std::vector<std::string>{"/api/*", "/store/{*}/cart"}));
  ASSERT_EQ(r.when.size(), 2u);
  EXPECT_EQ(r.when[0].key, "request.headers[x-user]");
  EXPECT_EQ(r.when[0].match.not_values, std::vector<std::string>{"bob"});
  EXPECT_FALSE(p.dry_run);
}

TEST(AuthorizationPolicyManifestTest, ActionDefaultsToAllowAndDryRunIsRead) {
  ParsedFile f = Parse(Policy("  rules: [{}]\n", "  annotations: {istio.io/dry-run: \"true\"}\n"));
  ASSERT_EQ(f.authorization_policies.size(), 1u);
  EXPECT_EQ(f.authorization_policies[0].action, authz::Action::kAllow);
  EXPECT_TRUE(f.authorization_policies[0].dry_run);
  EXPECT_FALSE(f.authorization_policies[0].selector.has_value());
}

TEST(AuthorizationPolicyManifestTest, TargetRefAndTargetRefs) {
  ParsedFile f = Parse(
      Policy("  targetRef: {kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}\n"));
  ASSERT_EQ(f.authorization_policies.size(), 1u) << f.errors.front();
  EXPECT_EQ(f.authorization_policies[0].target_refs.size(), 1u);
  f =
      Parse(Policy("  targetRefs: [{kind: Service, name: web}, {kind: ServiceEntry, group: "
                   "networking.istio.io, name: ext}]\n"));
  ASSERT_EQ(f.authorization_policies.size(), 1u) << f.errors.front();
  EXPECT_EQ(f.authorization_policies[0].target_refs.size(), 2u);
}

struct Invalid {
  const char* name;
  std::string yaml;
  const char* field;  // the error names it
  const char* what;   // and says this
};

class InvalidPolicyTest : public ::testing::TestWithParam<Invalid> {};

TEST_P(InvalidPolicyTest, IsRejectedWithAnErrorNamingFileObjectAndField) {
  const Invalid& c = GetParam();
  ParsedFile f = Parse(c.yaml);
  EXPECT_EQ(f.authorization_policies.size(), 0u) << c.name;
  ASSERT_EQ(f.rejected_authorization_policies.size(), 1u) << c.name;
  ASSERT_FALSE(f.errors.empty()) << c.name;
  const std::string& e = f.errors.front();
  EXPECT_THAT(e, HasSubstr("policies.yaml: document 1 (AuthorizationPolicy demo/p): ")) << c.name;
  EXPECT_THAT(e, HasSubstr(c.field)) << c.name;
  EXPECT_THAT(e, HasSubstr(c.what)) << c.name;
  EXPECT_EQ(f.rejected_authorization_policies[0].error, e);
}

void PrintTo(const Invalid& c, std::ostream* os) { *os << c.name; }

const Invalid kInvalid[] = {
    {"unknown spec field", Policy("  rulez: []\n"), "spec.rulez", "unknown field"},
    {"unknown source field", Policy("  rules: [{from: [{source: {principal: [x]}}]}]\n"),
     "spec.rules[0].from[0].source.principal", "unknown field"},
    {"unknown operation field", Policy("  rules: [{to: [{operation: {method: [GET]}}]}]\n"),
     "spec.rules[0].to[0].operation.method", "unknown field"},
    {"unknown rule field", Policy("  rules: [{form: []}]\n"), "spec.rules[0].form",
     "unknown field"},
    {"unknown action", Policy("  action: allow\n  rules: [{}]\n"), "spec.action", "unknown action"},
    {"selector with targetRefs",
     Policy("  selector: {matchLabels: {a: b}}\n  targetRefs: [{kind: Service, name: web}]\n"),
     "spec.selector", "together with spec.targetRefs"},
    {"targetRef with namespace",
     Policy("  targetRefs: [{kind: Service, name: web, namespace: other}]\n"),
     "spec.targetRefs[0].namespace", "cross-namespace"},
    {"unsupported targetRef kind", Policy("  targetRefs: [{kind: Pod, name: web}]\n"),
     "spec.targetRefs[0]", "unsupported target"},
    {"provider without CUSTOM", Policy("  provider: {name: x}\n  rules: [{}]\n"), "spec.provider",
     "only with action CUSTOM"},
    {"CUSTOM without provider", Policy("  action: CUSTOM\n  rules: [{}]\n"), "spec.provider.name",
     "required"},
    {"CUSTOM without rules", Policy("  action: CUSTOM\n  provider: {name: x}\n"), "spec.rules",
     "required with action CUSTOM"},
    {"CUSTOM with principals",
     Policy("  action: CUSTOM\n  provider: {name: x}\n  rules: [{from: [{source: {principals: "
            "[a]}}]}]\n"),
     "spec.rules[0].from[0].source", "CUSTOM policy cannot use"},
    {"DENY without rules", Policy("  action: DENY\n"), "spec.rules", "meaningless"},
    {"empty from", Policy("  rules: [{from: []}]\n"), "spec.rules[0].from", "empty"},
    {"empty to", Policy("  rules: [{to: []}]\n"), "spec.rules[0].to", "empty"},
    {"from item without source", Policy("  rules: [{from: [{}]}]\n"),
     "spec.rules[0].from[0].source", "missing"},
    {"empty source", Policy("  rules: [{from: [{source: {}}]}]\n"), "spec.rules[0].from[0].source",
     "empty source"},
    {"empty operation", Policy("  rules: [{to: [{operation: {}}]}]\n"),
     "spec.rules[0].to[0].operation", "empty operation"},
    {"condition without key", Policy("  rules: [{when: [{values: [a]}]}]\n"),
     "spec.rules[0].when[0].key", "missing"},
    {"condition without values", Policy("  rules: [{when: [{key: source.ip}]}]\n"),
     "spec.rules[0].when[0]", "needs values or notValues"},
    {"empty string value", Policy("  rules: [{from: [{source: {principals: [\"\"]}}]}]\n"),
     "spec.rules[0].from[0].source.principals[0]", "empty string"},
    {"bad CIDR", Policy("  rules: [{from: [{source: {ipBlocks: [10.0.0.0/33]}}]}]\n"),
     "spec.rules[0].from[0].source.ipBlocks[0]", "not an IP address or CIDR"},
    {"bad port", Policy("  rules: [{to: [{operation: {ports: [\"65536\"]}}]}]\n"),
     "spec.rules[0].to[0].operation.ports[0]", "not a port"},
    {"non-numeric port", Policy("  rules: [{to: [{operation: {notPorts: [http]}}]}]\n"),
     "spec.rules[0].to[0].operation.notPorts[0]", "not a port"},
    {"bad destination.port value",
     Policy("  rules: [{when: [{key: destination.port, values: [\"8o\"]}]}]\n"),
     "spec.rules[0].when[0].values[0]", "not a port"},
    {"bad source.ip value", Policy("  rules: [{when: [{key: source.ip, notValues: [host]}]}]\n"),
     "spec.rules[0].when[0].notValues[0]", "not an IP address or CIDR"},
    {"serviceAccounts with principals",
     Policy("  rules: [{from: [{source: {serviceAccounts: [a], principals: [b]}}]}]\n"),
     "spec.rules[0].from[0].source", "cannot be combined"},
    {"serviceAccounts wildcard",
     Policy("  rules: [{from: [{source: {serviceAccounts: [\"ns/*\"]}}]}]\n"),
     "spec.rules[0].from[0].source.serviceAccounts[0]", "wildcards are not allowed"},
    {"serviceAccounts two slashes",
     Policy("  rules: [{from: [{source: {serviceAccounts: [a/b/c]}}]}]\n"),
     "spec.rules[0].from[0].source.serviceAccounts[0]", "not \"<namespace>/<service account>\""},
    {"trustDomains with a slash", Policy("  rules: [{from: [{source: {trustDomains: [a/b]}}]}]\n"),
     "spec.rules[0].from[0].source.trustDomains[0]", "no '/'"},
    {"trustDomains inner wildcard",
     Policy("  rules: [{from: [{source: {trustDomains: [\"a*b\"]}}]}]\n"),
     "spec.rules[0].from[0].source.trustDomains[0]", "at most one '*'"},
    {"principal inner wildcard",
     Policy("  rules: [{from: [{source: {principals: [\"cluster.local/*/sa/x\"]}}]}]\n"),
     "spec.rules[0].from[0].source.principals[0]", "not a glob"},
    {"path template with {** } not last",
     Policy("  rules: [{to: [{operation: {paths: [\"/{**}/a/{*}\"]}}]}]\n"),
     "spec.rules[0].to[0].operation.paths[0]", "must be the last operator"},
    {"path template operator sharing a segment",
     Policy("  rules: [{to: [{operation: {paths: [\"/a{*}/b\"]}}]}]\n"),
     "spec.rules[0].to[0].operation.paths[0]", "may not hold anything else"},
    {"path with a stray brace", Policy("  rules: [{to: [{operation: {paths: [\"/a{b\"]}}]}]\n"),
     "spec.rules[0].to[0].operation.paths[0]", "only in the operators"},
    {"unknown condition key", Policy("  rules: [{when: [{key: request.method, values: [GET]}]}]\n"),
     "spec.rules[0].when[0].key", "unknown condition key"},
    {"experimental condition key",
     Policy("  rules: [{when: [{key: \"experimental.envoy.filters.a[b]\", values: [x]}]}]\n"),
     "spec.rules[0].when[0].key", "not supported by zmesh"},
    {"destination.labels condition key",
     Policy("  rules: [{when: [{key: \"destination.labels[app]\", values: [x]}]}]\n"),
     "spec.rules[0].when[0].key", "use spec.selector"},
    {"header key without brackets",
     Policy("  rules: [{when: [{key: request.headers, values: [x]}]}]\n"),
     "spec.rules[0].when[0].key", "request.headers[name]"},
    {"dry-run annotation not a boolean",
     Policy("  rules: [{}]\n", "  annotations: {istio.io/dry-run: \"yes\"}\n"),
     "metadata.annotations[\"istio.io/dry-run\"]", "not \"true\" or \"false\""},
    {"values not a list", Policy("  rules: [{from: [{source: {principals: a}}]}]\n"),
     "spec.rules[0].from[0].source.principals", "not a list"},
    {"unknown top-level field", Policy("  rules: [{}]\nsepc: {}\n"), "sepc", "unknown field"},
};

INSTANTIATE_TEST_SUITE_P(Validation, InvalidPolicyTest, ::testing::ValuesIn(kInvalid),
                         [](const ::testing::TestParamInfo<Invalid>& info) {
                           std::string out;
                           for (char ch : std::string(info.param.name)) {
                             out += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           }
                           return out;
                         });

TEST(AuthorizationPolicyManifestTest, ARejectedPolicyKeepsItsScopeAndAction) {
  ParsedFile f = Parse(
      Policy("  selector: {matchLabels: {app: server}}\n  action: DENY\n  rules: [{from: []}]\n"));
  ASSERT_EQ(f.rejected_authorization_policies.size(), 1u);
  const authz::RejectedAuthorizationPolicy& r = f.rejected_authorization_policies[0];
  EXPECT_EQ(r.key(), "demo/p");
  EXPECT_EQ(r.action, authz::Action::kDeny);
  ASSERT_TRUE(r.selector.has_value());
  EXPECT_EQ(r.selector->at("app"), "server");
  EXPECT_FALSE(r.selector_unreadable);
  EXPECT_FALSE(r.has_target_refs);
}

TEST(AuthorizationPolicyManifestTest, AnUnreadableSelectorWidensTheRejectedScope) {
  ParsedFile f = Parse(Policy("  selector: {matchLabels: [app]}\n  rules: [{}]\n"));
  ASSERT_EQ(f.rejected_authorization_policies.size(), 1u);
  EXPECT_TRUE(f.rejected_authorization_policies[0].selector_unreadable);
  EXPECT_FALSE(f.rejected_authorization_policies[0].selector.has_value());
}

TEST(AuthorizationPolicyManifestTest, AnUnknownActionIsKeptAsUnreadable) {
  ParsedFile f = Parse(Policy("  action: PERMIT\n  rules: [{}]\n"));
  ASSERT_EQ(f.rejected_authorization_policies.size(), 1u);
  EXPECT_FALSE(f.rejected_authorization_policies[0].action.has_value());
}

TEST(AuthorizationPolicyManifestTest, OtherSecurityVersionsAreRejectedNotSkipped) {
  ParsedFile f = Parse(
      "apiVersion: security.istio.io/v2\nkind: AuthorizationPolicy\nmetadata: {name: p, "
      "namespace: demo}\nspec: {action: DENY, rules: [{}]}\n");
  ASSERT_EQ(f.rejected_authorization_policies.size(), 1u);
  EXPECT_THAT(f.errors.front(), HasSubstr("apiVersion: unsupported version"));
  EXPECT_EQ(f.rejected_authorization_policies[0].action, authz::Action::kDeny);
}

TEST(AuthorizationPolicyManifestTest, WarnsAboutAnEmptySelector) {
  ParsedFile f = Parse(Policy("  selector: {}\n  rules: [{}]\n"));
  ASSERT_EQ(f.authorization_policies.size(), 1u);
  ASSERT_EQ(f.authorization_policies[0].warnings.size(), 1u);
  EXPECT_THAT(f.authorization_policies[0].warnings[0], HasSubstr("selects every workload"));
}

TEST(AuthorizationPolicyManifestTest, GoodObjectsOfTheFileAreKept) {
  ParsedFile f = Parse(Policy("  action: DENY\n") + "---\n" + Policy("  rules: [{}]\n"));
  EXPECT_EQ(f.rejected_authorization_policies.size(), 1u);
  EXPECT_EQ(f.authorization_policies.size(), 1u);
}

}  // namespace
}  // namespace zm::k8s
