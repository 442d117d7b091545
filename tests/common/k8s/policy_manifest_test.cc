// Services, container ports and PeerAuthentications in manifests: every field read, both
// security.istio.io versions, and an error text for every validation rule (file, document,
// object, field). A PeerAuthentication that fails validation is kept as rejected, with the scope
// that could be read, so the mesh model can fail closed for it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/k8s/manifest.h"

namespace zm::k8s {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

ParsedFile MustParse(std::string_view yaml, std::string_view name = "mesh.yaml") {
  auto f = ParseManifest(yaml, name);
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? *std::move(f) : ParsedFile{};
}

constexpr char kService[] = R"(
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: demo
  labels: {app: web}
  annotations: {owner: team-a}
spec:
  type: NodePort
  selector: {app: web, tier: front}
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10, "fd00:10::a"]
  ports:
  - name: http
    port: 80
    targetPort: 8080
    protocol: TCP
    appProtocol: http
  - name: grpc
    port: 9090
    targetPort: grpc-port
    appProtocol: kubernetes.io/h2c
  - name: dns
    port: 53
    protocol: UDP
  - name: quoted
    port: 81
    targetPort: "metrics"
)";

TEST(ParseService, EveryField) {
  ParsedFile f = MustParse(kService);
  EXPECT_THAT(f.errors, IsEmpty());
  ASSERT_EQ(f.services.size(), 1u);
  const Service& s = f.services[0];
  EXPECT_EQ(s.name, "web");
  EXPECT_EQ(s.namespace_name, "demo");
  EXPECT_EQ(s.key(), "demo/web");
  EXPECT_EQ(s.labels.at("app"), "web");
  EXPECT_EQ(s.annotations.at("owner"), "team-a");
  EXPECT_EQ(s.type, "NodePort");
  EXPECT_THAT(s.selector, ElementsAre(Pair("app", "web"), Pair("tier", "front")));
  EXPECT_EQ(s.cluster_ip, "10.96.0.10");
  EXPECT_FALSE(s.headless());
  EXPECT_THAT(s.cluster_ips, ElementsAre("10.96.0.10", "fd00:10::a"));  // deduplicated
  ASSERT_EQ(s.ports.size(), 4u);
  EXPECT_EQ(s.ports[0].name, "http");
  EXPECT_EQ(s.ports[0].port, 80);
  EXPECT_EQ(s.ports[0].target_port, 8080);
  EXPECT_EQ(s.ports[0].target_port_name, "");
  EXPECT_EQ(s.ports[0].protocol, "TCP");
  EXPECT_EQ(s.ports[0].app_protocol, "http");
  EXPECT_EQ(s.ports[1].target_port, 0);
  EXPECT_EQ(s.ports[1].target_port_name, "grpc-port");
  EXPECT_EQ(s.ports[1].protocol, "TCP");  // default
  EXPECT_EQ(s.ports[1].app_protocol, "kubernetes.io/h2c");
  EXPECT_EQ(s.ports[2].target_port, 53);  // targetPort defaults to port
  EXPECT_EQ(s.ports[2].protocol, "UDP");
  EXPECT_EQ(s.ports[3].target_port_name, "metrics");
  EXPECT_EQ(s.source, "mesh.yaml:doc1");
}

TEST(ParseService, DefaultsHeadlessAndSinglePortWithoutName) {
  ParsedFile f = MustParse(R"(
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{port: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: bare, namespace: demo}
---
apiVersion: v1
kind: Service
metadata: {name: only-ips, namespace: demo}
spec: {clusterIPs: ["fd00::1"]}
)");
  EXPECT_THAT(f.errors, IsEmpty());
  ASSERT_EQ(f.services.size(), 3u);
  EXPECT_EQ(f.services[0].namespace_name, "default");
  EXPECT_EQ(f.services[0].type, "ClusterIP");
  EXPECT_TRUE(f.services[0].headless());
  EXPECT_THAT(f.services[0].cluster_ips, IsEmpty());
  ASSERT_EQ(f.services[0].ports.size(), 1u);
  EXPECT_EQ(f.services[0].ports[0].target_port, 5432);
  EXPECT_THAT(f.services[1].ports, IsEmpty());
  EXPECT_THAT(f.services[1].selector, IsEmpty());
  EXPECT_EQ(f.services[2].cluster_ip, "fd00::1");
  EXPECT_THAT(f.services[2].cluster_ips, ElementsAre("fd00::1"));
}

TEST(ParsePod, ContainerPorts) {
  ParsedFile f = MustParse(R"(
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: demo}
spec:
  containers:
  - name: app
    ports:
    - {name: http, containerPort: 8080}
    - {containerPort: 9090, protocol: UDP}
  - name: side
  - name: metrics
    ports: [{name: metrics, containerPort: 15020, protocol: SCTP}]
)");
  EXPECT_THAT(f.errors, IsEmpty());
  ASSERT_EQ(f.pods.size(), 1u);
  const auto& p = f.pods[0].container_ports;
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].name, "http");
  EXPECT_EQ(p[0].port, 8080);
  EXPECT_EQ(p[0].protocol, "TCP");
  EXPECT_EQ(p[1].name, "");
  EXPECT_EQ(p[1].port, 9090);
  EXPECT_EQ(p[1].protocol, "UDP");
  EXPECT_EQ(p[2].name, "metrics");
  EXPECT_EQ(p[2].protocol, "SCTP");
}

// Both apiVersions are the same schema (policy-semantics §1.1).
class PeerAuthenticationVersions : public ::testing::TestWithParam<const char*> {};

TEST_P(PeerAuthenticationVersions, EveryField) {
  ParsedFile f = MustParse(std::string("apiVersion: ") + GetParam() + R"(
kind: PeerAuthentication
metadata:
  name: web-mtls
  namespace: demo
  labels: {team: a}
  annotations: {note: x}
  creationTimestamp: "2026-07-01T12:00:00Z"
spec:
  selector:
    matchLabels: {app: web}
  mtls: {mode: STRICT}
  portLevelMtls:
    8080: {mode: PERMISSIVE}
    "9090": {mode: DISABLE}
    15020: {mode: UNSET}
    15021: {}
)");
  EXPECT_THAT(f.errors, IsEmpty());
  EXPECT_THAT(f.rejected_peer_authentications, IsEmpty());
  ASSERT_EQ(f.peer_authentications.size(), 1u);
  const PeerAuthentication& pa = f.peer_authentications[0];
  EXPECT_EQ(pa.name, "web-mtls");
  EXPECT_EQ(pa.namespace_name, "demo");
  EXPECT_EQ(pa.key(), "demo/web-mtls");
  EXPECT_EQ(pa.api_version, GetParam());
  EXPECT_EQ(pa.labels.at("team"), "a");
  EXPECT_EQ(pa.annotations.at("note"), "x");
  EXPECT_EQ(pa.creation_time_ns, 1782907200000000000);
  EXPECT_THAT(pa.selector, ElementsAre(Pair("app", "web")));
  EXPECT_EQ(pa.mode, PeerAuthenticationMode::kStrict);
  EXPECT_THAT(pa.port_level_mtls, ElementsAre(Pair(8080, PeerAuthenticationMode::kPermissive),
                                              Pair(9090, PeerAuthenticationMode::kDisable),
                                              Pair(15020, PeerAuthenticationMode::kUnset),
                                              Pair(15021, PeerAuthenticationMode::kUnset)));
  EXPECT_EQ(pa.source, "mesh.yaml:doc1");
}

INSTANTIATE_TEST_SUITE_P(Both, PeerAuthenticationVersions,
                         ::testing::Values("security.istio.io/v1", "security.istio.io/v1beta1"),
                         [](const auto& info) {
                           return std::string(info.index == 0 ? "V1" : "V1beta1");
                         });

TEST(ParsePeerAuthentication, MinimalAndModes) {
  ParsedFile f = MustParse(R"(
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: empty}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: DISABLE}, selector: {}}
---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: p, namespace: demo, creationTimestamp: "2026-07-01T14:00:00.5+02:00"}
spec: {mtls: {mode: PERMISSIVE}, selector: {matchLabels: {}}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: u, namespace: demo, creationTimestamp: "2024-02-29T00:00:00Z"}
spec: {mtls: {mode: UNSET}, selector: {matchLabels: null}, portLevelMtls: null}
)");
  EXPECT_THAT(f.errors, IsEmpty());
  ASSERT_EQ(f.peer_authentications.size(), 4u);
  EXPECT_EQ(f.peer_authentications[0].namespace_name, "default");
  EXPECT_EQ(f.peer_authentications[0].mode, PeerAuthenticationMode::kUnset);
  EXPECT_EQ(f.peer_authentications[0].creation_time_ns, std::nullopt);
  EXPECT_THAT(f.peer_authentications[0].selector, IsEmpty());
  EXPECT_EQ(f.peer_authentications[1].mode, PeerAuthenticationMode::kDisable);
  EXPECT_THAT(f.peer_authentications[1].selector, IsEmpty());
  EXPECT_EQ(f.peer_authentications[2].mode, PeerAuthenticationMode::kPermissive);
  EXPECT_EQ(f.peer_authentications[2].creation_time_ns, 1782907200500000000);
  EXPECT_EQ(f.peer_authentications[3].mode, PeerAuthenticationMode::kUnset);
  EXPECT_EQ(f.peer_authentications[3].creation_time_ns, 1709164800000000000);
  EXPECT_THAT(f.peer_authentications[3].port_level_mtls, IsEmpty());
  EXPECT_EQ(PeerAuthenticationModeName(PeerAuthenticationMode::kPermissive), "PERMISSIVE");
}

TEST(ParsePeerAuthentication, OtherIstioKindsAreStillSkipped) {
  ParsedFile f = MustParse(R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a, namespace: demo}
spec: {anything: goes}
---
apiVersion: example.com/v1
kind: PeerAuthentication
metadata: {name: not-istio, namespace: demo}
)");
  EXPECT_THAT(f.errors, IsEmpty());
  EXPECT_THAT(f.peer_authentications, IsEmpty());
  EXPECT_THAT(f.rejected_peer_authentications, IsEmpty());
}

// A rejected policy keeps the scope that could be read.
TEST(ParsePeerAuthentication, RejectedKeepsItsScope) {
  ParsedFile f = MustParse(R"(
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: typo, namespace: demo}
spec: {selector: {matchLabels: {app: web}}, mtls: {mode: strict}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: badsel, namespace: demo}
spec: {selector: {matchLabel: {app: web}}, mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: wide, namespace: demo}
spec: {mtls: {mode: PERMISSIVE}, portLevelMtls: {80: {mode: DISABLE}}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
spec: {mtls: {mode: DISABLE}}
)");
  EXPECT_THAT(f.peer_authentications, IsEmpty());
  EXPECT_EQ(f.errors.size(), 4u);
  ASSERT_EQ(f.rejected_peer_authentications.size(), 4u);
  const auto& r = f.rejected_peer_authentications;
  EXPECT_EQ(r[0].key(), "demo/typo");
  EXPECT_THAT(r[0].selector, ::testing::Optional(ElementsAre(Pair("app", "web"))));
  EXPECT_THAT(r[0].errors, ElementsAre("mesh.yaml: document 1 (PeerAuthentication demo/typo): "
                                       "spec.mtls.mode: unknown mode \"strict\" (UNSET, DISABLE, "
                                       "PERMISSIVE, STRICT)"));
  EXPECT_EQ(r[0].source, "mesh.yaml:doc1");
  EXPECT_EQ(r[1].selector, std::nullopt);  // unreadable: the whole namespace
  EXPECT_THAT(r[2].selector, ::testing::Optional(IsEmpty()));
  EXPECT_EQ(r[3].name, "");
  EXPECT_EQ(r[3].namespace_name, "default");                   // where kubectl would have put it
  EXPECT_THAT(r[3].selector, ::testing::Optional(IsEmpty()));  // namespace-wide there
}

// Each case: one document and the error it must produce (after "mesh.yaml: document 1").
struct ErrorCase {
  const char* name;
  const char* yaml;
  const char* error;
};

// Test names, not bytes, in failure messages.
void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name; }

class PolicyParseErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(PolicyParseErrorTest, NamesFileDocumentObjectAndField) {
  ParsedFile f = MustParse(GetParam().yaml);
  EXPECT_THAT(f.services, IsEmpty());
  EXPECT_THAT(f.pods, IsEmpty());
  EXPECT_THAT(f.peer_authentications, IsEmpty());
  ASSERT_EQ(f.errors.size(), 1u) << ::testing::PrintToString(f.errors);
  EXPECT_EQ(f.errors[0], std::string("mesh.yaml: document 1") + GetParam().error);
  // Every broken PeerAuthentication is kept as rejected, with the same text.
  if (std::string_view(GetParam().yaml).find("PeerAuthentication") != std::string_view::npos) {
    ASSERT_EQ(f.rejected_peer_authentications.size(), 1u);
    EXPECT_THAT(f.rejected_peer_authentications[0].errors, ElementsAre(f.errors[0]));
  }
}

#define SVC "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo}\n"
#define POD "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: demo}\n"
#define PA                                                       \
  "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n" \
  "metadata: {name: pa, namespace: demo}\n"
#define SEL "selector: {matchLabels: {app: web}}"

INSTANTIATE_TEST_SUITE_P(
    Fields, PolicyParseErrorTest,
    ::testing::Values(
        // --- Service ---
        ErrorCase{"ServiceNameNotDns1035",
                  "apiVersion: v1\nkind: Service\nmetadata: {name: 1web, namespace: demo}\n",
                  " (Service demo/1web): metadata.name: not a valid DNS-1035 label: \"1web\""},
        ErrorCase{"ServiceBadType", SVC "spec: {type: Internal}\n",
                  " (Service demo/web): spec.type: not a Service type (ClusterIP, NodePort, "
                  "LoadBalancer, ExternalName): \"Internal\""},
        ErrorCase{"ServiceSelectorNotMap", SVC "spec: {selector: [app]}\n",
                  " (Service demo/web): spec.selector: not a mapping"},
        ErrorCase{"ServiceSelectorBadValue", SVC "spec: {selector: {app: 'a b'}}\n",
                  " (Service demo/web): spec.selector[\"app\"]: not a valid label value: \"a b\""},
        ErrorCase{"ServiceBadClusterIp", SVC "spec: {clusterIP: 10.96.0}\n",
                  " (Service demo/web): spec.clusterIP: not an IP address: \"10.96.0\""},
        ErrorCase{"ServiceClusterIpsNotList", SVC "spec: {clusterIPs: 10.96.0.1}\n",
                  " (Service demo/web): spec.clusterIPs: not a list"},
        ErrorCase{"ServiceBadClusterIpsEntry", SVC "spec: {clusterIPs: [10.96.0.1, 'fd00::zz']}\n",
                  " (Service demo/web): spec.clusterIPs[1]: not an IP address: \"fd00::zz\""},
        ErrorCase{"ServiceClusterIpsMismatch",
                  SVC "spec: {clusterIP: 10.96.0.1, clusterIPs: [10.96.0.2]}\n",
                  " (Service demo/web): spec.clusterIPs[0]: must match spec.clusterIP "
                  "\"10.96.0.1\": \"10.96.0.2\""},
        ErrorCase{"ServiceClusterIpsSameFamily", SVC "spec: {clusterIPs: [10.96.0.1, 10.96.0.2]}\n",
                  " (Service demo/web): spec.clusterIPs: two addresses of the same IP family"},
        ErrorCase{"ServiceClusterIpsTooMany",
                  SVC "spec: {clusterIPs: [10.96.0.1, 'fd00::1', 10.96.0.3]}\n",
                  " (Service demo/web): spec.clusterIPs: at most two addresses (one per IP "
                  "family)"},
        ErrorCase{"ServiceNoneNotAlone", SVC "spec: {clusterIPs: [None, 10.96.0.1]}\n",
                  " (Service demo/web): spec.clusterIPs[0]: \"None\" must be the only entry"},
        ErrorCase{"ServiceExternalNameWithIp",
                  SVC "spec: {type: ExternalName, clusterIP: 10.96.0.1}\n",
                  " (Service demo/web): spec.clusterIP: must be empty for type ExternalName"},
        ErrorCase{"ServicePortsNotList", SVC "spec: {ports: {port: 80}}\n",
                  " (Service demo/web): spec.ports: not a list"},
        ErrorCase{"ServicePortNotMap", SVC "spec: {ports: [80]}\n",
                  " (Service demo/web): spec.ports[0]: not a mapping"},
        ErrorCase{"ServicePortMissing", SVC "spec: {ports: [{name: http}]}\n",
                  " (Service demo/web): spec.ports[0].port: missing"},
        ErrorCase{"ServicePortOutOfRange", SVC "spec: {ports: [{port: 65536}]}\n",
                  " (Service demo/web): spec.ports[0].port: not a port (1-65535): \"65536\""},
        ErrorCase{"ServicePortZero", SVC "spec: {ports: [{port: 0}]}\n",
                  " (Service demo/web): spec.ports[0].port: not a port (1-65535): \"0\""},
        ErrorCase{"ServicePortNotNumber", SVC "spec: {ports: [{port: http}]}\n",
                  " (Service demo/web): spec.ports[0].port: not a port (1-65535): \"http\""},
        ErrorCase{"ServicePortNameMissing",
                  SVC "spec: {ports: [{name: a, port: 80}, {port: 81}]}\n",
                  " (Service demo/web): spec.ports[1].name: missing (required when the Service "
                  "has several ports)"},
        ErrorCase{"ServicePortNameBad", SVC "spec: {ports: [{name: HTTP, port: 80}]}\n",
                  " (Service demo/web): spec.ports[0].name: not a valid DNS-1123 label: \"HTTP\""},
        ErrorCase{"ServicePortNameDuplicate",
                  SVC "spec: {ports: [{name: a, port: 80}, {name: a, port: 81}]}\n",
                  " (Service demo/web): spec.ports[1].name: duplicate port name \"a\""},
        ErrorCase{"ServicePortDuplicate",
                  SVC "spec: {ports: [{name: a, port: 80}, {name: b, port: 80}]}\n",
                  " (Service demo/web): spec.ports[1].port: duplicate port 80/TCP"},
        ErrorCase{"ServiceBadProtocol", SVC "spec: {ports: [{port: 80, protocol: tcp}]}\n",
                  " (Service demo/web): spec.ports[0].protocol: not a protocol (TCP, UDP, SCTP): "
                  "\"tcp\""},
        ErrorCase{"ServiceTargetPortOutOfRange",
                  SVC "spec: {ports: [{port: 80, targetPort: 70000}]}\n",
                  " (Service demo/web): spec.ports[0].targetPort: not a port (1-65535): \"70000\""},
        ErrorCase{"ServiceTargetPortQuotedNumber",
                  SVC "spec: {ports: [{port: 80, targetPort: \"8080\"}]}\n",
                  " (Service demo/web): spec.ports[0].targetPort: not a valid port name (IANA "
                  "service name: at most 15 lowercase alphanumerics and '-', at least one "
                  "letter): \"8080\""},
        ErrorCase{"ServiceTargetPortBadName",
                  SVC "spec: {ports: [{port: 80, targetPort: a-very-long-port-name}]}\n",
                  " (Service demo/web): spec.ports[0].targetPort: not a valid port name (IANA "
                  "service name: at most 15 lowercase alphanumerics and '-', at least one "
                  "letter): \"a-very-long-port-name\""},
        ErrorCase{"ServiceTargetPortNotScalar",
                  SVC "spec: {ports: [{port: 80, targetPort: [1]}]}\n",
                  " (Service demo/web): spec.ports[0].targetPort: not a port number or a port "
                  "name"},
        ErrorCase{"ServiceAppProtocolNotString",
                  SVC "spec: {ports: [{port: 80, appProtocol: {a: b}}]}\n",
                  " (Service demo/web): spec.ports[0].appProtocol: not a string"},
        // --- Pod container ports ---
        ErrorCase{"ContainersNotList", POD "spec: {containers: {name: a}}\n",
                  " (Pod demo/p): spec.containers: not a list"},
        ErrorCase{"ContainerNotMap", POD "spec: {containers: [a]}\n",
                  " (Pod demo/p): spec.containers[0]: not a mapping"},
        ErrorCase{"ContainerPortsNotList", POD "spec: {containers: [{name: a, ports: 80}]}\n",
                  " (Pod demo/p): spec.containers[0].ports: not a list"},
        ErrorCase{"ContainerPortMissing", POD "spec: {containers: [{ports: [{name: http}]}]}\n",
                  " (Pod demo/p): spec.containers[0].ports[0].containerPort: missing"},
        ErrorCase{"ContainerPortBad", POD "spec: {containers: [{ports: [{containerPort: 0}]}]}\n",
                  " (Pod demo/p): spec.containers[0].ports[0].containerPort: not a port "
                  "(1-65535): \"0\""},
        ErrorCase{"ContainerPortBadName",
                  POD "spec: {containers: [{ports: [{name: '80', containerPort: 80}]}]}\n",
                  " (Pod demo/p): spec.containers[0].ports[0].name: not a valid port name (IANA "
                  "service name: at most 15 lowercase alphanumerics and '-', at least one "
                  "letter): \"80\""},
        ErrorCase{"ContainerPortDuplicateName",
                  POD "spec: {containers: [{ports: [{name: http, containerPort: 80}]}, "
                      "{ports: [{name: http, containerPort: 81}]}]}\n",
                  " (Pod demo/p): spec.containers[1].ports[0].name: duplicate port name \"http\""},
        ErrorCase{"ContainerPortBadProtocol",
                  POD "spec: {containers: [{ports: [{containerPort: 80, protocol: HTTP}]}]}\n",
                  " (Pod demo/p): spec.containers[0].ports[0].protocol: not a protocol (TCP, UDP, "
                  "SCTP): \"HTTP\""},
        // --- PeerAuthentication ---
        ErrorCase{"PaUnknownMode", PA "spec: {mtls: {mode: ENFORCE}}\n",
                  " (PeerAuthentication demo/pa): spec.mtls.mode: unknown mode \"ENFORCE\" "
                  "(UNSET, DISABLE, PERMISSIVE, STRICT)"},
        ErrorCase{"PaModeIsCaseSensitive", PA "spec: {mtls: {mode: Strict}}\n",
                  " (PeerAuthentication demo/pa): spec.mtls.mode: unknown mode \"Strict\" "
                  "(UNSET, DISABLE, PERMISSIVE, STRICT)"},
        ErrorCase{"PaModeNumber", PA "spec: {mtls: {mode: 3}}\n",
                  " (PeerAuthentication demo/pa): spec.mtls.mode: unknown mode \"3\" (UNSET, "
                  "DISABLE, PERMISSIVE, STRICT)"},
        ErrorCase{"PaModeNotString", PA "spec: {mtls: {mode: [STRICT]}}\n",
                  " (PeerAuthentication demo/pa): spec.mtls.mode: not a string"},
        ErrorCase{"PaPortModeUnknown", PA "spec: {" SEL ", portLevelMtls: {80: {mode: OFF}}}\n",
                  " (PeerAuthentication demo/pa): spec.portLevelMtls[\"80\"].mode: unknown mode "
                  "\"OFF\" (UNSET, DISABLE, PERMISSIVE, STRICT)"},
        ErrorCase{"PaPortKeyNotNumber",
                  PA "spec: {" SEL ", portLevelMtls: {http: {mode: STRICT}}}\n",
                  " (PeerAuthentication demo/pa): spec.portLevelMtls[\"http\"]: not a port number "
                  "(1-65535)"},
        ErrorCase{"PaPortKeyZero", PA "spec: {" SEL ", portLevelMtls: {0: {mode: STRICT}}}\n",
                  " (PeerAuthentication demo/pa): spec.portLevelMtls[\"0\"]: not a port number "
                  "(1-65535)"},
        ErrorCase{"PaPortKeyTooBig", PA "spec: {" SEL ", portLevelMtls: {65536: {mode: STRICT}}}\n",
                  " (PeerAuthentication demo/pa): spec.portLevelMtls[\"65536\"]: not a port number "
                  "(1-65535)"},
        ErrorCase{"PaPortKeyNegative", PA "spec: {" SEL ", portLevelMtls: {-80: {mode: STRICT}}}\n",
                  " (PeerAuthentication demo/pa): spec.portLevelMtls[\"-80\"]: not a port number "
                  "(1-65535)"},
        ErrorCase{"PaPortKeyTwice",
                  PA "spec: {" SEL
                     ", portLevelMtls: {80: {mode: STRICT}, '080': {mode: DISABLE}}}\n",
                  " (PeerAuthentication demo/pa): spec.portLevelMtls[\"080\"]: port 80 listed "
                  "twice"},
        ErrorCase{"PaPortValueNotMap", PA "spec: {" SEL ", portLevelMtls: {80: STRICT}}\n",
                  " (PeerAuthentication demo/pa): spec.portLevelMtls[\"80\"]: not a mapping"},
        ErrorCase{"PaPortValueUnknownField",
                  PA "spec: {" SEL ", portLevelMtls: {80: {mod: STRICT}}}\n",
                  " (PeerAuthentication demo/pa): spec.portLevelMtls[\"80\"].mod: unknown field "
                  "(known: mode)"},
        ErrorCase{"PaPortLevelWithoutSelector", PA "spec: {portLevelMtls: {80: {mode: DISABLE}}}\n",
                  " (PeerAuthentication demo/pa): spec.portLevelMtls: needs a non-empty "
                  "spec.selector.matchLabels (port-level mTLS is not allowed on a namespace-wide "
                  "or mesh-wide PeerAuthentication)"},
        ErrorCase{"PaPortLevelWithEmptySelector",
                  PA "spec: {selector: {matchLabels: {}}, portLevelMtls: {80: {mode: DISABLE}}}\n",
                  " (PeerAuthentication demo/pa): spec.portLevelMtls: needs a non-empty "
                  "spec.selector.matchLabels (port-level mTLS is not allowed on a namespace-wide "
                  "or mesh-wide PeerAuthentication)"},
        ErrorCase{"PaPortLevelEmpty", PA "spec: {" SEL ", portLevelMtls: {}}\n",
                  " (PeerAuthentication demo/pa): spec.portLevelMtls: empty (leave it out, or list "
                  "at least one port)"},
        ErrorCase{"PaPortLevelNotMap", PA "spec: {" SEL ", portLevelMtls: [80]}\n",
                  " (PeerAuthentication demo/pa): spec.portLevelMtls: not a mapping"},
        ErrorCase{"PaTargetRefs",
                  PA "spec: {targetRefs: [{kind: Service, group: '', name: web}]}\n",
                  " (PeerAuthentication demo/pa): spec.targetRefs: not supported on "
                  "PeerAuthentication (Istio has no targetRefs for it; use spec.selector)"},
        ErrorCase{"PaTargetRef", PA "spec: {targetRef: {kind: Service, group: '', name: web}}\n",
                  " (PeerAuthentication demo/pa): spec.targetRef: not supported on "
                  "PeerAuthentication (Istio has no targetRefs for it; use spec.selector)"},
        ErrorCase{"PaUnknownSpecField", PA "spec: {mltls: {mode: STRICT}}\n",
                  " (PeerAuthentication demo/pa): spec.mltls: unknown field (known: selector, "
                  "mtls, portLevelMtls)"},
        ErrorCase{"PaUnknownMtlsField", PA "spec: {mtls: {mode: STRICT, strict: true}}\n",
                  " (PeerAuthentication demo/pa): spec.mtls.strict: unknown field (known: mode)"},
        ErrorCase{"PaUnknownSelectorField", PA "spec: {selector: {matchExpressions: []}}\n",
                  " (PeerAuthentication demo/pa): spec.selector.matchExpressions: unknown field "
                  "(known: matchLabels)"},
        ErrorCase{"PaUnknownTopLevelField", PA "sepc: {mtls: {mode: STRICT}}\n",
                  " (PeerAuthentication demo/pa): sepc: unknown field (known: apiVersion, kind, "
                  "metadata, spec, status)"},
        ErrorCase{"PaSpecNotMap", PA "spec: STRICT\n",
                  " (PeerAuthentication demo/pa): spec: not a mapping"},
        ErrorCase{"PaMtlsNotMap", PA "spec: {mtls: STRICT}\n",
                  " (PeerAuthentication demo/pa): spec.mtls: not a mapping"},
        ErrorCase{"PaSelectorNotMap", PA "spec: {selector: app}\n",
                  " (PeerAuthentication demo/pa): spec.selector: not a mapping"},
        ErrorCase{"PaMatchLabelsBadValue", PA "spec: {selector: {matchLabels: {app: 'x/y'}}}\n",
                  " (PeerAuthentication demo/pa): spec.selector.matchLabels[\"app\"]: not a valid "
                  "label value: \"x/y\""},
        ErrorCase{"PaMatchLabelsBadKey", PA "spec: {selector: {matchLabels: {'a b': x}}}\n",
                  " (PeerAuthentication demo/pa): spec.selector.matchLabels[\"a b\"]: not a valid "
                  "key ([prefix/]name, name: alphanumerics, '-', '_', '.')"},
        ErrorCase{"PaBadCreationTimestamp",
                  "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: "
                  "pa, namespace: demo, creationTimestamp: yesterday}\n",
                  " (PeerAuthentication demo/pa): metadata.creationTimestamp: not an RFC 3339 "
                  "time: \"yesterday\""},
        ErrorCase{"PaCreationTimestampNoZone",
                  "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: "
                  "pa, namespace: demo, creationTimestamp: '2026-07-01T12:00:00'}\n",
                  " (PeerAuthentication demo/pa): metadata.creationTimestamp: not an RFC 3339 "
                  "time: \"2026-07-01T12:00:00\""},
        ErrorCase{"PaCreationTimestampBadDay",
                  "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: "
                  "pa, namespace: demo, creationTimestamp: '2025-02-29T12:00:00Z'}\n",
                  " (PeerAuthentication demo/pa): metadata.creationTimestamp: not an RFC 3339 "
                  "time: \"2025-02-29T12:00:00Z\""},
        ErrorCase{"PaUnsupportedVersion",
                  "apiVersion: security.istio.io/v1alpha1\nkind: PeerAuthentication\nmetadata: "
                  "{name: pa, namespace: demo}\n",
                  " (PeerAuthentication demo/pa): apiVersion: unsupported version "
                  "\"security.istio.io/v1alpha1\" (security.istio.io/v1, "
                  "security.istio.io/v1beta1)"},
        ErrorCase{"PaBadName",
                  "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: "
                  "Default, namespace: demo}\n",
                  " (PeerAuthentication demo/Default): metadata.name: not a valid DNS-1123 "
                  "subdomain: \"Default\""},
        ErrorCase{"PaNoMetadata", "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n",
                  ": metadata: missing"}),
    [](const ::testing::TestParamInfo<ErrorCase>& info) { return std::string(info.param.name); });

#undef SVC
#undef POD
#undef PA
#undef SEL

}  // namespace
}  // namespace zm::k8s
