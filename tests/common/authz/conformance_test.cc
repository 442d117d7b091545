// AuthorizationPolicy conformance: one table, each case naming what it checks, written from
// Istio's public documentation of every field (istio.io/latest/docs/reference/config/security/
// authorization-policy/, .../conditions/, the security concepts page) and from
// shared/policy-semantics.md (§2, §3, §6, §8, §9). Each case runs the whole pipeline the data
// path runs: YAML manifests -> k8s reader and validation -> mesh snapshot -> PolicySet ->
// mesh::AuthorizeL4 (node tunnel, L4) or the engine at L7 (the matching a waypoint will use).

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/authz/engine.h"
#include "common/base/strings.h"
#include "common/k8s/manifest.h"
#include "common/k8s/manifest_store.h"
#include "common/mesh/authorization.h"
#include "common/mesh/workload.h"

namespace zm::authz {
namespace {

// The cluster every case runs in: root namespace zmesh-system; demo and other are ambient.
//   demo/server   sa web,    labels app=server version=v1, 198.18.1.11
//   demo/client   sa client, labels app=client,            198.18.1.10
//   other/sleep   sa sleep,  labels app=sleep,             198.18.2.10
constexpr char kCluster[] = R"(
apiVersion: v1
kind: Namespace
metadata: {name: zmesh-system}
---
apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {zmesh.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Namespace
metadata: {name: other, labels: {zmesh.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: demo, labels: {app: server, version: v1}}
spec: {serviceAccountName: web, nodeName: n1}
status: {podIP: 198.18.1.11, phase: Running}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: demo, labels: {app: client}}
spec: {serviceAccountName: client, nodeName: n1}
status: {podIP: 198.18.1.10, phase: Running}
---
apiVersion: v1
kind: Pod
metadata: {name: sleep, namespace: other, labels: {app: sleep}}
spec: {serviceAccountName: sleep, nodeName: n2}
status: {podIP: 198.18.2.10, phase: Running}
)";

constexpr char kFromDemoClient[] = "cluster.local/ns/demo/sa/client";
constexpr char kFromOtherSleep[] = "cluster.local/ns/other/sa/sleep";
constexpr char kPlaintext[] = "";

struct Http {
  const char* method = "GET";
  const char* path = "/";
  const char* host = "server.demo";
  std::vector<std::pair<std::string, std::string>> headers;
  const char* remote_ip = nullptr;
};

struct Jwt {
  const char* iss = "https://idp.example.com";
  const char* sub = "alice";
  std::vector<std::string> aud;
  std::map<std::string, std::vector<std::string>> claims;  // "a.b" -> values
};

struct Case {
  const char* name;                         // what it checks
  const char* policies;                     // YAML documents added to kCluster
  const char* principal = kFromDemoClient;  // "": plaintext
  uint16_t port = 8080;
  const char* src_ip = "198.18.1.10";
  bool l7 = false;
  Http http = {};
  std::optional<Jwt> jwt = std::nullopt;
  bool zero_trust = false;
  // Expected.
  bool allow = true;
  const char* policy = "";  // deciding policy ("" = none)
  int rule = -1;            // -1: not checked when a policy decided, else none
  const char* reason_has = "";
};

struct Outcome {
  bool allowed;
  std::string policy;
  std::optional<int> rule;
  std::string reason;
  std::vector<std::string> dry_run;
};

Outcome Evaluate(const Case& c) {
  auto parsed = k8s::ParseManifest(StrCat(kCluster, "---\n", c.policies), "case.yaml");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  k8s::ManifestSnapshot objects;
  objects.namespaces = parsed->namespaces;
  objects.pods = parsed->pods;
  objects.peer_authentications = parsed->peer_authentications;
  objects.rejected_peer_authentications = parsed->rejected_peer_authentications;
  objects.authorization_policies = parsed->authorization_policies;
  objects.rejected_authorization_policies = parsed->rejected_authorization_policies;
  mesh::Snapshot snap = mesh::BuildSnapshot(objects);
  snap.default_policy =
      c.zero_trust ? mesh::DefaultPolicy::kZeroTrust : mesh::DefaultPolicy::kUpstream;
  const mesh::Workload* dst = snap.FindWorkload("demo", "server");
  EXPECT_NE(dst, nullptr);
  std::optional<std::string> principal;
  if (std::string_view(c.principal) != kPlaintext) principal = c.principal;
  if (!c.l7) {
    auto set = mesh::BuildL4PolicySet(snap, "zmesh-system");
    mesh::L4Request req{.principal = principal,
                        .source_ip = *IpAddr::Parse(c.src_ip),
                        .destination_ip = dst->ips.front(),
                        .port = c.port,
                        .tunneled = principal.has_value()};
    mesh::L4Verdict v = mesh::AuthorizeL4(snap, *set, *dst, req, "zmesh-system");
    return Outcome{v.allowed, v.policy, v.rule, v.reason, v.dry_run};
  }
  // At L7 the cases' policies are attached to the waypoint "waypoint" of demo (a waypoint
  // enforces only what reaches it through targetRefs, §9.1).
  std::vector<AuthorizationPolicy> attached = snap.authorization_policies;
  for (AuthorizationPolicy& p : attached) {
    p.selector.reset();
    p.target_refs = {
        TargetRef{.group = "gateway.networking.k8s.io", .kind = "Gateway", .name = "waypoint"}};
  }
  auto set = PolicySet::Build(
      attached, snap.rejected_authorization_policies,
      PolicySetOptions{
          .layer = Layer::kL7, .root_namespace = "zmesh-system", .zero_trust = c.zero_trust});
  HttpRequest http{
      .method = c.http.method, .path = c.http.path, .host = c.http.host, .headers = c.http.headers};
  if (c.http.remote_ip) http.remote_ip = *IpAddr::Parse(c.http.remote_ip);
  JwtIdentity jwt;
  if (c.jwt) {
    jwt.issuer = c.jwt->iss;
    jwt.subject = c.jwt->sub;
    jwt.audiences = c.jwt->aud;
    auto claims = c.jwt->claims;
    jwt.claim =
        [claims](std::span<const std::string> path) -> std::optional<std::vector<std::string>> {
      std::string key;
      for (const std::string& p : path) key += (key.empty() ? "" : ".") + p;
      auto it = claims.find(key);
      if (it == claims.end()) return std::nullopt;
      return it->second;
    };
  }
  Attributes attrs{.principal = principal,
                   .source_ip = *IpAddr::Parse(c.src_ip),
                   .destination_ip = dst->ips.front(),
                   .destination_port = c.port,
                   .http = &http,
                   .jwt = c.jwt ? &jwt : nullptr};
  const TargetKey targets[] = {{"Gateway", "demo", "waypoint"}};
  Decision d = set->Evaluate(set->ForTargets(targets), "demo", attrs);
  return Outcome{d.allowed, d.policy, d.rule, d.reason, d.dry_run};
}

// Policy snippets.
#define AP(ns, name)                                                                    \
  "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: " name \
  ", namespace: " ns "}\n"
#define AP_DRY(ns, name, value)                                                         \
  "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: " name \
  ", namespace: " ns ", annotations: {istio.io/dry-run: \"" value "\"}}\n"

const Case kCases[] = {
    // --- Decision procedure (§2.8) ---------------------------------------------------------
    {.name = "no policy: allow",
     .policies = "",
     .allow = true,
     .reason_has = "no ALLOW policy applies"},
    {.name = "spec {} is allow-nothing",
     .policies = AP("demo", "nothing") "spec: {}\n",
     .allow = false,
     .reason_has = "none matches"},
    {.name = "rules [{}] is allow-all",
     .policies = AP("demo", "all") "spec: {rules: [{}]}\n",
     .allow = true,
     .policy = "demo/all",
     .rule = 0},
    {.name = "DENY rules [{}] is deny-all",
     .policies = AP("demo", "deny-all") "spec: {action: DENY, rules: [{}]}\n",
     .allow = false,
     .policy = "demo/deny-all",
     .rule = 0},
    {.name = "DENY beats ALLOW",
     .policies = AP("demo", "all") "spec: {rules: [{}]}\n---\n" AP(
         "demo",
         "no-other") "spec: {action: DENY, rules: [{from: [{source: {namespaces: [other]}}]}]}\n",
     .principal = kFromOtherSleep,
     .allow = false,
     .policy = "demo/no-other",
     .rule = 0},
    {.name = "DENY that does not match leaves ALLOW to decide",
     .policies = AP("demo", "all") "spec: {rules: [{}]}\n---\n" AP(
         "demo",
         "no-other") "spec: {action: DENY, rules: [{from: [{source: {namespaces: [other]}}]}]}\n",
     .allow = true,
     .policy = "demo/all"},
    {.name = "ALLOW policies exist but none matches: deny",
     .policies =
         AP("demo", "only-other") "spec: {rules: [{from: [{source: {namespaces: [other]}}]}]}\n",
     .allow = false,
     .reason_has = "none matches"},
    {.name = "any of several ALLOW policies admits",
     .policies = AP("demo", "a-other") "spec: {rules: [{from: [{source: {namespaces: "
                                       "[other]}}]}]}\n---\n" AP(
                                           "demo", "b-demo") "spec: {rules: [{from: [{source: "
                                                             "{namespaces: [demo]}}]}]}\n",
     .allow = true,
     .policy = "demo/b-demo",
     .rule = 0},
    {.name = "rules are ORed: the second rule matches (rule index 1)",
     .policies = AP("demo", "two") "spec: {rules: [{from: [{source: {namespaces: [other]}}]}, "
                                   "{from: [{source: {namespaces: [demo]}}]}]}\n",
     .allow = true,
     .policy = "demo/two",
     .rule = 1},
    {.name = "from sources are ORed",
     .policies = AP("demo", "or") "spec: {rules: [{from: [{source: {namespaces: [other]}}, "
                                  "{source: {principals: [cluster.local/ns/demo/sa/client]}}]}]}\n",
     .allow = true,
     .policy = "demo/or",
     .rule = 0},
    {.name = "fields of one source are ANDed (principal matches, ipBlock does not)",
     .policies =
         AP("demo", "and") "spec: {rules: [{from: [{source: {principals: "
                           "[cluster.local/ns/demo/sa/client], ipBlocks: [10.0.0.0/8]}}]}]}\n",
     .allow = false},
    {.name = "from and to are ANDed (source matches, port does not)",
     .policies = AP("demo", "and") "spec: {rules: [{from: [{source: {namespaces: [demo]}}], to: "
                                   "[{operation: {ports: [\"9090\"]}}]}]}\n",
     .allow = false},
    {.name = "when conditions are ANDed (one fails)",
     .policies = AP("demo", "when") "spec: {rules: [{when: [{key: source.namespace, values: "
                                    "[demo]}, {key: destination.port, values: [\"9090\"]}]}]}\n",
     .allow = false},
    {.name = "AUDIT never changes the decision",
     .policies = AP("demo", "audit") "spec: {action: AUDIT, rules: [{}]}\n",
     .allow = true,
     .reason_has = "no ALLOW policy applies"},
    {.name = "CUSTOM is ignored at L4",
     .policies =
         AP("demo", "ext") "spec: {action: CUSTOM, provider: {name: ext-authz}, rules: [{}]}\n",
     .allow = true},
    {.name = "dry-run DENY is not enforced",
     .policies = AP_DRY("demo", "deny-dry", "true") "spec: {action: DENY, rules: [{}]}\n",
     .allow = true},
    {.name = "dry-run ALLOW-nothing does not make ALLOW policies exist",
     .policies = AP_DRY("demo", "nothing-dry", "true") "spec: {}\n",
     .allow = true,
     .reason_has = "no ALLOW policy applies"},
    {.name = "dry-run false is enforced",
     .policies = AP_DRY("demo", "deny-wet", "false") "spec: {action: DENY, rules: [{}]}\n",
     .allow = false,
     .policy = "demo/deny-wet"},

    // --- Scope and attachment (§1.3) ---------------------------------------------------------
    {.name = "root namespace without selector is mesh-wide",
     .policies = AP("zmesh-system", "deny-all") "spec: {action: DENY, rules: [{}]}\n",
     .allow = false,
     .policy = "zmesh-system/deny-all"},
    {.name = "root namespace selector applies in every namespace",
     .policies = AP(
         "zmesh-system",
         "servers") "spec: {selector: {matchLabels: {app: server}}, action: DENY, rules: [{}]}\n",
     .allow = false,
     .policy = "zmesh-system/servers"},
    {.name = "root namespace selector that does not match does not apply",
     .policies = AP(
         "zmesh-system",
         "sleepers") "spec: {selector: {matchLabels: {app: sleep}}, action: DENY, rules: [{}]}\n",
     .allow = true},
    {.name = "a policy of another namespace does not apply",
     .policies = AP("other", "deny-all") "spec: {action: DENY, rules: [{}]}\n",
     .allow = true},
    {.name = "selector matching the workload applies",
     .policies =
         AP("demo",
            "server") "spec: {selector: {matchLabels: {app: server}}, action: DENY, rules: [{}]}\n",
     .allow = false,
     .policy = "demo/server"},
    {.name = "selector of another workload does not apply",
     .policies =
         AP("demo",
            "client") "spec: {selector: {matchLabels: {app: client}}, action: DENY, rules: [{}]}\n",
     .allow = true},
    {.name = "selector labels must all match (superset)",
     .policies = AP("demo", "v1") "spec: {selector: {matchLabels: {app: server, version: v1}}, "
                                  "action: DENY, rules: [{}]}\n",
     .allow = false,
     .policy = "demo/v1"},
    {.name = "selector with one wrong label does not apply",
     .policies = AP("demo", "v2") "spec: {selector: {matchLabels: {app: server, version: v2}}, "
                                  "action: DENY, rules: [{}]}\n",
     .allow = true},
    {.name = "selector {} selects the whole namespace",
     .policies = AP("demo", "empty-sel") "spec: {selector: {}, action: DENY, rules: [{}]}\n",
     .allow = false,
     .policy = "demo/empty-sel"},
    {.name = "targetRefs policies are the waypoint's: ignored at L4 (DENY)",
     .policies =
         AP("demo", "wp") "spec: {targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, "
                          "name: waypoint}], action: DENY, rules: [{}]}\n",
     .allow = true},
    {.name = "targetRefs policies are ignored at L4 (ALLOW-nothing)",
     .policies = AP("demo", "wp") "spec: {targetRefs: [{kind: Service, group: \"\", name: web}]}\n",
     .allow = true},
    {.name = "v1beta1 is the same schema",
     .policies = "apiVersion: security.istio.io/v1beta1\nkind: AuthorizationPolicy\nmetadata: "
                 "{name: beta, namespace: demo}\nspec: {action: DENY, rules: [{}]}\n",
     .allow = false,
     .policy = "demo/beta"},

    // --- principals (§2.2) ---------------------------------------------------------------------
    {.name = "principals exact",
     .policies = AP("demo", "p") "spec: {rules: [{from: [{source: {principals: "
                                 "[cluster.local/ns/demo/sa/client]}}]}]}\n",
     .allow = true,
     .policy = "demo/p"},
    {.name = "principals exact mismatch",
     .policies = AP("demo", "p") "spec: {rules: [{from: [{source: {principals: "
                                 "[cluster.local/ns/demo/sa/other]}}]}]}\n",
     .allow = false},
    {.name = "principals prefix",
     .policies = AP(
         "demo",
         "p") "spec: {rules: [{from: [{source: {principals: [\"cluster.local/ns/demo/*\"]}}]}]}\n",
     .allow = true,
     .policy = "demo/p"},
    {.name = "principals suffix",
     .policies =
         AP("demo", "p") "spec: {rules: [{from: [{source: {principals: [\"*/sa/client\"]}}]}]}\n",
     .allow = true,
     .policy = "demo/p"},
    {.name = "principals presence matches any mTLS peer",
     .policies = AP("demo", "p") "spec: {rules: [{from: [{source: {principals: [\"*\"]}}]}]}\n",
     .principal = kFromOtherSleep,
     .allow = true,
     .policy = "demo/p"},
    {.name = "principals presence does not match plaintext",
     .policies = AP("demo", "p") "spec: {rules: [{from: [{source: {principals: [\"*\"]}}]}]}\n",
     .principal = kPlaintext,
     .allow = false},
    {.name = "notPrincipals excludes the listed peer",
     .policies = AP("demo", "p") "spec: {rules: [{from: [{source: {notPrincipals: "
                                 "[cluster.local/ns/demo/sa/client]}}]}]}\n",
     .allow = false},
    {.name = "DENY notPrincipals [*] denies plaintext (absent satisfies not*)",
     .policies = AP("demo", "mtls-only") "spec: {action: DENY, rules: [{from: [{source: "
                                         "{notPrincipals: [\"*\"]}}]}]}\n",
     .principal = kPlaintext,
     .allow = false,
     .policy = "demo/mtls-only"},
    {.name = "DENY notPrincipals [*] lets mTLS peers through",
     .policies = AP("demo", "mtls-only") "spec: {action: DENY, rules: [{from: [{source: "
                                         "{notPrincipals: [\"*\"]}}]}]}\n",
     .allow = true},

    // --- namespaces ----------------------------------------------------------------------------
    {.name = "namespaces exact",
     .policies = AP("demo", "n") "spec: {rules: [{from: [{source: {namespaces: [other]}}]}]}\n",
     .principal = kFromOtherSleep,
     .allow = true,
     .policy = "demo/n"},
    {.name = "namespaces prefix",
     .policies = AP("demo", "n") "spec: {rules: [{from: [{source: {namespaces: [\"oth*\"]}}]}]}\n",
     .principal = kFromOtherSleep,
     .allow = true,
     .policy = "demo/n"},
    {.name = "namespaces suffix",
     .policies = AP("demo", "n") "spec: {rules: [{from: [{source: {namespaces: [\"*her\"]}}]}]}\n",
     .principal = kFromOtherSleep,
     .allow = true,
     .policy = "demo/n"},
    {.name = "namespaces with an inner * are a glob",
     .policies = AP("demo", "n") "spec: {rules: [{from: [{source: {namespaces: [\"o*r\"]}}]}]}\n",
     .principal = kFromOtherSleep,
     .allow = true,
     .policy = "demo/n"},
    {.name = "notNamespaces",
     .policies = AP("demo", "n") "spec: {rules: [{from: [{source: {notNamespaces: [demo]}}]}]}\n",
     .principal = kFromOtherSleep,
     .allow = true,
     .policy = "demo/n"},
    {.name = "namespaces never match plaintext",
     .policies = AP("demo", "n") "spec: {rules: [{from: [{source: {namespaces: [demo]}}]}]}\n",
     .principal = kPlaintext,
     .allow = false},
    {.name = "DENY notNamespaces denies plaintext (absent)",
     .policies =
         AP("demo",
            "n") "spec: {action: DENY, rules: [{from: [{source: {notNamespaces: [demo]}}]}]}\n",
     .principal = kPlaintext,
     .allow = false,
     .policy = "demo/n"},
    {.name = "namespace comes from the identity, not the address",
     .policies = AP("demo", "n") "spec: {rules: [{from: [{source: {namespaces: [demo]}}]}]}\n",
     .principal = kFromOtherSleep,
     .src_ip = "198.18.1.10",
     .allow = false},

    // --- serviceAccounts, trustDomains (evaluated natively at L4, §9.4) ---------------------
    {.name = "serviceAccounts ns/sa",
     .policies =
         AP("demo", "sa") "spec: {rules: [{from: [{source: {serviceAccounts: [other/sleep]}}]}]}\n",
     .principal = kFromOtherSleep,
     .allow = true,
     .policy = "demo/sa"},
    {.name = "serviceAccounts bare name is in the policy's namespace",
     .policies =
         AP("demo", "sa") "spec: {rules: [{from: [{source: {serviceAccounts: [client]}}]}]}\n",
     .allow = true,
     .policy = "demo/sa"},
    {.name = "serviceAccounts bare name does not match another namespace's account",
     .policies =
         AP("demo", "sa") "spec: {rules: [{from: [{source: {serviceAccounts: [sleep]}}]}]}\n",
     .principal = kFromOtherSleep,
     .allow = false},
    {.name = "notServiceAccounts",
     .policies = AP(
         "demo", "sa") "spec: {rules: [{from: [{source: {notServiceAccounts: [demo/client]}}]}]}\n",
     .allow = false},
    {.name = "serviceAccounts ignore the trust domain",
     .policies =
         AP("demo", "sa") "spec: {rules: [{from: [{source: {serviceAccounts: [demo/client]}}]}]}\n",
     .principal = "example.org/ns/demo/sa/client",
     .allow = true,
     .policy = "demo/sa"},
    {.name = "trustDomains exact",
     .policies =
         AP("demo", "td") "spec: {rules: [{from: [{source: {trustDomains: [cluster.local]}}]}]}\n",
     .allow = true,
     .policy = "demo/td"},
    {.name = "trustDomains suffix",
     .policies =
         AP("demo", "td") "spec: {rules: [{from: [{source: {trustDomains: [\"*.local\"]}}]}]}\n",
     .allow = true,
     .policy = "demo/td"},
    {.name = "notTrustDomains",
     .policies = AP(
         "demo", "td") "spec: {rules: [{from: [{source: {notTrustDomains: [cluster.local]}}]}]}\n",
     .allow = false},

    // --- ipBlocks ------------------------------------------------------------------------------
    {.name = "ipBlocks CIDR contains the source",
     .policies =
         AP("demo", "ip") "spec: {rules: [{from: [{source: {ipBlocks: [198.18.1.0/24]}}]}]}\n",
     .allow = true,
     .policy = "demo/ip"},
    {.name = "ipBlocks single address that is not the source",
     .policies =
         AP("demo", "ip") "spec: {rules: [{from: [{source: {ipBlocks: [198.18.1.99]}}]}]}\n",
     .allow = false},
    {.name = "notIpBlocks",
     .policies =
         AP("demo", "ip") "spec: {rules: [{from: [{source: {notIpBlocks: [198.18.2.0/24]}}]}]}\n",
     .allow = true,
     .policy = "demo/ip"},
    {.name = "an IPv6 block never contains an IPv4 source",
     .policies = AP("demo", "ip") "spec: {rules: [{from: [{source: {ipBlocks: [\"::/0\"]}}]}]}\n",
     .allow = false},
    {.name = "ipBlocks apply to plaintext sources too",
     .policies =
         AP("demo", "ip") "spec: {rules: [{from: [{source: {ipBlocks: [198.18.1.10/32]}}]}]}\n",
     .principal = kPlaintext,
     .allow = true,
     .policy = "demo/ip"},

    // --- operations at L4 ---------------------------------------------------------------------
    {.name = "ports match the workload port",
     .policies = AP("demo", "port") "spec: {rules: [{to: [{operation: {ports: [\"8080\"]}}]}]}\n",
     .allow = true,
     .policy = "demo/port"},
    {.name = "ports written as numbers",
     .policies = AP("demo", "port") "spec: {rules: [{to: [{operation: {ports: [8080]}}]}]}\n",
     .allow = true,
     .policy = "demo/port"},
    {.name = "ports mismatch",
     .policies = AP("demo", "port") "spec: {rules: [{to: [{operation: {ports: [\"9090\"]}}]}]}\n",
     .allow = false},
    {.name = "notPorts",
     .policies =
         AP("demo", "port") "spec: {rules: [{to: [{operation: {notPorts: [\"8080\"]}}]}]}\n",
     .allow = false},

    // --- HTTP fields at L4 (§2.9, §9.2) --------------------------------------------------------
    {.name = "L4 ALLOW rule with methods never matches (fail closed)",
     .policies =
         AP("demo",
            "get") "spec: {rules: [{to: [{operation: {ports: [\"8080\"], methods: [GET]}}]}]}\n",
     .allow = false,
     .reason_has = "none matches"},
    {.name = "L4 ALLOW: the HTTP rule is dropped, the L4 rule still admits (rule 1)",
     .policies = AP("demo", "mixed") "spec: {rules: [{to: [{operation: {paths: [/api]}}]}, {from: "
                                     "[{source: {namespaces: [demo]}}]}]}\n",
     .allow = true,
     .policy = "demo/mixed",
     .rule = 1},
    {.name = "L4 DENY with only methods denies every connection",
     .policies =
         AP("demo",
            "no-post") "spec: {action: DENY, rules: [{to: [{operation: {methods: [POST]}}]}]}\n",
     .allow = false,
     .policy = "demo/no-post",
     .rule = 0},
    {.name = "L4 DENY with ports and methods denies the whole port",
     .policies = AP("demo", "no-post") "spec: {action: DENY, rules: [{to: [{operation: {ports: "
                                       "[\"8080\"], methods: [POST]}}]}]}\n",
     .allow = false,
     .policy = "demo/no-post"},
    {.name = "L4 DENY with ports and methods leaves other ports alone",
     .policies = AP("demo", "no-post") "spec: {action: DENY, rules: [{to: [{operation: {ports: "
                                       "[\"8080\"], methods: [POST]}}]}]}\n",
     .port = 9090,
     .allow = true},
    {.name = "L4 DENY principal + requestPrincipals denies the principal outright",
     .policies =
         AP("demo", "d") "spec: {action: DENY, rules: [{from: [{source: {principals: "
                         "[cluster.local/ns/demo/sa/client], requestPrincipals: [\"*\"]}}]}]}\n",
     .allow = false,
     .policy = "demo/d"},
    {.name = "L4 DENY principal + requestPrincipals: other principals pass",
     .policies =
         AP("demo", "d") "spec: {action: DENY, rules: [{from: [{source: {principals: "
                         "[cluster.local/ns/demo/sa/client], requestPrincipals: [\"*\"]}}]}]}\n",
     .principal = kFromOtherSleep,
     .allow = true},
    {.name = "L4 DENY with a header condition denies its sources outright",
     .policies =
         AP("demo", "d") "spec: {action: DENY, rules: [{from: [{source: {namespaces: [other]}}], "
                         "when: [{key: \"request.headers[x-debug]\", values: [\"1\"]}]}]}\n",
     .principal = kFromOtherSleep,
     .allow = false,
     .policy = "demo/d"},
    {.name = "L4 ALLOW with a header condition is dropped",
     .policies =
         AP("demo",
            "a") "spec: {rules: [{when: [{key: \"request.headers[x-user]\", values: [alice]}]}]}\n",
     .allow = false},
    {.name = "L4 DENY notRequestPrincipals [*] denies everything",
     .policies = AP("demo", "need-jwt") "spec: {action: DENY, rules: [{from: [{source: "
                                        "{notRequestPrincipals: [\"*\"]}}]}]}\n",
     .allow = false,
     .policy = "demo/need-jwt"},
    {.name = "L4 ALLOW with hosts is dropped",
     .policies = AP("demo", "h") "spec: {rules: [{to: [{operation: {hosts: [server.demo]}}]}]}\n",
     .allow = false},
    {.name = "L4 DENY with notPaths denies everything",
     .policies = AP(
         "demo", "d") "spec: {action: DENY, rules: [{to: [{operation: {notPaths: [/health]}}]}]}\n",
     .allow = false,
     .policy = "demo/d"},
    {.name = "L4 ALLOW with remoteIpBlocks is dropped",
     .policies =
         AP("demo", "r") "spec: {rules: [{from: [{source: {remoteIpBlocks: [198.18.0.0/15]}}]}]}\n",
     .allow = false},

    // --- when conditions at L4 -------------------------------------------------------------
    {.name = "when source.ip",
     .policies =
         AP("demo", "w") "spec: {rules: [{when: [{key: source.ip, values: [198.18.1.0/24]}]}]}\n",
     .allow = true,
     .policy = "demo/w"},
    {.name = "when source.namespace notValues",
     .policies =
         AP("demo", "w") "spec: {rules: [{when: [{key: source.namespace, notValues: [other]}]}]}\n",
     .principal = kFromOtherSleep,
     .allow = false},
    {.name = "when source.principal",
     .policies = AP("demo", "w") "spec: {rules: [{when: [{key: source.principal, values: "
                                 "[cluster.local/ns/demo/sa/client]}]}]}\n",
     .allow = true,
     .policy = "demo/w"},
    {.name = "when destination.port",
     .policies =
         AP("demo", "w") "spec: {rules: [{when: [{key: destination.port, values: [\"8080\"]}]}]}\n",
     .allow = true,
     .policy = "demo/w"},
    {.name = "when destination.ip",
     .policies = AP(
         "demo", "w") "spec: {rules: [{when: [{key: destination.ip, values: [198.18.1.11]}]}]}\n",
     .allow = true,
     .policy = "demo/w"},
    {.name = "when source.serviceAccount",
     .policies =
         AP("demo",
            "w") "spec: {rules: [{when: [{key: source.serviceAccount, values: [demo/client]}]}]}\n",
     .allow = true,
     .policy = "demo/w"},
    {.name = "when source.trustDomain",
     .policies = AP(
         "demo",
         "w") "spec: {rules: [{when: [{key: source.trustDomain, notValues: [cluster.local]}]}]}\n",
     .allow = false},
    {.name = "when remote.ip is HTTP-only: ALLOW dropped",
     .policies =
         AP("demo", "w") "spec: {rules: [{when: [{key: remote.ip, values: [198.18.1.10]}]}]}\n",
     .allow = false},

    // --- rejected policies never weaken enforcement (§9.8) ------------------------------
    {.name = "rejected ALLOW (bad CIDR) admits nothing on its workloads",
     .policies = AP("demo", "bad") "spec: {rules: [{from: [{source: {ipBlocks: [10.0.0/8]}}]}]}\n",
     .allow = false},
    {.name = "rejected ALLOW does not stop another ALLOW",
     .policies =
         AP("demo", "bad") "spec: {rules: [{from: [{source: {ipBlocks: [10.0.0/8]}}]}]}\n---\n" AP(
             "demo", "good") "spec: {rules: [{}]}\n",
     .allow = true,
     .policy = "demo/good"},
    {.name = "rejected DENY (unknown field) denies everything",
     .policies =
         AP("demo", "typo") "spec: {action: DENY, rules: [{from: [{source: {principal: [x]}}]}]}\n",
     .allow = false,
     .policy = "demo/typo",
     .reason_has = "failed validation"},
    {.name = "rejected policy with an unknown action denies everything",
     .policies = AP("demo", "act") "spec: {action: REJECT, rules: [{}]}\n",
     .allow = false,
     .policy = "demo/act"},
    {.name = "rejected DENY keeps its selector: other workloads unaffected",
     .policies = AP("demo", "typo") "spec: {selector: {matchLabels: {app: client}}, action: DENY, "
                                    "rules: [{to: [{operation: {prots: [\"1\"]}}]}]}\n",
     .allow = true},
    {.name = "rejected AUDIT has no effect",
     .policies = AP("demo", "aud") "spec: {action: AUDIT, rules: [{from: []}]}\n",
     .allow = true},
    {.name = "experimental Envoy keys are rejected (fail closed)",
     .policies = AP("demo", "exp") "spec: {action: DENY, rules: [{when: [{key: "
                                   "\"experimental.envoy.filters.a[b]\", values: [x]}]}]}\n",
     .principal = kFromOtherSleep,
     .allow = false,
     .policy = "demo/exp"},
    {.name = "DENY without rules is rejected and denies",
     .policies = AP("demo", "norules") "spec: {action: DENY}\n",
     .allow = false,
     .policy = "demo/norules"},

    // --- PeerAuthentication with policies (§3.3, §3.4) -----------------------------------
    {.name = "plaintext to a STRICT namespace is refused before policy",
     .policies = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: "
                 "strict, namespace: demo}\nspec: {mtls: {mode: STRICT}}\n---\n" AP(
                     "demo", "all") "spec: {rules: [{}]}\n",
     .principal = kPlaintext,
     .allow = false,
     .policy = "demo/strict",
     .reason_has = "STRICT"},
    {.name = "mTLS to a STRICT namespace goes on to policy",
     .policies = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: "
                 "strict, namespace: demo}\nspec: {mtls: {mode: STRICT}}\n---\n" AP(
                     "demo", "all") "spec: {rules: [{}]}\n",
     .allow = true,
     .policy = "demo/all"},
    {.name = "STRICT has priority over an ALLOW by ipBlocks",
     .policies =
         "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: strict, "
         "namespace: zmesh-system}\nspec: {mtls: {mode: STRICT}}\n---\n" AP(
             "demo", "ip") "spec: {rules: [{from: [{source: {ipBlocks: [198.18.1.10]}}]}]}\n",
     .principal = kPlaintext,
     .allow = false,
     .policy = "zmesh-system/strict"},
    {.name = "PERMISSIVE plaintext admitted by ipBlocks",
     .policies =
         "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p, "
         "namespace: demo}\nspec: {mtls: {mode: PERMISSIVE}}\n---\n" AP(
             "demo", "ip") "spec: {rules: [{from: [{source: {ipBlocks: [198.18.1.10]}}]}]}\n",
     .principal = kPlaintext,
     .allow = true,
     .policy = "demo/ip"},
    {.name = "PERMISSIVE plaintext has no identity for principals",
     .policies = AP("demo", "p") "spec: {rules: [{from: [{source: {principals: "
                                 "[cluster.local/ns/demo/sa/client]}}]}]}\n",
     .principal = kPlaintext,
     .allow = false},
    {.name = "port-level PERMISSIVE under STRICT admits plaintext on that port",
     .policies = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: "
                 "strict, namespace: demo}\nspec: {mtls: {mode: STRICT}}\n---\napiVersion: "
                 "security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: port, "
                 "namespace: demo}\nspec: {selector: {matchLabels: {app: server}}, portLevelMtls: "
                 "{\"8080\": {mode: PERMISSIVE}}}\n",
     .principal = kPlaintext,
     .allow = true},
    {.name = "port-level PERMISSIVE leaves other ports STRICT",
     .policies = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: "
                 "strict, namespace: demo}\nspec: {mtls: {mode: STRICT}}\n---\napiVersion: "
                 "security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: port, "
                 "namespace: demo}\nspec: {selector: {matchLabels: {app: server}}, portLevelMtls: "
                 "{\"8080\": {mode: PERMISSIVE}}}\n",
     .principal = kPlaintext,
     .port = 9090,
     .allow = false,
     .policy = "demo/strict"},

    // --- the zero-trust default (DESIGN §7, NIST AP-SR-3) --------------------------------
    {.name = "zero-trust: the same namespace is allowed",
     .policies = "",
     .zero_trust = true,
     .allow = true,
     .reason_has = "zero-trust default"},
    {.name = "zero-trust: another namespace is denied",
     .policies = "",
     .principal = kFromOtherSleep,
     .zero_trust = true,
     .allow = false,
     .reason_has = "zero-trust default admits only"},
    {.name = "zero-trust: plaintext is refused (STRICT by default)",
     .policies = "",
     .principal = kPlaintext,
     .zero_trust = true,
     .allow = false,
     .reason_has = "STRICT"},
    {.name = "zero-trust: an explicit ALLOW opens one cross-namespace path",
     .policies =
         AP("demo", "from-other") "spec: {rules: [{from: [{source: {namespaces: [other]}}]}]}\n",
     .principal = kFromOtherSleep,
     .zero_trust = true,
     .allow = true,
     .policy = "demo/from-other",
     .rule = 0},
    {.name = "zero-trust: a DENY still beats the same-namespace default",
     .policies = AP("demo", "no-client") "spec: {action: DENY, rules: [{from: [{source: "
                                         "{principals: [cluster.local/ns/demo/sa/client]}}]}]}\n",
     .zero_trust = true,
     .allow = false,
     .policy = "demo/no-client"},
    {.name = "zero-trust: an explicit PERMISSIVE re-admits plaintext to policy, which denies it",
     .policies = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p, "
                 "namespace: demo}\nspec: {mtls: {mode: PERMISSIVE}}\n",
     .principal = kPlaintext,
     .zero_trust = true,
     .allow = false,
     .reason_has = "zero-trust default admits only"},

    // --- L7 matching (the engine as the waypoint will call it) ---------------------------
    {.name = "L7 methods are case-sensitive",
     .policies = AP("demo", "m") "spec: {rules: [{to: [{operation: {methods: [get]}}]}]}\n",
     .l7 = true,
     .allow = false},
    {.name = "L7 methods exact",
     .policies = AP("demo", "m") "spec: {rules: [{to: [{operation: {methods: [GET, HEAD]}}]}]}\n",
     .l7 = true,
     .allow = true,
     .policy = "demo/m"},
    {.name = "L7 hosts are case-insensitive",
     .policies = AP("demo", "h") "spec: {rules: [{to: [{operation: {hosts: [Server.DEMO]}}]}]}\n",
     .l7 = true,
     .allow = true,
     .policy = "demo/h"},
    {.name = "L7 hosts: the port is part of the value",
     .policies = AP("demo", "h") "spec: {rules: [{to: [{operation: {hosts: [server.demo]}}]}]}\n",
     .l7 = true,
     .http = {.host = "server.demo:8080"},
     .allow = false},
    {.name = "L7 hosts prefix wildcard",
     .policies = AP("demo", "h") "spec: {rules: [{to: [{operation: {hosts: [\"*.demo\"]}}]}]}\n",
     .l7 = true,
     .allow = true,
     .policy = "demo/h"},
    {.name = "L7 paths exact",
     .policies = AP("demo", "p") "spec: {rules: [{to: [{operation: {paths: [/api/v1]}}]}]}\n",
     .l7 = true,
     .http = {.path = "/api/v1"},
     .allow = true,
     .policy = "demo/p"},
    {.name = "L7 paths prefix",
     .policies = AP("demo", "p") "spec: {rules: [{to: [{operation: {paths: [\"/api/*\"]}}]}]}\n",
     .l7 = true,
     .http = {.path = "/api/v1/users"},
     .allow = true,
     .policy = "demo/p"},
    {.name = "L7 path template {*} is one segment",
     .policies =
         AP("demo", "p") "spec: {rules: [{to: [{operation: {paths: [\"/store/{*}/cart\"]}}]}]}\n",
     .l7 = true,
     .http = {.path = "/store/a/b/cart"},
     .allow = false},
    {.name = "L7 path template {**} needs the trailing slash",
     .policies =
         AP("demo", "p") "spec: {rules: [{to: [{operation: {paths: [\"/allow/admin/{**}\"]}}]}]}\n",
     .l7 = true,
     .http = {.path = "/allow/admin"},
     .allow = false},
    {.name = "L7 path template {**} matches an empty remainder",
     .policies =
         AP("demo", "p") "spec: {rules: [{to: [{operation: {paths: [\"/allow/admin/{**}\"]}}]}]}\n",
     .l7 = true,
     .http = {.path = "/allow/admin/"},
     .allow = true,
     .policy = "demo/p"},
    {.name = "L7 DENY /allow/admin beats ALLOW /allow*",
     .policies =
         AP("demo", "allow") "spec: {rules: [{to: [{operation: {paths: "
                             "[\"/allow*\"]}}]}]}\n---\n" AP(
                                 "demo", "admin") "spec: {action: DENY, rules: [{to: [{operation: "
                                                  "{paths: [/allow/admin]}}]}]}\n",
     .l7 = true,
     .http = {.path = "/allow/admin"},
     .allow = false,
     .policy = "demo/admin"},
    {.name = "L7 notPaths",
     .policies =
         AP("demo", "p") "spec: {rules: [{to: [{operation: {notPaths: [\"/admin*\"]}}]}]}\n",
     .l7 = true,
     .http = {.path = "/admin/x"},
     .allow = false},
    {.name = "L7 header * matches a present empty header",
     .policies = AP(
         "demo",
         "hd") "spec: {rules: [{when: [{key: \"request.headers[x-token]\", values: [\"*\"]}]}]}\n",
     .l7 = true,
     .http = {.headers = {{"x-token", ""}}},
     .allow = true,
     .policy = "demo/hd"},
    {.name = "L7 repeated headers are joined with a comma",
     .policies = AP("demo", "hd") "spec: {rules: [{when: [{key: \"request.headers[x-group]\", "
                                  "values: [\"a,b\"]}]}]}\n",
     .l7 = true,
     .http = {.headers = {{"x-group", "a"}, {"X-Group", "b"}}},
     .allow = true,
     .policy = "demo/hd"},
    {.name = "L7 header names are case-insensitive",
     .policies = AP(
         "demo",
         "hd") "spec: {rules: [{when: [{key: \"request.headers[X-User]\", values: [alice]}]}]}\n",
     .l7 = true,
     .http = {.headers = {{"x-user", "alice"}}},
     .allow = true,
     .policy = "demo/hd"},
    {.name = "L7 notValues on an absent header is satisfied",
     .policies = AP("demo", "hd") "spec: {rules: [{when: [{key: \"request.headers[x-evil]\", "
                                  "notValues: [\"1\"]}]}]}\n",
     .l7 = true,
     .allow = true,
     .policy = "demo/hd"},
    {.name = "L7 requestPrincipals [*] needs a verified token",
     .policies =
         AP("demo", "rp") "spec: {rules: [{from: [{source: {requestPrincipals: [\"*\"]}}]}]}\n",
     .l7 = true,
     .allow = false},
    {.name = "L7 requestPrincipals [*] needs a subject",
     .policies =
         AP("demo", "rp") "spec: {rules: [{from: [{source: {requestPrincipals: [\"*\"]}}]}]}\n",
     .l7 = true,
     .jwt = Jwt{.sub = ""},
     .allow = false},
    {.name = "L7 requestPrincipals iss/sub exact",
     .policies = AP("demo", "rp") "spec: {rules: [{from: [{source: {requestPrincipals: "
                                  "[\"https://idp.example.com/alice\"]}}]}]}\n",
     .l7 = true,
     .jwt = Jwt{},
     .allow = true,
     .policy = "demo/rp"},
    {.name = "L7 requestPrincipals URL-issuer prefix does not match a deeper issuer",
     .policies = AP("demo", "rp") "spec: {rules: [{from: [{source: {requestPrincipals: "
                                  "[\"https://idp.example.com/*\"]}}]}]}\n",
     .l7 = true,
     .jwt = Jwt{.iss = "https://idp.example.com/tenant"},
     .allow = false},
    {.name = "L7 notRequestPrincipals [*] matches a request without a token",
     .policies = AP("demo", "need") "spec: {action: DENY, rules: [{from: [{source: "
                                    "{notRequestPrincipals: [\"*\"]}}]}]}\n",
     .l7 = true,
     .allow = false,
     .policy = "demo/need"},
    {.name = "L7 nested claim",
     .policies = AP("demo", "c") "spec: {rules: [{when: [{key: "
                                 "\"request.auth.claims[realm][role]\", values: [admin]}]}]}\n",
     .l7 = true,
     .jwt = Jwt{.claims = {{"realm.role", {"admin"}}}},
     .allow = true,
     .policy = "demo/c"},
    {.name = "L7 list claim matches any element",
     .policies = AP("demo", "c") "spec: {rules: [{when: [{key: \"request.auth.claims[groups]\", "
                                 "values: [\"dev*\"]}]}]}\n",
     .l7 = true,
     .jwt = Jwt{.claims = {{"groups", {"ops", "developers"}}}},
     .allow = true,
     .policy = "demo/c"},
    {.name = "L7 request.auth.audiences",
     .policies = AP(
         "demo", "a") "spec: {rules: [{when: [{key: request.auth.audiences, values: [web]}]}]}\n",
     .l7 = true,
     .jwt = Jwt{.aud = {"api", "web"}},
     .allow = true,
     .policy = "demo/a"},
    {.name = "L7 remoteIpBlocks use the original client address",
     .policies = AP(
         "demo", "r") "spec: {rules: [{from: [{source: {remoteIpBlocks: [203.0.113.0/24]}}]}]}\n",
     .l7 = true,
     .http = {.remote_ip = "203.0.113.7"},
     .allow = true,
     .policy = "demo/r"},
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class ConformanceTest : public ::testing::TestWithParam<Case> {};

TEST_P(ConformanceTest, Decides) {
  const Case& c = GetParam();
  Outcome o = Evaluate(c);
  EXPECT_EQ(o.allowed, c.allow) << c.name << ": " << o.reason;
  EXPECT_EQ(o.policy, c.policy) << c.name << ": " << o.reason;
  if (c.rule >= 0) {
    EXPECT_EQ(o.rule, std::optional<int>(c.rule)) << c.name;
  } else if (std::string_view(c.policy).empty()) {
    EXPECT_EQ(o.rule, std::nullopt) << c.name << ": " << o.reason;
  }
  EXPECT_NE(o.reason.find(c.reason_has), std::string::npos) << c.name << ": " << o.reason;
}

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  std::string out;
  for (char ch : std::string(info.param.name)) {
    out += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  }
  return StrCat(info.index, "_", out);
}

INSTANTIATE_TEST_SUITE_P(Istio, ConformanceTest, ::testing::ValuesIn(kCases), CaseName);

TEST(ConformanceSuite, HasAtLeastEightyCases) { EXPECT_GE(std::size(kCases), 80u); }

TEST(ConformanceSuite, DryRunDenyIsReported) {
  Case c{.name = "dry-run report",
         .policies = AP_DRY("demo", "deny-dry", "true") "spec: {action: DENY, rules: [{}]}\n"};
  Outcome o = Evaluate(c);
  EXPECT_TRUE(o.allowed);
  ASSERT_EQ(o.dry_run.size(), 1u);
  EXPECT_NE(o.dry_run[0].find("dry-run DENY demo/deny-dry rule 0 would deny"), std::string::npos)
      << o.dry_run[0];
}

}  // namespace
}  // namespace zm::authz
