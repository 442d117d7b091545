// The enrollment decision table: one named case per reason a pod is or is not enrolled,
// from manifests as an operator would write them.
#include "agent/enrollment.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/k8s/manifest.h"

namespace zm::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kNamespaces[] = R"(
apiVersion: v1
kind: Namespace
metadata: {name: mesh, labels: {zmesh.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Namespace
metadata: {name: plain}
---
apiVersion: v1
kind: Namespace
metadata: {name: sidecar, labels: {zmesh.io/dataplane-mode: sidecar}}
)";

// A pod in `ns` on node-a with a netns and an IP; `extra` is spliced into metadata, and
// `spec`/`status` replace the defaults when given.
std::string Pod(std::string_view name, std::string_view ns, std::string_view extra_metadata = "",
                std::string_view spec = "{nodeName: node-a}",
                std::string_view status = "{phase: Running, podIP: 10.0.0.5}",
                std::string_view annotations = "{zmesh.io/netns: zm-x}") {
  return "---\napiVersion: v1\nkind: Pod\nmetadata: {name: " + std::string(name) +
         ", namespace: " + std::string(ns) + ", annotations: " + std::string(annotations) +
         std::string(extra_metadata) + "}\nspec: " + std::string(spec) +
         "\nstatus: " + std::string(status) + "\n";
}

mesh::Snapshot SnapshotOf(const std::string& pods) {
  auto parsed = k8s::ParseManifest(std::string(kNamespaces) + pods, "t.yaml");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(parsed->errors, ::testing::IsEmpty());
  k8s::ManifestSnapshot objects;
  objects.namespaces = parsed->namespaces;
  objects.pods = parsed->pods;
  return mesh::BuildSnapshot(objects);
}

struct Case {
  const char* name;
  std::string pod;  // one pod named "p"
  EnrollReason reason;
  const char* detail;  // a substring of the human sentence
};

class EnrollmentTable : public ::testing::TestWithParam<Case> {};

TEST_P(EnrollmentTable, Decides) {
  const Case& c = GetParam();
  mesh::Snapshot snap = SnapshotOf(c.pod);
  ASSERT_EQ(snap.workloads.size() + snap.rejected.size(), 1u);
  const std::string ns = snap.workloads.empty() ? snap.rejected[0].ns : snap.workloads[0].ns;
  auto explained = ExplainEnrollment(snap, "node-a", ns, "p");
  ASSERT_TRUE(explained.has_value());
  EXPECT_EQ(explained->reason, c.reason) << EnrollReasonName(explained->reason) << ": "
                                         << explained->detail;
  EXPECT_EQ(explained->enrolled, c.reason == EnrollReason::kEnrolled);
  EXPECT_THAT(explained->detail, HasSubstr(c.detail));
  EXPECT_EQ(explained->workload.has_value(), snap.rejected.empty());

  // DecideEnrollment agrees, and lists the pod only when it is on this node.
  std::vector<EnrollmentDecision> all = DecideEnrollment(snap, "node-a");
  if (c.reason == EnrollReason::kNotOnThisNode) {
    EXPECT_TRUE(all.empty());
  } else {
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].reason, c.reason);
    EXPECT_EQ(all[0].detail, explained->detail);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, EnrollmentTable,
    ::testing::Values(
        Case{"LabelledNamespace", Pod("p", "mesh"), EnrollReason::kEnrolled,
             "enrolled as spiffe://cluster.local/ns/mesh/sa/default"},
        Case{"UnlabelledNamespace", Pod("p", "plain"), EnrollReason::kNamespaceNotLabelled,
             "namespace plain is not labelled zmesh.io/dataplane-mode=ambient"},
        Case{"NamespaceLabelNotAmbient", Pod("p", "sidecar"), EnrollReason::kNamespaceModeNotAmbient,
             "namespace sidecar has zmesh.io/dataplane-mode=sidecar, not ambient"},
        Case{"NamespaceNotDefined", Pod("p", "ghost"), EnrollReason::kNamespaceNotFound,
             "namespace ghost is not defined"},
        Case{"PodOptedOut", Pod("p", "mesh", ", labels: {zmesh.io/dataplane-mode: none}"),
             EnrollReason::kPodOptedOut, "pod is labelled zmesh.io/dataplane-mode=none"},
        Case{"PodLabelOtherThanNoneDoesNotOptOut",
             Pod("p", "mesh", ", labels: {zmesh.io/dataplane-mode: ambient}"),
             EnrollReason::kEnrolled, "enrolled"},
        Case{"OptOutInUnlabelledNamespaceReportsTheNamespace",
             Pod("p", "plain", ", labels: {zmesh.io/dataplane-mode: none}"),
             EnrollReason::kNamespaceNotLabelled, "not labelled"},
        Case{"OtherNode", Pod("p", "mesh", "", "{nodeName: node-b}"), EnrollReason::kNotOnThisNode,
             "pod runs on node node-b, this is node node-a"},
        Case{"Unscheduled", Pod("p", "mesh", "", "{}"), EnrollReason::kNotOnThisNode,
             "spec.nodeName unset"},
        Case{"MissingNetnsAnnotation", Pod("p", "mesh", "", "{nodeName: node-a}",
                                           "{phase: Running, podIP: 10.0.0.5}", "{}"),
             EnrollReason::kNoNetns, "no zmesh.io/netns annotation"},
        Case{"NoIp", Pod("p", "mesh", "", "{nodeName: node-a}", "{phase: Pending}"),
             EnrollReason::kNoIp, "no IP"},
        Case{"Succeeded", Pod("p", "mesh", "", "{nodeName: node-a}",
                              "{phase: Succeeded, podIP: 10.0.0.5}"),
             EnrollReason::kTerminalPhase, "pod phase is Succeeded"},
        Case{"Failed", Pod("p", "mesh", "", "{nodeName: node-a}", "{phase: Failed}"),
             EnrollReason::kTerminalPhase, "pod phase is Failed"},
        Case{"PendingWithIpIsEnrolled",
             Pod("p", "mesh", "", "{nodeName: node-a}", "{phase: Pending, podIP: 10.0.0.5}"),
             EnrollReason::kEnrolled, "enrolled"},
        Case{"V6OnlyPod", Pod("p", "mesh", "", "{nodeName: node-a, serviceAccountName: web}",
                              "{podIPs: [{ip: 'fd00::7'}]}"),
             EnrollReason::kEnrolled, "spiffe://cluster.local/ns/mesh/sa/web"},
        Case{"BadExcludedPorts",
             Pod("p", "mesh", "", "{nodeName: node-a}", "{podIP: 10.0.0.5}",
                 "{zmesh.io/netns: zm-x, zmesh.io/exclude-inbound-ports: '80,http'}"),
             EnrollReason::kInvalidPod,
             "pod mesh/p: annotation zmesh.io/exclude-inbound-ports: \"80,http\": \"http\" is not "
             "a port (1-65535)"},
        Case{"BadPortsInUnlabelledNamespaceReportsTheNamespace",
             Pod("p", "plain", "", "{nodeName: node-a}", "{podIP: 10.0.0.5}",
                 "{zmesh.io/netns: zm-x, zmesh.io/exclude-inbound-ports: 'x'}"),
             EnrollReason::kNamespaceNotLabelled, "not labelled"},
        Case{"GoodExcludedPorts",
             Pod("p", "mesh", "", "{nodeName: node-a}", "{podIP: 10.0.0.5}",
                 "{zmesh.io/netns: /proc/1/ns/net, zmesh.io/exclude-outbound-ports: '53, 443'}"),
             EnrollReason::kEnrolled, "enrolled"}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

TEST(DecideEnrollment, OnlyThisNodesPodsSortedWithWorkloads) {
  mesh::Snapshot snap = SnapshotOf(
      Pod("b", "mesh") + Pod("a", "plain") + Pod("c", "mesh", "", "{nodeName: node-b}") +
      Pod("d", "mesh", "", "{nodeName: node-a}", "{podIP: 10.0.0.9}",
          "{zmesh.io/netns: zm-d, zmesh.io/exclude-outbound-ports: '53,5353'}"));
  std::vector<EnrollmentDecision> d = DecideEnrollment(snap, "node-a");
  std::vector<std::string> keys;
  for (const auto& x : d) keys.push_back(x.key() + "=" + std::string(EnrollReasonName(x.reason)));
  EXPECT_THAT(keys, ElementsAre("mesh/b=enrolled", "mesh/d=enrolled", "plain/a=namespace-not-labelled"));
  ASSERT_TRUE(d[1].workload.has_value());
  EXPECT_EQ(d[1].workload->netns, "zm-d");
  EXPECT_THAT(d[1].workload->exclude_outbound_ports, ElementsAre(53, 5353));
  EXPECT_EQ(d[1].uid, k8s::DerivedUid("mesh", "d"));
  EXPECT_TRUE(DecideEnrollment(snap, "").empty());  // an unnamed node owns no pods
  EXPECT_FALSE(ExplainEnrollment(snap, "node-a", "mesh", "zz").has_value());
}

TEST(DecideEnrollment, LabelRemovalUnenrolls) {
  mesh::Snapshot snap = SnapshotOf(Pod("p", "mesh"));
  ASSERT_TRUE(DecideEnrollment(snap, "node-a").at(0).enrolled);
  snap.namespaces[0].labels.clear();  // "mesh" sorts first
  ASSERT_EQ(snap.namespaces[0].name, "mesh");
  EXPECT_EQ(DecideEnrollment(snap, "node-a").at(0).reason, EnrollReason::kNamespaceNotLabelled);
}

TEST(EnrollReasonName, AllNamed) {
  for (int r = 0; r <= static_cast<int>(EnrollReason::kNoIp); ++r) {
    EXPECT_NE(EnrollReasonName(static_cast<EnrollReason>(r)), "unknown") << r;
  }
}

}  // namespace
}  // namespace zm::agent
