// PeerAuthentication effective mode (policy-semantics §3.2, §8.7, §9.3; DESIGN §7): one named
// case per rule, from manifests as an operator would write them. Each case gives the policies,
// the workload and its port, and the mode, level and policy that must decide.
#include "common/mesh/peer_authentication.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/k8s/manifest.h"
#include "common/mesh/workload.h"

namespace zm::mesh {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr std::string_view kRoot = "zmesh-system";

// demo/web {app: web, tier: front}, demo/db {app: db}, other/web {app: web},
// zmesh-system/ctl {app: ctl}; web declares http=8080 and grpc=9090.
constexpr char kWorkloads[] = R"(
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: demo, labels: {app: web, tier: front}}
spec:
  containers: [{name: app, ports: [{name: http, containerPort: 8080}, {name: grpc, containerPort: 9090}]}]
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: demo, labels: {app: db}}
status: {podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: other, labels: {app: web}}
status: {podIP: 10.0.1.1}
---
apiVersion: v1
kind: Pod
metadata: {name: ctl, namespace: zmesh-system, labels: {app: ctl}}
status: {podIP: 10.0.9.1}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec: {selector: {app: web}, clusterIP: 10.96.0.1, ports: [{name: http, port: 80, targetPort: 8080}]}
)";

// A PeerAuthentication document. `ts` empty: no creationTimestamp.
std::string Pa(std::string_view ns, std::string_view name, std::string_view spec,
               std::string_view ts = "") {
  std::string meta = "{name: " + std::string(name) + ", namespace: " + std::string(ns);
  if (!ts.empty()) meta += ", creationTimestamp: '" + std::string(ts) + "'";
  return "---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: " + meta +
         "}\nspec: " + std::string(spec) + "\n";
}

Snapshot SnapshotOf(const std::string& policies, bool expect_rejected = false) {
  auto parsed = k8s::ParseManifest(std::string(kWorkloads) + policies, "t.yaml");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  if (!expect_rejected) {
    EXPECT_THAT(parsed->errors, IsEmpty());
  }
  k8s::ManifestSnapshot objects;
  objects.pods = parsed->pods;
  objects.services = parsed->services;
  objects.peer_authentications = parsed->peer_authentications;
  objects.rejected_peer_authentications = parsed->rejected_peer_authentications;
  objects.errors = parsed->errors;
  return BuildSnapshot(objects);
}

struct Case {
  const char* name;
  std::string policies;
  const char* workload;  // "ns/name"
  uint16_t port;
  MtlsMode mode;
  MtlsLevel level;
  const char* policy;  // "ns/name" that decided; "" for the default
  DefaultPolicy default_policy = DefaultPolicy::kUpstream;
  bool rejected = false;  // the manifests hold a rejected policy
  std::string_view root = kRoot;
};

// Test names, not bytes, in failure messages.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

constexpr auto kStrict = MtlsMode::kStrict;
constexpr auto kPermissive = MtlsMode::kPermissive;
constexpr auto kDisable = MtlsMode::kDisable;
constexpr auto kDefault = MtlsLevel::kDefault;
constexpr auto kMesh = MtlsLevel::kMesh;
constexpr auto kNs = MtlsLevel::kNamespace;
constexpr auto kWl = MtlsLevel::kWorkload;
constexpr auto kPort = MtlsLevel::kPort;
constexpr auto kRejected = MtlsLevel::kRejected;
constexpr auto kZeroTrust = DefaultPolicy::kZeroTrust;
constexpr auto kUpstream = DefaultPolicy::kUpstream;

const std::string kMeshStrict = Pa("zmesh-system", "default", "{mtls: {mode: STRICT}}");
const std::string kMeshPermissive = Pa("zmesh-system", "default", "{mtls: {mode: PERMISSIVE}}");
const std::string kNsStrict = Pa("demo", "ns", "{mtls: {mode: STRICT}}");
const std::string kNsPermissive = Pa("demo", "ns", "{mtls: {mode: PERMISSIVE}}");
const std::string kWebSel = "selector: {matchLabels: {app: web}}";

class MtlsMatrix : public ::testing::TestWithParam<Case> {};

TEST_P(MtlsMatrix, EffectiveMode) {
  const Case& c = GetParam();
  Snapshot snap = SnapshotOf(c.policies, c.rejected);
  EXPECT_EQ(snap.rejected_peer_authentications.empty(), !c.rejected);
  std::string_view key(c.workload);
  const Workload* w =
      snap.FindWorkload(key.substr(0, key.find('/')), key.substr(key.find('/') + 1));
  ASSERT_NE(w, nullptr) << c.workload;
  MtlsDecision d = ExplainMtlsMode(snap, *w, c.port, c.root, c.default_policy);
  std::string trace = ::testing::PrintToString(d.trace);
  EXPECT_EQ(MtlsModeName(d.mode), MtlsModeName(c.mode)) << trace;
  EXPECT_EQ(MtlsLevelName(d.level), MtlsLevelName(c.level)) << trace;
  EXPECT_EQ(d.policy, c.policy) << trace;
  EXPECT_EQ(EffectiveMtlsMode(snap, *w, c.port, c.root, c.default_policy), d.mode);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MtlsMatrix,
    ::testing::Values(
        // --- the default ---
        Case{"NoPolicyIsPermissive", "", "demo/web", 8080, kPermissive, kDefault, ""},
        Case{"ZeroTrustDefaultIsStrict", "", "demo/web", 8080, kStrict, kDefault, "", kZeroTrust},
        Case{"ZeroTrustMeshUnsetStaysStrict", Pa("zmesh-system", "default", "{}"), "demo/web", 8080,
             kStrict, kDefault, "", kZeroTrust},
        Case{"ZeroTrustExplicitNamespacePermissiveWins", kNsPermissive, "demo/web", 8080,
             kPermissive, kNs, "demo/ns", kZeroTrust},
        Case{"ZeroTrustPortDisableHonoured",
             Pa("demo", "wl", "{" + kWebSel + ", portLevelMtls: {8080: {mode: DISABLE}}}"),
             "demo/web", 8080, kDisable, kPort, "demo/wl", kZeroTrust},
        Case{"ZeroTrustOtherPortStrict",
             Pa("demo", "wl", "{" + kWebSel + ", portLevelMtls: {8080: {mode: DISABLE}}}"),
             "demo/web", 9090, kStrict, kDefault, "", kZeroTrust},
        // --- mesh level ---
        Case{"MeshStrict", kMeshStrict, "demo/web", 8080, kStrict, kMesh, "zmesh-system/default"},
        Case{"MeshPermissive", kMeshPermissive, "demo/web", 8080, kPermissive, kMesh,
             "zmesh-system/default"},
        Case{"MeshDisable", Pa("zmesh-system", "default", "{mtls: {mode: DISABLE}}"), "other/web",
             8080, kDisable, kMesh, "zmesh-system/default"},
        Case{"MeshUnsetInheritsDefault", Pa("zmesh-system", "default", "{mtls: {mode: UNSET}}"),
             "demo/web", 8080, kPermissive, kDefault, ""},
        Case{"MeshEmptySelectorIsMeshWide",
             Pa("zmesh-system", "default", "{selector: {matchLabels: {}}, mtls: {mode: STRICT}}"),
             "other/web", 1, kStrict, kMesh, "zmesh-system/default"},
        Case{"MeshAppliesToRootNamespaceWorkloads", kMeshStrict, "zmesh-system/ctl", 8080, kStrict,
             kMesh, "zmesh-system/default"},
        Case{"RootNamespaceIsConfigurable", Pa("istio-system", "default", "{mtls: {mode: STRICT}}"),
             "demo/web", 8080, kStrict, kMesh, "istio-system/default", kUpstream, false,
             "istio-system"},
        Case{"OtherRootMakesItAPlainNamespacePolicy",
             Pa("istio-system", "default", "{mtls: {mode: STRICT}}"), "demo/web", 8080, kPermissive,
             kDefault, ""},
        // --- namespace level ---
        Case{"NamespaceOverridesMeshStrictToPermissive", kMeshStrict + kNsPermissive, "demo/web",
             8080, kPermissive, kNs, "demo/ns"},
        Case{"NamespaceOverridesMeshPermissiveToStrict", kMeshPermissive + kNsStrict, "demo/web",
             8080, kStrict, kNs, "demo/ns"},
        Case{"NamespaceDisableOverMeshStrict",
             kMeshStrict + Pa("demo", "ns", "{mtls: {mode: DISABLE}}"), "demo/db", 8080, kDisable,
             kNs, "demo/ns"},
        Case{"NamespaceUnsetInheritsMesh", kMeshStrict + Pa("demo", "ns", "{mtls: {}}"), "demo/web",
             8080, kStrict, kMesh, "zmesh-system/default"},
        Case{"NamespacePolicyStaysInItsNamespace", kNsStrict, "other/web", 8080, kPermissive,
             kDefault, ""},
        Case{"NamespaceEmptySelectorIsNamespaceWide",
             Pa("demo", "ns", "{selector: {}, mtls: {mode: STRICT}}"), "demo/db", 8080, kStrict,
             kNs, "demo/ns"},
        // --- workload level ---
        Case{"WorkloadOverridesNamespace",
             kNsStrict + Pa("demo", "wl", "{" + kWebSel + ", mtls: {mode: PERMISSIVE}}"),
             "demo/web", 8080, kPermissive, kWl, "demo/wl"},
        Case{"WorkloadStrictOverNamespaceDisable",
             Pa("demo", "ns", "{mtls: {mode: DISABLE}}") +
                 Pa("demo", "wl", "{" + kWebSel + ", mtls: {mode: STRICT}}"),
             "demo/web", 8080, kStrict, kWl, "demo/wl"},
        Case{"WorkloadDisableOverMeshStrict",
             kMeshStrict + Pa("demo", "wl", "{" + kWebSel + ", mtls: {mode: DISABLE}}"), "demo/web",
             8080, kDisable, kWl, "demo/wl"},
        Case{"WorkloadUnsetInheritsNamespace", kNsStrict + Pa("demo", "wl", "{" + kWebSel + "}"),
             "demo/web", 8080, kStrict, kNs, "demo/ns"},
        Case{"WorkloadUnsetAllTheWayIsDefault", Pa("demo", "wl", "{" + kWebSel + "}"), "demo/web",
             8080, kPermissive, kDefault, ""},
        Case{"WorkloadSelectorNotMatching",
             kNsPermissive + Pa("demo", "wl", "{" + kWebSel + ", mtls: {mode: STRICT}}"), "demo/db",
             8080, kPermissive, kNs, "demo/ns"},
        Case{"WorkloadSelectorSubsetOfLabelsMatches",
             Pa("demo", "wl", "{selector: {matchLabels: {tier: front}}, mtls: {mode: STRICT}}"),
             "demo/web", 8080, kStrict, kWl, "demo/wl"},
        Case{"WorkloadSelectorNeedsEveryLabel",
             Pa("demo", "wl",
                "{selector: {matchLabels: {app: web, version: v2}}, mtls: {mode: STRICT}}"),
             "demo/web", 8080, kPermissive, kDefault, ""},
        Case{"WorkloadSelectorNeverCrossesNamespaces",
             Pa("other", "wl", "{" + kWebSel + ", mtls: {mode: STRICT}}"), "demo/web", 8080,
             kPermissive, kDefault, ""},
        Case{"RootSelectorPolicyIgnored",
             Pa("zmesh-system", "wl", "{" + kWebSel + ", mtls: {mode: STRICT}}"), "demo/web", 8080,
             kPermissive, kDefault, ""},
        Case{"RootSelectorPolicyIgnoredForRootWorkloads",
             kMeshPermissive + Pa("zmesh-system", "ctl",
                                  "{selector: {matchLabels: {app: ctl}}, mtls: {mode: "
                                  "STRICT}}"),
             "zmesh-system/ctl", 8080, kPermissive, kMesh, "zmesh-system/default"},
        Case{"RootSelectorDisableDoesNotWeakenMesh",
             kMeshStrict + Pa("zmesh-system", "wl", "{" + kWebSel + ", mtls: {mode: DISABLE}}"),
             "demo/web", 8080, kStrict, kMesh, "zmesh-system/default"},
        // --- port level (keys are workload ports) ---
        Case{"PortOverridesWorkload",
             Pa("demo", "wl",
                "{" + kWebSel +
                    ", mtls: {mode: STRICT}, portLevelMtls: {8080: {mode: PERMISSIVE}}}"),
             "demo/web", 8080, kPermissive, kPort, "demo/wl"},
        Case{"PortNotListedFallsBackToWorkload",
             Pa("demo", "wl",
                "{" + kWebSel +
                    ", mtls: {mode: STRICT}, portLevelMtls: {8080: {mode: PERMISSIVE}}}"),
             "demo/web", 9090, kStrict, kWl, "demo/wl"},
        Case{"PortNotListedFallsBackToNamespace",
             kNsPermissive +
                 Pa("demo", "wl", "{" + kWebSel + ", portLevelMtls: {8080: {mode: STRICT}}}"),
             "demo/web", 9090, kPermissive, kNs, "demo/ns"},
        Case{
            "PortUnsetInheritsWorkload",
            Pa("demo", "wl",
               "{" + kWebSel + ", mtls: {mode: PERMISSIVE}, portLevelMtls: {8080: {mode: UNSET}}}"),
            "demo/web", 8080, kPermissive, kWl, "demo/wl"},
        Case{"PortDisableUnderStrictNamespaceWithWorkloadUnset",  // §9.3
             kNsStrict +
                 Pa("demo", "wl", "{" + kWebSel + ", portLevelMtls: {8080: {mode: DISABLE}}}"),
             "demo/web", 8080, kDisable, kPort, "demo/wl"},
        Case{"PortPermissiveUnderStrictMesh",
             kMeshStrict +
                 Pa("demo", "wl", "{" + kWebSel + ", portLevelMtls: {8080: {mode: PERMISSIVE}}}"),
             "demo/web", 8080, kPermissive, kPort, "demo/wl"},
        Case{"PortStrictUnderPermissiveMesh",
             kMeshPermissive +
                 Pa("demo", "wl", "{" + kWebSel + ", portLevelMtls: {8080: {mode: STRICT}}}"),
             "demo/web", 8080, kStrict, kPort, "demo/wl"},
        Case{"PortStrictUnderWorkloadDisable",
             Pa("demo", "wl",
                "{" + kWebSel + ", mtls: {mode: DISABLE}, portLevelMtls: {9090: {mode: STRICT}}}"),
             "demo/web", 9090, kStrict, kPort, "demo/wl"},
        Case{
            "PortKeyIsTheTargetPortNotTheServicePort",  // Service web: 80 -> 8080
            kNsStrict + Pa("demo", "wl", "{" + kWebSel + ", portLevelMtls: {80: {mode: DISABLE}}}"),
            "demo/web", 8080, kStrict, kNs, "demo/ns"},
        // --- several policies at one level: the oldest counts ---
        Case{"TwoMeshPoliciesOldestWins",
             Pa("zmesh-system", "a", "{mtls: {mode: STRICT}}", "2026-01-02T00:00:00Z") +
                 Pa("zmesh-system", "b", "{mtls: {mode: DISABLE}}", "2026-01-01T00:00:00Z"),
             "demo/web", 8080, kDisable, kMesh, "zmesh-system/b"},
        Case{"TwoNamespacePoliciesOldestWins",
             Pa("demo", "a", "{mtls: {mode: PERMISSIVE}}", "2026-01-01T00:00:01Z") +
                 Pa("demo", "b", "{mtls: {mode: STRICT}}", "2026-01-01T00:00:00Z"),
             "demo/web", 8080, kStrict, kNs, "demo/b"},
        Case{"TwoWorkloadPoliciesOldestWins",
             Pa("demo", "a", "{" + kWebSel + ", mtls: {mode: STRICT}}", "2026-03-01T00:00:00Z") +
                 Pa("demo", "b", "{selector: {matchLabels: {tier: front}}, mtls: {mode: DISABLE}}",
                    "2026-02-01T00:00:00Z"),
             "demo/web", 8080, kDisable, kWl, "demo/b"},
        Case{"SameTimestampNameDecides",
             Pa("demo", "beta", "{mtls: {mode: STRICT}}", "2026-01-01T00:00:00Z") +
                 Pa("demo", "alpha", "{mtls: {mode: PERMISSIVE}}", "2026-01-01T00:00:00Z"),
             "demo/web", 8080, kPermissive, kNs, "demo/alpha"},
        Case{"SubSecondTimestampsCompare",
             Pa("demo", "a", "{mtls: {mode: STRICT}}", "2026-01-01T00:00:00.2Z") +
                 Pa("demo", "b", "{mtls: {mode: DISABLE}}", "2026-01-01T00:00:00.1Z"),
             "demo/web", 8080, kDisable, kNs, "demo/b"},
        Case{"TimezoneOffsetsCompareAsInstants",
             Pa("demo", "a", "{mtls: {mode: STRICT}}", "2026-01-01T01:30:00+02:00") +
                 Pa("demo", "b", "{mtls: {mode: DISABLE}}", "2026-01-01T00:00:00Z"),
             "demo/web", 8080, kStrict, kNs, "demo/a"},
        Case{"NoTimestampCountsAsOldest",
             Pa("demo", "z", "{mtls: {mode: DISABLE}}") +
                 Pa("demo", "a", "{mtls: {mode: STRICT}}", "2020-01-01T00:00:00Z"),
             "demo/web", 8080, kDisable, kNs, "demo/z"},
        Case{"OldestWorkloadPolicyUnsetDoesNotConsultNewer",
             kNsPermissive + Pa("demo", "old", "{" + kWebSel + "}", "2026-01-01T00:00:00Z") +
                 Pa("demo", "new", "{" + kWebSel + ", mtls: {mode: STRICT}}",
                    "2026-06-01T00:00:00Z"),
             "demo/web", 8080, kPermissive, kNs, "demo/ns"},
        Case{"PortLevelOfANewerWorkloadPolicyIgnored",
             Pa("demo", "old", "{" + kWebSel + ", mtls: {mode: STRICT}}", "2026-01-01T00:00:00Z") +
                 Pa("demo", "new", "{" + kWebSel + ", portLevelMtls: {8080: {mode: DISABLE}}}",
                    "2026-06-01T00:00:00Z"),
             "demo/web", 8080, kStrict, kWl, "demo/old"},
        // --- rejected policies fail closed (§9.8) ---
        Case{"RejectedNamespacePolicyFailsClosed",
             kNsPermissive + Pa("demo", "typo", "{mtls: {mode: permissive}}"), "demo/db", 8080,
             kStrict, kRejected, "demo/typo", kUpstream, true},
        Case{"RejectedBeatsWorkloadAndPortExceptions",
             Pa("demo", "typo", "{mtls: {mode: STRICT}, mtlss: {}}") +
                 Pa("demo", "wl",
                    "{" + kWebSel +
                        ", mtls: {mode: DISABLE}, portLevelMtls: {8080: {mode: DISABLE}}}"),
             "demo/web", 8080, kStrict, kRejected, "demo/typo", kUpstream, true},
        Case{"RejectedWorkloadPolicyCoversSelected",
             Pa("demo", "wl", "{" + kWebSel + ", mtls: {mode: DISABLED}}"), "demo/web", 8080,
             kStrict, kRejected, "demo/wl", kUpstream, true},
        Case{"RejectedWorkloadPolicyLeavesOthers",
             Pa("demo", "wl", "{" + kWebSel + ", mtls: {mode: DISABLED}}"), "demo/db", 8080,
             kPermissive, kDefault, "", kUpstream, true},
        Case{"RejectedWithBrokenSelectorCoversNamespace",
             Pa("demo", "wl", "{selector: {matchLabel: {app: web}}, mtls: {mode: DISABLE}}"),
             "demo/db", 8080, kStrict, kRejected, "demo/wl", kUpstream, true},
        Case{"RejectedMeshPolicyCoversEveryNamespace",
             Pa("zmesh-system", "default", "{mtls: {mode: PERMISIVE}}"), "other/web", 8080, kStrict,
             kRejected, "zmesh-system/default", kUpstream, true},
        Case{"RejectedRootSelectorPolicyIgnoredAsAValidOne",
             Pa("zmesh-system", "wl", "{" + kWebSel + ", mtls: {mode: PERMISIVE}}"), "demo/web",
             8080, kPermissive, kDefault, "", kUpstream, true},
        Case{"RejectedRootBrokenSelectorCoversMesh",
             Pa("zmesh-system", "wl", "{selector: {app: web}, mtls: {mode: DISABLE}}"), "other/web",
             8080, kStrict, kRejected, "zmesh-system/wl", kUpstream, true},
        Case{"RejectedPortLevelWithoutSelectorFailsClosed",
             Pa("demo", "ns", "{mtls: {mode: PERMISSIVE}, portLevelMtls: {8080: {mode: DISABLE}}}"),
             "demo/web", 8080, kStrict, kRejected, "demo/ns", kUpstream, true},
        Case{"RejectedTargetRefsFailsClosed",
             Pa("demo", "ns",
                "{targetRefs: [{kind: Service, group: '', name: web}], mtls: {mode: "
                "DISABLE}}"),
             "demo/web", 8080, kStrict, kRejected, "demo/ns", kUpstream, true},
        Case{"RejectedInAnotherNamespaceDoesNotApply", Pa("other", "ns", "{mtls: {mode: OFF}}"),
             "demo/web", 8080, kPermissive, kDefault, "", kUpstream, true},
        Case{"RejectedUnderZeroTrustStillStrict",
             kNsPermissive + Pa("demo", "bad", "{mtls: {mode: NONE}}"), "demo/web", 8080, kStrict,
             kRejected, "demo/bad", kZeroTrust, true}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

TEST(MtlsMode, PlaintextAllowedAtTheNodeTunnel) {
  // §3.3: DISABLE behaves as PERMISSIVE at the tunnel; only STRICT rejects plaintext.
  EXPECT_FALSE(PlaintextAllowed(MtlsMode::kStrict));
  EXPECT_TRUE(PlaintextAllowed(MtlsMode::kPermissive));
  EXPECT_TRUE(PlaintextAllowed(MtlsMode::kDisable));
  EXPECT_EQ(MtlsModeName(MtlsMode::kDisable), "DISABLE");
  EXPECT_EQ(MtlsLevelName(MtlsLevel::kPort), "port");
  EXPECT_EQ(MtlsLevelName(MtlsLevel::kRejected), "rejected");
}

TEST(ExplainMtlsMode, TraceSaysWhatWasIgnoredAndWhy) {
  Snapshot snap = SnapshotOf(
      kMeshStrict + Pa("demo", "a", "{mtls: {mode: PERMISSIVE}}", "2026-01-01T00:00:00Z") +
      Pa("demo", "b", "{mtls: {mode: STRICT}}", "2026-02-01T00:00:00Z") +
      Pa("zmesh-system", "sel", "{" + kWebSel + ", mtls: {mode: DISABLE}}") +
      Pa("demo", "wl",
         "{" + kWebSel + ", portLevelMtls: {8080: {mode: UNSET}, 9090: {mode: STRICT}}}"));
  const Workload* web = snap.FindWorkload("demo", "web");
  ASSERT_NE(web, nullptr);
  MtlsDecision d = ExplainMtlsMode(snap, *web, 8080, kRoot);
  EXPECT_EQ(d.mode, MtlsMode::kPermissive);
  EXPECT_EQ(d.level, MtlsLevel::kNamespace);
  EXPECT_EQ(d.policy, "demo/a");
  EXPECT_THAT(d.trace,
              ::testing::ElementsAre(
                  "default: PERMISSIVE (upstream default)",
                  "demo/b: ignored, demo/a is an older namespace-wide PeerAuthentication (only "
                  "the oldest counts)",
                  "zmesh-system/sel: ignored, a PeerAuthentication with a selector in the root "
                  "namespace never applies",
                  "mesh zmesh-system/default: STRICT", "namespace demo/a: PERMISSIVE",
                  "workload demo/wl: UNSET, inherits PERMISSIVE",
                  "port 8080 of demo/wl: UNSET, inherits PERMISSIVE"));
  EXPECT_EQ(ExplainMtlsMode(snap, *web, 9090, kRoot).level, MtlsLevel::kPort);
  // Several namespace-wide policies are legal but worth a warning.
  EXPECT_THAT(snap.warnings, ::testing::Contains(HasSubstr(
                                 "namespace demo: 2 PeerAuthentications without a selector; only "
                                 "the oldest, a, applies (ignored: b)")));
}

TEST(ExplainMtlsMode, RejectedTraceNamesTheError) {
  Snapshot snap = SnapshotOf(Pa("demo", "typo", "{mtls: {mode: strict}}"), true);
  const Workload* web = snap.FindWorkload("demo", "web");
  ASSERT_NE(web, nullptr);
  MtlsDecision d = ExplainMtlsMode(snap, *web, 8080, kRoot);
  ASSERT_EQ(d.trace.size(), 2u);
  EXPECT_THAT(d.trace[1], HasSubstr("demo/typo: rejected (t.yaml: document 6 (PeerAuthentication "
                                    "demo/typo): spec.mtls.mode: unknown mode \"strict\""));
  EXPECT_THAT(d.trace[1], HasSubstr("every port is STRICT (fail closed)"));
  ASSERT_EQ(snap.rejected_peer_authentications.size(), 1u);
  EXPECT_EQ(snap.rejected_peer_authentications[0].source, "t.yaml:doc6");
}

TEST(BuildSnapshot, PeerAuthenticationsTranslatedAndOrderedOldestFirst) {
  Snapshot snap = SnapshotOf(Pa("demo", "b", "{mtls: {mode: STRICT}}", "2026-01-01T00:00:00Z") +
                             Pa("demo", "a",
                                "{" + kWebSel +
                                    ", mtls: {mode: DISABLE}, portLevelMtls: {8080: {mode: "
                                    "PERMISSIVE}, 9090: {}}}",
                                "2026-02-01T00:00:00Z") +
                             Pa("alpha", "x", "{}"));
  ASSERT_EQ(snap.peer_authentications.size(), 3u);
  EXPECT_EQ(snap.peer_authentications[0].key(), "alpha/x");
  EXPECT_EQ(snap.peer_authentications[1].key(), "demo/b");
  const PeerAuthentication& a = snap.peer_authentications[2];
  EXPECT_EQ(a.key(), "demo/a");
  EXPECT_EQ(a.mode, MtlsMode::kDisable);
  EXPECT_EQ(a.selector.at("app"), "web");
  EXPECT_EQ(a.port_level.at(8080), MtlsMode::kPermissive);
  EXPECT_EQ(a.port_level.at(9090), std::nullopt);
  EXPECT_EQ(a.source, "t.yaml:doc7");
  EXPECT_EQ(snap.peer_authentications[0].mode, std::nullopt);
  EXPECT_EQ(snap.peer_authentications[0].creation_time_ns, std::nullopt);
}

TEST(BuildSnapshot, WarnsWhenSeveralPoliciesSelectOneWorkload) {
  Snapshot snap = SnapshotOf(
      Pa("demo", "a", "{" + kWebSel + ", mtls: {mode: STRICT}}", "2026-01-01T00:00:00Z") +
      Pa("demo", "b", "{selector: {matchLabels: {tier: front}}, mtls: {mode: DISABLE}}",
         "2026-02-01T00:00:00Z"));
  EXPECT_THAT(snap.warnings,
              ::testing::ElementsAre("workload demo/web: selected by 2 PeerAuthentications; only "
                                     "the oldest, a, applies (ignored: b)"));
}

}  // namespace
}  // namespace zm::mesh
