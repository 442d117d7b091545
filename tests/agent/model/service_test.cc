// Services in the mesh model: selector -> endpoints (same namespace only, running pods with an
// address), VIPs, named targetPorts resolved per workload, and lookups by address.
#include "common/mesh/service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/k8s/manifest.h"
#include "common/mesh/workload.h"

namespace zm::mesh {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

IpAddr Ip(std::string_view s) { return *IpAddr::Parse(s); }

Snapshot SnapshotOf(std::string_view yaml) {
  auto parsed = k8s::ParseManifest(yaml, "t.yaml");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(parsed->errors, IsEmpty());
  k8s::ManifestSnapshot objects;
  objects.pods = parsed->pods;
  objects.services = parsed->services;
  return BuildSnapshot(objects);
}

std::vector<std::string> EndpointNames(const Service& s) {
  std::vector<std::string> out;
  for (const ServiceEndpoint& e : s.endpoints) out.push_back(e.workload);
  return out;
}

constexpr char kPods[] = R"(
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: demo, labels: {app: web, version: v1}}
spec:
  containers:
  - name: app
    ports: [{name: http, containerPort: 8080}, {name: dns, containerPort: 5353, protocol: UDP}]
status: {phase: Running, podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, namespace: demo, labels: {app: web, version: v2}}
spec:
  containers: [{name: app, ports: [{name: http, containerPort: 9080}]}]
status: {phase: Running, podIP: 10.0.0.2, podIPs: [{ip: 10.0.0.2}, {ip: "fd00::2"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-3, namespace: demo, labels: {app: web}}
status: {phase: Running, podIP: 10.0.0.3}
---
apiVersion: v1
kind: Pod
metadata: {name: web-done, namespace: demo, labels: {app: web}}
status: {phase: Succeeded, podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: web-pending, namespace: demo, labels: {app: web}}
status: {phase: Pending}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: demo, labels: {app: db}}
status: {phase: Running, podIP: 10.0.0.9}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: other, labels: {app: web}}
spec:
  containers: [{name: app, ports: [{name: http, containerPort: 8080}]}]
status: {phase: Running, podIP: 10.0.1.1}
)";

TEST(Services, SelectorPicksRunningAddressedWorkloadsOfItsNamespace) {
  Snapshot snap = SnapshotOf(std::string(kPods) + R"(
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  selector: {app: web}
  clusterIP: 10.96.0.1
  ports: [{name: http, port: 80, targetPort: 8080, appProtocol: http}]
)");
  ASSERT_EQ(snap.services.size(), 1u);
  const Service& s = snap.services[0];
  EXPECT_EQ(s.key(), "demo/web");
  EXPECT_EQ(s.type, "ClusterIP");
  EXPECT_THAT(s.vips, ElementsAre(Ip("10.96.0.1")));
  EXPECT_EQ(s.selector.at("app"), "web");
  EXPECT_EQ(s.source, "t.yaml:doc8");
  ASSERT_EQ(s.ports.size(), 1u);
  EXPECT_EQ(s.ports[0].name, "http");
  EXPECT_EQ(s.ports[0].port, 80);
  EXPECT_EQ(s.ports[0].target_port, 8080);
  EXPECT_EQ(s.ports[0].protocol, "TCP");
  EXPECT_EQ(s.ports[0].app_protocol, "http");
  // Not other/web (another namespace), not db (labels), not web-done (terminal), not
  // web-pending (no address).
  EXPECT_THAT(EndpointNames(s), ElementsAre("demo/web-1", "demo/web-2", "demo/web-3"));
  EXPECT_THAT(s.endpoints[1].ips, ElementsAre(Ip("10.0.0.2"), Ip("fd00::2")));
  EXPECT_THAT(s.endpoints[0].target_ports, ElementsAre(8080));
  const Workload* w2 = snap.FindWorkload("demo", "web-2");
  ASSERT_NE(w2, nullptr);
  EXPECT_EQ(s.FindEndpoint(w2->uid), &s.endpoints[1]);
  EXPECT_EQ(s.FindEndpoint("nope"), nullptr);
  EXPECT_EQ(s.FindPort(80), &s.ports[0]);
  EXPECT_EQ(s.FindPort(80, "UDP"), nullptr);
  EXPECT_EQ(s.FindPort(8080), nullptr);  // a target port is not a Service port
}

TEST(Services, ServicesInOtherNamespacesNeverMatch) {
  Snapshot snap = SnapshotOf(std::string(kPods) + R"(
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: other}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: empty}
spec: {selector: {app: web}, ports: [{port: 80}]}
)");
  ASSERT_EQ(snap.services.size(), 2u);
  EXPECT_THAT(EndpointNames(snap.services[0]), IsEmpty());  // empty/web
  EXPECT_THAT(EndpointNames(snap.services[1]), ElementsAre("other/web"));
  EXPECT_THAT(snap.services[1].endpoints[0].target_ports, ElementsAre(8080));
  ASSERT_NE(snap.FindService("other", "web"), nullptr);
  EXPECT_EQ(snap.FindService("demo", "web"), nullptr);
}

TEST(Services, NamedTargetPortResolvesPerWorkload) {
  Snapshot snap = SnapshotOf(std::string(kPods) + R"(
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: dns, port: 53, targetPort: dns, protocol: UDP}
  - {name: dns-tcp, port: 54, targetPort: dns}
  - {name: admin, port: 15000}
---
apiVersion: v1
kind: Service
metadata: {name: http-only, namespace: demo}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: http}]}
)");
  const Service* s = snap.FindService("demo", "web");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->ports[0].target_port, 0);
  EXPECT_EQ(s->ports[0].target_port_name, "http");
  ASSERT_THAT(EndpointNames(*s), ElementsAre("demo/web-1", "demo/web-2", "demo/web-3"));
  // web-1: http=8080, dns=5353/UDP (not TCP); web-2: http=9080; web-3 declares nothing but
  // still serves the numeric port.
  EXPECT_THAT(s->endpoints[0].target_ports, ElementsAre(8080, 5353, 0, 15000));
  EXPECT_THAT(s->endpoints[1].target_ports, ElementsAre(9080, 0, 0, 15000));
  EXPECT_THAT(s->endpoints[2].target_ports, ElementsAre(0, 0, 0, 15000));
  // A workload that serves none of a Service's ports is not its endpoint (as in Kubernetes).
  const Service* h = snap.FindService("demo", "http-only");
  ASSERT_NE(h, nullptr);
  EXPECT_THAT(EndpointNames(*h), ElementsAre("demo/web-1", "demo/web-2"));
}

TEST(Services, MultipleVipsAndLookupByVip) {
  Snapshot snap = SnapshotOf(std::string(kPods) + R"(
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  selector: {app: web}
  clusterIP: 10.96.0.1
  clusterIPs: [10.96.0.1, "fd00:96::1"]
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: demo}
spec: {selector: {app: db}, clusterIPs: ["fd00:96::2"], ports: [{port: 5432}]}
)");
  const Service* web = snap.FindService("demo", "web");
  ASSERT_NE(web, nullptr);
  EXPECT_THAT(web->vips, ElementsAre(Ip("10.96.0.1"), Ip("fd00:96::1")));
  EXPECT_EQ(snap.FindServiceByVip(Ip("10.96.0.1")), web);
  EXPECT_EQ(snap.FindServiceByVip(Ip("fd00:96::1")), web);
  EXPECT_EQ(snap.FindServiceByVip(Ip("fd00:96::2")), snap.FindService("demo", "db"));
  EXPECT_EQ(snap.FindServiceByVip(Ip("10.96.0.9")), nullptr);
  EXPECT_EQ(snap.FindServiceByVip(Ip("10.0.0.1")), nullptr);  // a pod IP is no VIP
}

TEST(Services, NoSelectorHeadlessAndExternalName) {
  Snapshot snap = SnapshotOf(std::string(kPods) + R"(
---
apiVersion: v1
kind: Service
metadata: {name: manual, namespace: demo}
spec: {clusterIP: 10.96.0.5, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: empty-selector, namespace: demo}
spec: {selector: {}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: headless, namespace: demo}
spec: {clusterIP: None, selector: {app: db}}
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: demo}
spec: {type: ExternalName, selector: {app: db}}
)");
  EXPECT_THAT(snap.FindService("demo", "manual")->endpoints, IsEmpty());
  EXPECT_THAT(snap.FindService("demo", "empty-selector")->endpoints, IsEmpty());
  const Service* headless = snap.FindService("demo", "headless");
  EXPECT_THAT(headless->vips, IsEmpty());
  EXPECT_THAT(EndpointNames(*headless), ElementsAre("demo/db"));  // no ports: addresses only
  EXPECT_THAT(headless->endpoints[0].target_ports, IsEmpty());
  EXPECT_THAT(snap.FindService("demo", "ext")->endpoints, IsEmpty());
}

TEST(Snapshot, FindWorkloadByIp) {
  Snapshot snap = SnapshotOf(kPods);
  // 10.0.0.1 is web-1's and the finished web-done's: the running one.
  const Workload* w = snap.FindWorkloadByIp(Ip("10.0.0.1"));
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->key(), "demo/web-1");
  EXPECT_EQ(snap.FindWorkloadByIp(Ip("fd00::2"))->key(), "demo/web-2");
  EXPECT_EQ(snap.FindWorkloadByIp(Ip("10.0.1.1"))->key(), "other/web");
  EXPECT_EQ(snap.FindWorkloadByIp(Ip("10.9.9.9")), nullptr);
  EXPECT_THAT(snap.warnings, IsEmpty());
  ASSERT_EQ(snap.FindWorkload("demo", "web-1")->ports.size(), 2u);
  EXPECT_EQ(snap.FindWorkload("demo", "web-1")->ports[1],
            (WorkloadPort{.name = "dns", .port = 5353, .protocol = "UDP"}));
}

TEST(Snapshot, AnAddressClaimedTwiceResolvesToNoneAndWarns) {
  Snapshot snap = SnapshotOf(R"(
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: demo}
status: {phase: Running, podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: demo}
status: {phase: Running, podIP: 10.0.0.1}
---
apiVersion: v1
kind: Service
metadata: {name: s1, namespace: demo}
spec: {clusterIP: 10.96.0.1}
---
apiVersion: v1
kind: Service
metadata: {name: s2, namespace: demo}
spec: {clusterIP: 10.96.0.1}
)");
  EXPECT_EQ(snap.FindWorkloadByIp(Ip("10.0.0.1")), nullptr);
  EXPECT_EQ(snap.FindServiceByVip(Ip("10.96.0.1")), nullptr);
  EXPECT_THAT(snap.warnings,
              ElementsAre("address 10.0.0.1 is used by demo/a, demo/b: it resolves to none of "
                          "them",
                          "address 10.96.0.1 is used by Service demo/s1, Service demo/s2: it "
                          "resolves to none of them"));
}

}  // namespace
}  // namespace zm::mesh
