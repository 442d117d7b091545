// JSON from the API server becomes the same k8s structs as the same object in a YAML manifest
// (one translation for both modes), and the kinds' API paths are the real ones.
#include "common/kube/kinds.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/common/kube/kube_test_util.h"

namespace zm::kube {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

struct Case {
  std::string name;
  std::string yaml;  // as written in a local manifest
  std::string json;  // as the API server sends it (with the server's own fields)
};

// The one object of a manifest.
k8s::ParsedFile Manifest(const std::string& yaml) {
  auto f = k8s::ParseManifest(yaml, "m.yaml");
  EXPECT_TRUE(f.ok()) << f.status();
  EXPECT_THAT(f->errors, ::testing::IsEmpty());
  return f.ok() ? *std::move(f) : k8s::ParsedFile{};
}

template <typename T>
T FromSource(T value) {
  value.source = kApiServerSource;
  return value;
}

const Case kCases[] = {
    {"pod",
     R"(apiVersion: v1
kind: Pod
metadata:
  name: client
  namespace: demo
  uid: 0b7e0c8e-1111-4000-8000-000000000001
  labels: {app: client, version: "1.0"}
  annotations: {zmesh.io/status: enrolled}
spec:
  serviceAccountName: client-sa
  nodeName: node-a
  containers:
  - name: app
    ports:
    - {name: http, containerPort: 8080}
    - {containerPort: 53, protocol: UDP}
status:
  phase: Running
  podIP: 10.0.0.5
  podIPs: [{ip: 10.0.0.5}, {ip: "fd00::5"}]
)",
     R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"client","namespace":"demo",
"uid":"0b7e0c8e-1111-4000-8000-000000000001","resourceVersion":"4711","generation":1,
"creationTimestamp":"2026-01-01T00:00:00Z","labels":{"app":"client","version":"1.0"},
"annotations":{"zmesh.io/status":"enrolled"},"ownerReferences":[{"apiVersion":"apps/v1",
"kind":"ReplicaSet","name":"client-7d4f","uid":"x","controller":true}],
"managedFields":[{"manager":"kubelet","operation":"Update","fieldsV1":{"f:status":{}}}]},
"spec":{"serviceAccountName":"client-sa","serviceAccount":"client-sa","nodeName":"node-a",
"containers":[{"name":"app","image":"busybox","ports":[{"name":"http","containerPort":8080,
"protocol":"TCP"},{"containerPort":53,"protocol":"UDP"}],"resources":{}}],
"restartPolicy":"Always","tolerations":[{"key":"node.kubernetes.io/not-ready",
"operator":"Exists","effect":"NoExecute","tolerationSeconds":300}]},
"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}],
"hostIP":"192.168.1.10","podIP":"10.0.0.5","podIPs":[{"ip":"10.0.0.5"},{"ip":"fd00::5"}],
"startTime":"2026-01-01T00:00:01Z"}})"},
    {"pending pod without address",
     R"(apiVersion: v1
kind: Pod
metadata: {name: job, namespace: batch, uid: u-2}
status: {phase: Pending}
)",
     R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"job","namespace":"batch","uid":"u-2",
"resourceVersion":"9"},"spec":{"containers":[{"name":"c","image":"x"}]},
"status":{"phase":"Pending","qosClass":"BestEffort"}})"},
    {"namespace",
     R"(apiVersion: v1
kind: Namespace
metadata:
  name: demo
  labels: {zmesh.io/dataplane-mode: ambient, kubernetes.io/metadata.name: demo}
)",
     R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"demo","uid":"n-1",
"resourceVersion":"12","labels":{"zmesh.io/dataplane-mode":"ambient",
"kubernetes.io/metadata.name":"demo"}},"spec":{"finalizers":["kubernetes"]},
"status":{"phase":"Active"}})"},
    {"service",
     R"(apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  selector: {app: web}
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10, "fd00:96::10"]
  ports:
  - {name: http, port: 80, targetPort: http, appProtocol: http}
  - {name: grpc, port: 9090, targetPort: 9091}
  - {name: dns, port: 53, protocol: UDP}
)",
     R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"demo",
"uid":"s-1","resourceVersion":"77"},"spec":{"selector":{"app":"web"},"type":"ClusterIP",
"clusterIP":"10.96.0.10","clusterIPs":["10.96.0.10","fd00:96::10"],
"ipFamilies":["IPv4","IPv6"],"ipFamilyPolicy":"PreferDualStack","sessionAffinity":"None",
"internalTrafficPolicy":"Cluster","ports":[{"name":"http","port":80,"targetPort":"http",
"protocol":"TCP","appProtocol":"http"},{"name":"grpc","port":9090,"targetPort":9091,
"protocol":"TCP"},{"name":"dns","port":53,"targetPort":53,"protocol":"UDP"}]},
"status":{"loadBalancer":{}}})"},
    {"headless service",
     R"(apiVersion: v1
kind: Service
metadata: {name: db, namespace: demo}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{port: 5432}]
)",
     R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"db","namespace":"demo"},
"spec":{"clusterIP":"None","clusterIPs":["None"],"selector":{"app":"db"},"type":"ClusterIP",
"ports":[{"port":5432,"targetPort":5432,"protocol":"TCP"}]}})"},
    {"peer authentication",
     R"(apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: strict
  namespace: demo
  creationTimestamp: "2026-01-01T00:00:00Z"
spec:
  selector: {matchLabels: {app: web}}
  mtls: {mode: STRICT}
  portLevelMtls:
    "8080": {mode: PERMISSIVE}
)",
     R"({"apiVersion":"security.istio.io/v1","kind":"PeerAuthentication","metadata":{
"name":"strict","namespace":"demo","uid":"p-1","resourceVersion":"5","generation":1,
"creationTimestamp":"2026-01-01T00:00:00Z"},"spec":{"selector":{"matchLabels":{"app":"web"}},
"mtls":{"mode":"STRICT"},"portLevelMtls":{"8080":{"mode":"PERMISSIVE"}}}})"},
};

class ConversionTest : public ::testing::TestWithParam<Case> {};

TEST_P(ConversionTest, JsonGivesTheSameStructAsTheYamlManifest) {
  const Case& c = GetParam();
  const json object = json::parse(c.json);
  k8s::ParsedFile want = Manifest(c.yaml);
  if (!want.pods.empty()) {
    auto got = PodFromJson(object);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(*got == FromSource(want.pods[0]));
    EXPECT_EQ(got->source, "kube-apiserver");
  } else if (!want.namespaces.empty()) {
    auto got = NamespaceFromJson(object);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(*got == FromSource(want.namespaces[0]));
  } else if (!want.services.empty()) {
    auto got = ServiceFromJson(object);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(*got == FromSource(want.services[0]));
  } else {
    ASSERT_EQ(want.peer_authentications.size(), 1u);
    auto got = PeerAuthenticationFromJson(object);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_TRUE(std::holds_alternative<k8s::PeerAuthentication>(*got));
    EXPECT_TRUE(std::get<k8s::PeerAuthentication>(*got) ==
                FromSource(want.peer_authentications[0]));
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, ConversionTest, ::testing::ValuesIn(kCases), [](const auto& info) {
  std::string n = info.param.name;
  for (char& ch : n) {
    if (ch == ' ') ch = '_';
  }
  return n;
});

TEST(Conversion, ErrorsNameTheObjectAndTheField) {
  auto bad_ip = PodFromJson(json::parse(
      R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"x","namespace":"demo"},"status":{"podIP":"10.1"}})"));
  EXPECT_EQ(bad_ip.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(bad_ip.status().message()),
            "kube-apiserver (Pod demo/x): status.podIP: not an IP address: \"10.1\"");
  auto wrong_kind = PodFromJson(json::parse(
      R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"x","namespace":"demo"}})"));
  EXPECT_EQ(std::string(wrong_kind.status().message()),
            "kube-apiserver: not a v1 Pod (apiVersion \"v1\", kind \"Service\")");
}

TEST(Conversion, InvalidPeerAuthenticationIsKeptRejected) {
  auto got = PeerAuthenticationFromJson(json::parse(
      R"({"apiVersion":"security.istio.io/v1","kind":"PeerAuthentication","metadata":{"name":"p",
"namespace":"demo"},"spec":{"selector":{"matchLabels":{"app":"web"}},"mtls":{"mode":"strict"}}})"));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(std::holds_alternative<k8s::RejectedPeerAuthentication>(*got));
  const auto& r = std::get<k8s::RejectedPeerAuthentication>(*got);
  EXPECT_EQ(r.key(), "demo/p");
  EXPECT_EQ(r.selector, k8s::StringMap({{"app", "web"}}));
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0], HasSubstr("kube-apiserver (PeerAuthentication demo/p): spec.mtls.mode: "
                                     "unknown mode \"strict\""));
}

TEST(Conversion, AuthorizationPolicyThroughTheManifestParser) {
  auto got = AuthorizationPolicyFromJson(json::parse(
      R"({"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy","metadata":{"name":"deny",
"namespace":"demo","uid":"u1","resourceVersion":"7","creationTimestamp":"2024-01-01T00:00:00Z"},
"spec":{"action":"DENY","selector":{"matchLabels":{"app":"web"}},
"rules":[{"to":[{"operation":{"ports":["8080"]}}]}]}})"));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(std::holds_alternative<authz::AuthorizationPolicy>(*got));
  const auto& p = std::get<authz::AuthorizationPolicy>(*got);
  EXPECT_EQ(p.key(), "demo/deny");
  EXPECT_EQ(p.action, authz::Action::kDeny);
  EXPECT_EQ(p.selector, authz::StringMap({{"app", "web"}}));
  ASSERT_EQ(p.rules.size(), 1u);
}

TEST(Conversion, InvalidAuthorizationPolicyIsKeptRejected) {
  // An unknown field: Istio's webhook would refuse it; here it must fail closed, not vanish.
  auto got = AuthorizationPolicyFromJson(json::parse(
      R"({"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy","metadata":{"name":"p",
"namespace":"demo"},"spec":{"action":"DENY","selector":{"matchLabels":{"app":"web"}},"rulez":[]}})"));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(std::holds_alternative<authz::RejectedAuthorizationPolicy>(*got));
  const auto& r = std::get<authz::RejectedAuthorizationPolicy>(*got);
  EXPECT_EQ(r.key(), "demo/p");
  EXPECT_EQ(r.action, authz::Action::kDeny);
  EXPECT_EQ(r.selector, authz::StringMap({{"app", "web"}}));
  EXPECT_THAT(r.error, HasSubstr("kube-apiserver (AuthorizationPolicy demo/p): spec.rulez"));
  // Another kind is refused.
  auto wrong = AuthorizationPolicyFromJson(testing::NamespaceJson("demo"));
  EXPECT_FALSE(wrong.ok());
}

TEST(Conversion, RequestAuthenticationThroughTheManifestParser) {
  const std::string yaml = R"(apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: demo}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
  jwtRules:
  - issuer: https://issuer.example
    jwksUri: https://issuer.example/jwks.json
    audiences: [shop]
    fromHeaders: [{name: x-jwt, prefix: "Bearer "}]
)";
  auto got = RequestAuthenticationFromJson(json::parse(
      R"({"apiVersion":"security.istio.io/v1","kind":"RequestAuthentication","metadata":{"name":"jwt",
"namespace":"demo","uid":"u2","resourceVersion":"8","generation":1},"spec":{"targetRefs":[
{"kind":"Gateway","group":"gateway.networking.k8s.io","name":"waypoint"}],"jwtRules":[{
"issuer":"https://issuer.example","jwksUri":"https://issuer.example/jwks.json",
"audiences":["shop"],"fromHeaders":[{"name":"x-jwt","prefix":"Bearer "}]}]}})"));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(std::holds_alternative<jwt::RequestAuthentication>(*got));
  const auto& ra = std::get<jwt::RequestAuthentication>(*got);
  k8s::ParsedFile want = Manifest(yaml);
  ASSERT_EQ(want.request_authentications.size(), 1u);
  EXPECT_EQ(ra.key(), "demo/jwt");
  EXPECT_EQ(ra.rules.size(), 1u);
  EXPECT_TRUE(ra == FromSource(want.request_authentications[0]));
}

TEST(Conversion, InvalidRequestAuthenticationIsKeptRejected) {
  // Both jwksUri and jwks: refused by validation, kept so that tokens at its scope fail (401).
  auto got = RequestAuthenticationFromJson(json::parse(
      R"({"apiVersion":"security.istio.io/v1","kind":"RequestAuthentication","metadata":{"name":"bad",
"namespace":"demo"},"spec":{"selector":{"matchLabels":{"app":"web"}},"jwtRules":[{"issuer":"i",
"jwksUri":"https://i/jwks","jwks":"{\"keys\":[]}"}]}})"));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(std::holds_alternative<jwt::RejectedRequestAuthentication>(*got));
  const auto& r = std::get<jwt::RejectedRequestAuthentication>(*got);
  EXPECT_EQ(r.key(), "demo/bad");
  EXPECT_EQ(r.selector, authz::StringMap({{"app", "web"}}));
  EXPECT_THAT(r.error, HasSubstr("kube-apiserver (RequestAuthentication demo/bad)"));
  EXPECT_FALSE(RequestAuthenticationFromJson(testing::NamespaceJson("demo")).ok());
}

TEST(ResourceKind, PathsAreTheApiServersPaths) {
  EXPECT_EQ(kPodKind.CollectionPath(), "/api/v1/pods");
  EXPECT_EQ(kPodKind.CollectionPath("demo"), "/api/v1/namespaces/demo/pods");
  EXPECT_EQ(kPodKind.ObjectPath("demo", "client"), "/api/v1/namespaces/demo/pods/client");
  EXPECT_EQ(kNamespaceKind.CollectionPath("ignored"), "/api/v1/namespaces");
  EXPECT_EQ(kNamespaceKind.ObjectPath("", "demo"), "/api/v1/namespaces/demo");
  EXPECT_EQ(kServiceKind.CollectionPath(), "/api/v1/services");
  EXPECT_EQ(kEndpointSliceKind.CollectionPath("demo"),
            "/apis/discovery.k8s.io/v1/namespaces/demo/endpointslices");
  EXPECT_EQ(kAuthorizationPolicyKind.CollectionPath(),
            "/apis/security.istio.io/v1/authorizationpolicies");
  EXPECT_EQ(kPeerAuthenticationKind.CollectionPath(),
            "/apis/security.istio.io/v1/peerauthentications");
  EXPECT_EQ(kRequestAuthenticationKind.CollectionPath(),
            "/apis/security.istio.io/v1/requestauthentications");
}

}  // namespace
}  // namespace zm::kube
