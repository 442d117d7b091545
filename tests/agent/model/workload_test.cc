// The Pod -> Workload translation (one function for local and cluster mode): fields, the
// annotations the mesh reads, and errors that name the pod and the annotation.
#include "common/mesh/workload.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace zm::mesh {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

k8s::Pod MakePod() {
  return k8s::Pod{.uid = "u1",
                  .name = "client",
                  .namespace_name = "demo",
                  .labels = {{"app", "client"}},
                  .annotations = {{"zmesh.io/netns", "zm-client"}},
                  .service_account = "client-sa",
                  .node_name = "node-a",
                  .phase = "Running",
                  .pod_ips = {"10.0.0.5", "fd00::5"},
                  .source = "pods.yaml:doc1"};
}

IpAddr Ip(std::string_view s) { return *IpAddr::Parse(s); }

TEST(WorkloadFromPod, CopiesFieldsAndComputesIdentity) {
  auto w = WorkloadFromPod(MakePod());
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->uid, "u1");
  EXPECT_EQ(w->name, "client");
  EXPECT_EQ(w->ns, "demo");
  EXPECT_EQ(w->service_account, "client-sa");
  EXPECT_EQ(w->node, "node-a");
  EXPECT_EQ(w->netns, "zm-client");
  EXPECT_EQ(w->labels.at("app"), "client");
  EXPECT_THAT(w->ips, ElementsAre(Ip("10.0.0.5"), Ip("fd00::5")));
  EXPECT_TRUE(w->ips[0].is_v4());
  EXPECT_FALSE(w->ips[1].is_v4());
  EXPECT_EQ(w->identity(), "spiffe://cluster.local/ns/demo/sa/client-sa");
  EXPECT_EQ(w->key(), "demo/client");
  EXPECT_FALSE(w->terminal());
  EXPECT_THAT(w->exclude_inbound_ports, IsEmpty());
  EXPECT_THAT(w->exclude_outbound_ports, IsEmpty());
}

TEST(WorkloadFromPod, DefaultServiceAccountIdentity) {
  k8s::Pod pod = MakePod();
  pod.service_account = "";
  auto w = WorkloadFromPod(pod);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->identity(), "spiffe://cluster.local/ns/demo/sa/default");
}

TEST(WorkloadFromPod, NetnsPathOrName) {
  k8s::Pod pod = MakePod();
  pod.annotations["zmesh.io/netns"] = "/proc/123/ns/net";
  EXPECT_EQ(WorkloadFromPod(pod)->netns, "/proc/123/ns/net");
  pod.annotations["zmesh.io/netns"] = "proc/123/ns/net";
  EXPECT_EQ(WorkloadFromPod(pod).status().message(),
            "pod demo/client: annotation zmesh.io/netns: \"proc/123/ns/net\" is neither an "
            "absolute path nor an `ip netns` name");
  pod.annotations["zmesh.io/netns"] = "";
  EXPECT_EQ(WorkloadFromPod(pod).status().message(),
            "pod demo/client: annotation zmesh.io/netns: empty");
  pod.annotations.erase("zmesh.io/netns");
  EXPECT_EQ(WorkloadFromPod(pod)->netns, "");
}

TEST(WorkloadFromPod, ExcludedPorts) {
  k8s::Pod pod = MakePod();
  pod.annotations["zmesh.io/exclude-outbound-ports"] = "443, 80,8080,80";
  pod.annotations["zmesh.io/exclude-inbound-ports"] = "9090";
  auto w = WorkloadFromPod(pod);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_THAT(w->exclude_outbound_ports, ElementsAre(80, 443, 8080));
  EXPECT_THAT(w->exclude_inbound_ports, ElementsAre(9090));
  pod.annotations["zmesh.io/exclude-inbound-ports"] = " ";
  EXPECT_THAT(WorkloadFromPod(pod)->exclude_inbound_ports, IsEmpty());
}

struct BadPorts {
  const char* text;
  const char* bad_item;
};

class BadPortsTest : public ::testing::TestWithParam<BadPorts> {};

TEST_P(BadPortsTest, ErrorNamesPodAnnotationAndItem) {
  for (const char* key : {"zmesh.io/exclude-inbound-ports", "zmesh.io/exclude-outbound-ports"}) {
    k8s::Pod pod = MakePod();
    pod.annotations[key] = GetParam().text;
    auto w = WorkloadFromPod(pod);
    ASSERT_FALSE(w.ok()) << key << "=" << GetParam().text;
    EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(w.status().message(),
              std::string("pod demo/client: annotation ") + key + ": \"" + GetParam().text +
                  "\": \"" + GetParam().bad_item + "\" is not a port (1-65535)");
  }
}

INSTANTIATE_TEST_SUITE_P(Values, BadPortsTest,
                         ::testing::Values(BadPorts{"80,x", "x"}, BadPorts{"0", "0"},
                                           BadPorts{"65536", "65536"}, BadPorts{"80,,90", ""},
                                           BadPorts{"80,", ""}, BadPorts{"-1", "-1"},
                                           BadPorts{"8000-8010", "8000-8010"},
                                           BadPorts{"80 90", "80 90"},
                                           BadPorts{"99999999999", "99999999999"}));

TEST(WorkloadFromPod, TerminalPhases) {
  k8s::Pod pod = MakePod();
  for (const char* phase : {"Succeeded", "Failed"}) {
    pod.phase = phase;
    EXPECT_TRUE(WorkloadFromPod(pod)->terminal()) << phase;
  }
  for (const char* phase : {"", "Pending", "Running", "Unknown"}) {
    pod.phase = phase;
    EXPECT_FALSE(WorkloadFromPod(pod)->terminal()) << phase;
  }
}

TEST(BuildSnapshot, TranslatesAndKeepsRejectedPodsWithTheirErrors) {
  k8s::ManifestSnapshot objects;
  objects.namespaces.push_back({.name = "zeta"});
  objects.namespaces.push_back({.name = "demo", .labels = {{"zmesh.io/dataplane-mode", "ambient"}}});
  k8s::Pod good = MakePod();
  k8s::Pod bad = MakePod();
  bad.name = "bad";
  bad.source = "pods.yaml:doc2";
  bad.annotations["zmesh.io/exclude-inbound-ports"] = "http";
  objects.pods = {good, bad};
  objects.errors = {"other.yaml: line 1, column 1: YAML error: x"};
  Snapshot s = BuildSnapshot(objects);
  ASSERT_EQ(s.namespaces.size(), 2u);
  EXPECT_EQ(s.namespaces[0].name, "demo");
  ASSERT_NE(s.FindNamespace("zeta"), nullptr);
  EXPECT_EQ(s.FindNamespace("nope"), nullptr);
  ASSERT_EQ(s.workloads.size(), 1u);
  EXPECT_EQ(s.workloads[0].name, "client");
  ASSERT_EQ(s.rejected.size(), 1u);
  EXPECT_EQ(s.rejected[0].name, "bad");
  EXPECT_EQ(s.rejected[0].node, "node-a");
  EXPECT_THAT(s.errors,
              ElementsAre("other.yaml: line 1, column 1: YAML error: x",
                          "pods.yaml:doc2: pod demo/bad: annotation zmesh.io/exclude-inbound-ports: "
                          "\"http\": \"http\" is not a port (1-65535)"));
}

}  // namespace
}  // namespace zm::mesh
