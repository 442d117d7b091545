// Manifest parsing: the kinds we read, the ones we skip, and an error text for every way an
// object can be wrong that names the file, the document, the object and the field.
#include "common/k8s/manifest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace zm::k8s {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

ParsedFile MustParse(std::string_view yaml, std::string_view name = "pods.yaml") {
  auto f = ParseManifest(yaml, name);
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? *std::move(f) : ParsedFile{};
}

// The single error of a file holding one bad object.
std::string OnlyError(std::string_view yaml, std::string_view name = "pods.yaml") {
  ParsedFile f = MustParse(yaml, name);
  EXPECT_THAT(f.pods, IsEmpty());
  EXPECT_THAT(f.namespaces, IsEmpty());
  EXPECT_EQ(f.errors.size(), 1u) << ::testing::PrintToString(f.errors);
  return f.errors.empty() ? "" : f.errors[0];
}

constexpr char kGood[] = R"(
apiVersion: v1
kind: Namespace
metadata:
  name: demo
  labels:
    zmesh.io/dataplane-mode: ambient
  annotations:
    owner: team-a
---
apiVersion: v1
kind: Pod
metadata:
  name: client
  namespace: demo
  uid: 3f1c9a52-0000-4000-8000-000000000001
  labels: {app: client}
  annotations:
    zmesh.io/netns: zm-client
spec:
  serviceAccountName: client-sa
  nodeName: node-a
status:
  phase: Running
  podIP: 10.0.0.5
  podIPs:
  - ip: 10.0.0.5
  - ip: fd00::5
)";

TEST(ParseManifest, NamespaceAndPod) {
  ParsedFile f = MustParse(kGood);
  EXPECT_THAT(f.errors, IsEmpty());
  ASSERT_EQ(f.namespaces.size(), 1u);
  EXPECT_EQ(f.namespaces[0].name, "demo");
  EXPECT_EQ(f.namespaces[0].labels.at("zmesh.io/dataplane-mode"), "ambient");
  EXPECT_EQ(f.namespaces[0].annotations.at("owner"), "team-a");
  EXPECT_EQ(f.namespaces[0].source, "pods.yaml:doc1");
  ASSERT_EQ(f.pods.size(), 1u);
  const Pod& p = f.pods[0];
  EXPECT_EQ(p.name, "client");
  EXPECT_EQ(p.namespace_name, "demo");
  EXPECT_EQ(p.uid, "3f1c9a52-0000-4000-8000-000000000001");
  EXPECT_EQ(p.labels.at("app"), "client");
  EXPECT_EQ(p.annotations.at("zmesh.io/netns"), "zm-client");
  EXPECT_EQ(p.service_account, "client-sa");
  EXPECT_EQ(p.node_name, "node-a");
  EXPECT_EQ(p.phase, "Running");
  EXPECT_THAT(p.pod_ips, ElementsAre("10.0.0.5", "fd00::5"));  // podIP deduplicated
  EXPECT_EQ(p.source, "pods.yaml:doc2");
  EXPECT_EQ(p.key(), "demo/client");
}

TEST(ParseManifest, DefaultsAndDerivedUid) {
  ParsedFile f = MustParse("apiVersion: v1\nkind: Pod\nmetadata: {name: web}\n");
  ASSERT_EQ(f.pods.size(), 1u);
  EXPECT_EQ(f.pods[0].namespace_name, "default");
  EXPECT_EQ(f.pods[0].service_account, "default");
  EXPECT_EQ(f.pods[0].node_name, "");
  EXPECT_THAT(f.pods[0].pod_ips, IsEmpty());
  // Stable, and distinct per namespace/name.
  EXPECT_EQ(f.pods[0].uid, DerivedUid("default", "web"));
  EXPECT_EQ(DerivedUid("default", "web"), DerivedUid("default", "web"));
  EXPECT_NE(DerivedUid("default", "web"), DerivedUid("demo", "web"));
  EXPECT_NE(DerivedUid("a", "b/c"), DerivedUid("a/b", "c"));
  EXPECT_THAT(DerivedUid("default", "web"), ::testing::StartsWith("local-"));
}

TEST(ParseManifest, MultiDocumentWithEmptyDocuments) {
  ParsedFile f = MustParse(R"(---
# only a comment
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x}
---
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x}
...
)");
  EXPECT_THAT(f.errors, IsEmpty());
  ASSERT_EQ(f.pods.size(), 2u);
  EXPECT_EQ(f.pods[0].name, "a");
  EXPECT_EQ(f.pods[1].name, "b");
  EXPECT_NE(f.pods[0].source, f.pods[1].source);
}

TEST(ParseManifest, ListIsUnrolled) {
  ParsedFile f = MustParse(R"(
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: demo}
- apiVersion: v1
  kind: Service
  metadata: {name: svc, namespace: demo}
- apiVersion: v1
  kind: Pod
  metadata: {name: p, namespace: demo}
  status: {podIP: "10.1"}
- apiVersion: v1
  kind: Pod
  metadata: {name: q, namespace: demo}
)");
  ASSERT_EQ(f.namespaces.size(), 1u);
  ASSERT_EQ(f.pods.size(), 1u);
  EXPECT_EQ(f.pods[0].name, "q");
  EXPECT_EQ(f.pods[0].source, "pods.yaml:doc1/items[3]");
  EXPECT_THAT(f.errors, ElementsAre("pods.yaml: document 1, items[2] (Pod demo/p): status.podIP: "
                                    "not an IP address: \"10.1\""));
}

TEST(ParseManifest, OtherKindsAndApiVersionsAreSkipped) {
  ParsedFile f = MustParse(R"(
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow, namespace: demo}
---
apiVersion: v2
kind: Pod
metadata: {name: future}
---
apiVersion: example.com/v1
kind: Namespace
metadata: {name: crd}
)");
  EXPECT_THAT(f.errors, IsEmpty());
  EXPECT_THAT(f.pods, IsEmpty());
  EXPECT_THAT(f.namespaces, IsEmpty());
}

TEST(ParseManifest, BadPodKeepsTheGoodOnes) {
  ParsedFile f = MustParse(R"(
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: demo}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: demo}
status: {podIP: "10.1"}
---
apiVersion: v1
kind: Pod
metadata: {name: c, namespace: demo}
status: {podIP: 10.0.0.3}
)");
  ASSERT_EQ(f.pods.size(), 2u);
  EXPECT_EQ(f.pods[0].name, "a");
  EXPECT_EQ(f.pods[1].name, "c");
  EXPECT_THAT(f.errors, ElementsAre("pods.yaml: document 2 (Pod demo/client): status.podIP: "
                                    "not an IP address: \"10.1\""));
}

TEST(ParseManifest, MissingName) {
  EXPECT_EQ(OnlyError("apiVersion: v1\nkind: Namespace\nmetadata: {labels: {a: b}}\n", "ns.yaml"),
            "ns.yaml: document 1: metadata.name: missing");
  EXPECT_EQ(OnlyError("apiVersion: v1\nkind: Pod\nmetadata: {namespace: demo}\n"),
            "pods.yaml: document 1: metadata.name: missing");
  EXPECT_EQ(OnlyError("apiVersion: v1\nkind: Pod\n"), "pods.yaml: document 1: metadata: missing");
}

// Each case: a document and the error it must produce (after "pods.yaml: document 1").
struct ErrorCase {
  const char* name;
  const char* yaml;
  const char* error;
};

class ParseErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ParseErrorTest, NamesFileDocumentObjectAndField) {
  EXPECT_EQ(OnlyError(GetParam().yaml), std::string("pods.yaml: document 1") + GetParam().error);
}

INSTANTIATE_TEST_SUITE_P(
    Fields, ParseErrorTest,
    ::testing::Values(
        ErrorCase{"NotAMapping", "- a\n- b\n", ": (object): not a mapping"},
        ErrorCase{"NoKind", "apiVersion: v1\nmetadata: {name: x}\n", ": kind: missing"},
        ErrorCase{"NoApiVersion", "kind: Pod\nmetadata: {name: x}\n", ": apiVersion: missing"},
        ErrorCase{"KindNotString", "apiVersion: v1\nkind: [Pod]\n", ": kind: not a string"},
        ErrorCase{"MetadataNotMap", "apiVersion: v1\nkind: Pod\nmetadata: [x]\n",
                  ": metadata: not a mapping"},
        ErrorCase{"BadPodName", "apiVersion: v1\nkind: Pod\nmetadata: {name: Web_1}\n",
                  " (Pod default/Web_1): metadata.name: not a valid DNS-1123 subdomain: \"Web_1\""},
        ErrorCase{"BadNamespaceName", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a.b}\n",
                  " (Namespace a.b): metadata.name: not a valid DNS-1123 label: \"a.b\""},
        ErrorCase{"BadNamespaceOfPod",
                  "apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: -demo}\n",
                  " (Pod -demo/x): metadata.namespace: not a valid DNS-1123 label: \"-demo\""},
        ErrorCase{"LabelsNotMap",
                  "apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: d, labels: [a]}\n",
                  " (Pod d/x): metadata.labels: not a mapping"},
        ErrorCase{"LabelValueNotString",
                  "apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: d, labels: {a: [b]}}\n",
                  " (Pod d/x): metadata.labels[\"a\"]: value is not a string"},
        ErrorCase{"BadLabelValue",
                  "apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: d, labels: {a: 'x y'}}\n",
                  " (Pod d/x): metadata.labels[\"a\"]: not a valid label value: \"x y\""},
        ErrorCase{"BadAnnotationKey",
                  "apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: d, annotations: "
                  "{'bad key': v}}\n",
                  " (Pod d/x): metadata.annotations[\"bad key\"]: not a valid key ([prefix/]name, "
                  "name: alphanumerics, '-', '_', '.')"},
        ErrorCase{"SpecNotMap", "apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: d}\nspec: 3\n",
                  " (Pod d/x): spec: not a mapping"},
        ErrorCase{"BadServiceAccount",
                  "apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: d}\n"
                  "spec: {serviceAccountName: SA}\n",
                  " (Pod d/x): spec.serviceAccountName: not a valid DNS-1123 subdomain: \"SA\""},
        ErrorCase{"BadNodeName",
                  "apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: d}\n"
                  "spec: {nodeName: {a: b}}\n",
                  " (Pod d/x): spec.nodeName: not a string"},
        ErrorCase{"BadPodIp",
                  "apiVersion: v1\nkind: Pod\nmetadata: {name: client, namespace: demo}\n"
                  "status: {podIP: '10.1'}\n",
                  " (Pod demo/client): status.podIP: not an IP address: \"10.1\""},
        ErrorCase{"BadPodIpsEntry",
                  "apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: d}\n"
                  "status: {podIPs: [{ip: 10.0.0.1}, {ip: 'fd00::zz'}]}\n",
                  " (Pod d/x): status.podIPs[1].ip: not an IP address: \"fd00::zz\""},
        ErrorCase{"PodIpsEntryWithoutIp",
                  "apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: d}\n"
                  "status: {podIPs: [{}]}\n",
                  " (Pod d/x): status.podIPs[0].ip: missing"},
        ErrorCase{"PodIpsNotList",
                  "apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: d}\n"
                  "status: {podIPs: 10.0.0.1}\n",
                  " (Pod d/x): status.podIPs: not a list"},
        ErrorCase{"BadPhase",
                  "apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: d}\n"
                  "status: {phase: Done}\n",
                  " (Pod d/x): status.phase: not a pod phase (Pending, Running, Succeeded, "
                  "Failed, Unknown): \"Done\""},
        ErrorCase{"ListItemsNotList", "apiVersion: v1\nkind: List\nitems: {a: b}\n",
                  ": items: not a list"}),
    [](const ::testing::TestParamInfo<ErrorCase>& info) { return std::string(info.param.name); });

TEST(ParseManifest, MalformedYamlIsOneErrorWithLineAndColumn) {
  auto f = ParseManifest("apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n", "bad.yaml");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(f.status().message()), ::testing::MatchesRegex(
      "bad\\.yaml: line [0-9]+, column [0-9]+: YAML error: .+"));
}

TEST(ParseManifest, MalformedYamlReportsTheRightLine) {
  // The tab-free mapping breaks on line 3 (a key with no value then a bad indent).
  auto f = ParseManifest("a: 1\nb: 2\n c: 3\n", "bad.yaml");
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("bad.yaml: line 3, column"));
}

// ParseObject: one object on its own (what the API server sends, as JSON) reads exactly like the
// same object in a manifest file; only the source and the error prefix differ.
TEST(ParseObject, JsonReadsLikeTheSameYaml) {
  ParsedFile yaml = MustParse(kGood);
  ASSERT_EQ(yaml.pods.size(), 1u);
  auto json = ParseObject(
      R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"client","namespace":"demo",)"
      R"("uid":"3f1c9a52-0000-4000-8000-000000000001","labels":{"app":"client"},)"
      R"("annotations":{"zmesh.io/netns":"zm-client"}},"spec":{"serviceAccountName":"client-sa",)"
      R"("nodeName":"node-a"},"status":{"phase":"Running","podIP":"10.0.0.5",)"
      R"("podIPs":[{"ip":"10.0.0.5"},{"ip":"fd00::5"}]}})",
      "kube-apiserver");
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_THAT(json->errors, IsEmpty());
  ASSERT_EQ(json->pods.size(), 1u);
  EXPECT_EQ(json->pods[0].source, "kube-apiserver");
  Pod expected = yaml.pods[0];
  expected.source = "kube-apiserver";
  EXPECT_TRUE(json->pods[0] == expected);
}

TEST(ParseObject, ErrorsNameTheSourceAndTheObject) {
  auto f = ParseObject(
      R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"client","namespace":"demo"},)"
      R"("status":{"podIP":"10.1"}})",
      "kube-apiserver");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_THAT(f->pods, IsEmpty());
  EXPECT_THAT(f->errors, ElementsAre("kube-apiserver (Pod demo/client): status.podIP: not an IP "
                                     "address: \"10.1\""));
  // A JSON string is a string even when it reads like a number (IntOrString).
  auto svc = ParseObject(
      R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"demo"},)"
      R"("spec":{"ports":[{"name":"a","port":80,"targetPort":"http"},)"
      R"({"name":"b","port":81,"targetPort":8081}]}})",
      "api");
  ASSERT_TRUE(svc.ok()) << svc.status();
  ASSERT_EQ(svc->services.size(), 1u);
  EXPECT_EQ(svc->services[0].ports[0].target_port_name, "http");
  EXPECT_EQ(svc->services[0].ports[1].target_port, 8081);
}

TEST(ParseObject, ListIsNotUnrolledAndNonYamlFails) {
  auto list = ParseObject(R"({"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1",)"
                          R"("kind":"Namespace","metadata":{"name":"demo"}}]})",
                          "api");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_FALSE(list->HasObjects());
  EXPECT_THAT(list->errors, IsEmpty());
  auto bad = ParseObject("{\"kind\": [", "api");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), ::testing::StartsWith("api: line 1, column"));
  EXPECT_EQ(ParseObject("", "api").status().code(), absl::StatusCode::kInvalidArgument);
  auto scalar = ParseObject("42", "api");
  ASSERT_TRUE(scalar.ok());
  EXPECT_THAT(scalar->errors, ElementsAre("api: (object): not a mapping"));
}

TEST(ParseManifestFile, ReadsFileAndNamesIt) {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("zm-k8s-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / "p.yaml").string();
  std::ofstream(path) << "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nstatus: {podIP: nope}\n";
  auto f = ParseManifestFile(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_THAT(f->errors, ElementsAre(path + ": document 1 (Pod default/x): status.podIP: not an "
                                            "IP address: \"nope\""));
  auto missing = ParseManifestFile((dir / "absent.yaml").string());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("absent.yaml"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace zm::k8s
