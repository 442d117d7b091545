// Waypoints in the mesh model (DESIGN §6): which destinations use one (pod label over namespace
// label, "none" opts out, a waypoint never uses one), where the waypoint is reached, and the
// destination ztunnel's implicit L4 ALLOW for the waypoint's principal (DENY still applies).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/k8s/manifest.h"
#include "common/mesh/authorization.h"
#include "common/mesh/workload.h"

namespace zm::mesh {
namespace {

using ::testing::IsEmpty;

Snapshot SnapshotOf(std::string_view yaml) {
  auto parsed = k8s::ParseManifest(yaml, "t.yaml");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(parsed->errors, IsEmpty());
  k8s::ManifestSnapshot objects;
  objects.namespaces = parsed->namespaces;
  objects.pods = parsed->pods;
  objects.services = parsed->services;
  objects.authorization_policies = parsed->authorization_policies;
  return BuildSnapshot(objects);
}

constexpr char kMesh[] = R"(
apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {zmesh.io/dataplane-mode: ambient, zmesh.io/use-waypoint: waypoint}}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {zmesh.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: demo, labels: {app: server}}
spec: {serviceAccountName: web}
status: {phase: Running, podIP: 198.18.2.10}
---
apiVersion: v1
kind: Pod
metadata: {name: direct, namespace: demo, labels: {app: direct, zmesh.io/use-waypoint: none}}
status: {phase: Running, podIP: 198.18.2.11}
---
apiVersion: v1
kind: Pod
metadata: {name: cart, namespace: shop, labels: {app: cart, zmesh.io/use-waypoint: shop-wp}}
status: {phase: Running, podIP: 198.18.2.12}
---
apiVersion: v1
kind: Pod
metadata:
  name: waypoint-0
  namespace: demo
  labels: {app: waypoint, gateway.networking.k8s.io/gateway-name: waypoint,
           zmesh.io/dataplane-mode: none}
spec: {serviceAccountName: waypoint}
status: {phase: Running, podIP: 198.18.1.20}
---
apiVersion: v1
kind: Service
metadata: {name: waypoint, namespace: demo}
spec:
  selector: {app: waypoint}
  clusterIP: 198.19.0.20
  ports: [{name: hbone, port: 15008, targetPort: 15008}]
)";

const Workload& W(const Snapshot& s, std::string_view ns, std::string_view name) {
  const Workload* w = s.FindWorkload(ns, name);
  EXPECT_NE(w, nullptr) << ns << "/" << name;
  return *w;
}

size_t First(size_t) { return 0; }

TEST(WaypointTest, TheNamespaceLabelAppliesToItsPods) {
  Snapshot s = SnapshotOf(kMesh);
  EXPECT_EQ(W(s, "demo", "server").waypoint, "demo/waypoint");
}

TEST(WaypointTest, APodLabelNoneOptsOut) {
  Snapshot s = SnapshotOf(kMesh);
  EXPECT_EQ(W(s, "demo", "direct").waypoint, "");
}

TEST(WaypointTest, APodLabelNamesAWaypointOfItsOwnNamespace) {
  Snapshot s = SnapshotOf(kMesh);
  EXPECT_EQ(W(s, "shop", "cart").waypoint, "shop/shop-wp");
}

TEST(WaypointTest, AWaypointNeverUsesAWaypoint) {
  Snapshot s = SnapshotOf(kMesh);
  EXPECT_EQ(W(s, "demo", "waypoint-0").waypoint, "");
}

TEST(WaypointTest, ResolvesToARunningEndpointOfTheWaypointService) {
  Snapshot s = SnapshotOf(kMesh);
  auto t = ResolveWaypoint(s, W(s, "demo", "server"), First);
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_TRUE(t->has_value());
  EXPECT_EQ((*t)->service, "demo/waypoint");
  EXPECT_EQ((*t)->ip.ToString(), "198.18.1.20");
  EXPECT_EQ((*t)->workload->identity(), "spiffe://cluster.local/ns/demo/sa/waypoint");
}

TEST(WaypointTest, NoWaypointResolvesToNothing) {
  Snapshot s = SnapshotOf(kMesh);
  auto t = ResolveWaypoint(s, W(s, "demo", "direct"), First);
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->has_value());
}

// Never a bypass: a waypoint that cannot be reached is an error the caller refuses on.
TEST(WaypointTest, AMissingWaypointServiceIsAnError) {
  Snapshot s = SnapshotOf(kMesh);
  auto t = ResolveWaypoint(s, W(s, "shop", "cart"), First);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("shop/cart uses waypoint shop/shop-wp: no such Service"),
            std::string_view::npos)
      << t.status();
}

TEST(WaypointTest, AWaypointServiceWithoutRunningEndpointsIsAnError) {
  std::string yaml = kMesh;
  yaml.replace(yaml.find("status: {phase: Running, podIP: 198.18.1.20}"),
               std::string_view("status: {phase: Running, podIP: 198.18.1.20}").size(),
               "status: {phase: Succeeded, podIP: 198.18.1.20}");
  Snapshot s = SnapshotOf(yaml);
  auto t = ResolveWaypoint(s, W(s, "demo", "server"), First);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("no running endpoint"), std::string_view::npos);
}

L4Verdict Authorize(const Snapshot& s, std::string_view principal) {
  auto policies = BuildL4PolicySet(s, "zmesh-system");
  return AuthorizeL4(s, *policies, W(s, "demo", "server"),
                     L4Request{.principal = std::string(principal), .port = 8080, .tunneled = true},
                     "zmesh-system");
}

constexpr char kAllowClientOnly[] = R"(
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: client-only, namespace: demo}
spec:
  selector: {matchLabels: {app: server}}
  rules: [{from: [{source: {principals: [cluster.local/ns/demo/sa/client]}}]}]
)";

TEST(WaypointTest, TheWaypointPrincipalIsImplicitlyAllowedPastAnAllowPolicy) {
  Snapshot s = SnapshotOf(std::string(kMesh) + kAllowClientOnly);
  L4Verdict v = Authorize(s, "cluster.local/ns/demo/sa/waypoint");
  EXPECT_TRUE(v.allowed) << v.reason;
  EXPECT_NE(v.reason.find("implicit ALLOW"), std::string::npos) << v.reason;
}

TEST(WaypointTest, AnotherPrincipalIsStillDenied) {
  Snapshot s = SnapshotOf(std::string(kMesh) + kAllowClientOnly);
  EXPECT_FALSE(Authorize(s, "cluster.local/ns/demo/sa/other").allowed);
  // The same service account name in another namespace is not the waypoint.
  EXPECT_FALSE(Authorize(s, "cluster.local/ns/shop/sa/waypoint").allowed);
}

TEST(WaypointTest, ADenyPolicyStillDeniesTheWaypoint) {
  Snapshot s = SnapshotOf(std::string(kMesh) + R"(
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-waypoint, namespace: demo}
spec:
  action: DENY
  rules: [{from: [{source: {principals: [cluster.local/ns/demo/sa/waypoint]}}]}]
)");
  L4Verdict v = Authorize(s, "cluster.local/ns/demo/sa/waypoint");
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.policy, "demo/deny-waypoint");
}

TEST(WaypointTest, ADestinationWithoutAWaypointGrantsNoImplicitAllow) {
  Snapshot s = SnapshotOf(std::string(kMesh) + kAllowClientOnly);
  EXPECT_FALSE(IsWaypointOf(s, W(s, "demo", "direct"), "cluster.local/ns/demo/sa/waypoint"));
}

}  // namespace
}  // namespace zm::mesh
