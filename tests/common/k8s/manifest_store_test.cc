// ManifestStore: a directory merged into one snapshot; last good content kept across a
// broken rewrite, deleted files dropped, duplicates resolved by sorted file order.
#include "common/k8s/manifest_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace zm::k8s {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string PodYaml(std::string_view ns, std::string_view name, std::string_view ip) {
  return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + std::string(name) +
         ", namespace: " + std::string(ns) + "}\nstatus: {podIP: " + std::string(ip) + "}\n";
}

std::vector<std::string> PodKeys(const ManifestSnapshot& s) {
  std::vector<std::string> out;
  for (const Pod& p : s.pods) out.push_back(p.key());
  return out;
}

class ManifestStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("zm-store-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& name, const std::string& content) {
    std::ofstream(dir_ / name) << content;
  }
  ManifestSnapshot Reload(ManifestStore& store) {
    absl::Status s = store.Reload();
    EXPECT_TRUE(s.ok()) << s;
    return store.Snapshot();
  }
  std::filesystem::path dir_;
};

TEST_F(ManifestStoreTest, MergesFilesInSortedOrderAndSkipsOthers) {
  Write("b.yaml", PodYaml("demo", "b", "10.0.0.2"));
  Write("a.yml", PodYaml("demo", "a", "10.0.0.1") +
                     "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n");
  Write("c.json", R"({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "c", "namespace": "demo"}})");
  Write("notes.txt", PodYaml("demo", "txt", "10.0.0.9"));
  Write(".hidden.yaml", PodYaml("demo", "hidden", "10.0.0.9"));
  std::filesystem::create_directories(dir_ / "sub.yaml");
  Write("sub.yaml/inner.yaml", PodYaml("demo", "inner", "10.0.0.9"));
  ManifestStore store(dir_.string());
  ManifestSnapshot s = Reload(store);
  EXPECT_THAT(s.errors, IsEmpty());
  EXPECT_THAT(PodKeys(s), ElementsAre("demo/a", "demo/b", "demo/c"));
  ASSERT_EQ(s.namespaces.size(), 1u);
  ASSERT_NE(s.FindPod("demo", "b"), nullptr);
  EXPECT_EQ(s.FindPod("demo", "b")->source, "b.yaml:doc1");
  EXPECT_EQ(s.FindPod("demo", "zz"), nullptr);
  ASSERT_NE(s.FindNamespace("demo"), nullptr);
  EXPECT_EQ(s.FindNamespace("other"), nullptr);
}

TEST_F(ManifestStoreTest, KeepsLastGoodContentOfABrokenRewrite) {
  Write("pods.yaml", PodYaml("demo", "a", "10.0.0.1"));
  ManifestStore store(dir_.string());
  ASSERT_THAT(PodKeys(Reload(store)), ElementsAre("demo/a"));

  Write("pods.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: [broken\n");
  ManifestSnapshot s = Reload(store);
  EXPECT_THAT(PodKeys(s), ElementsAre("demo/a"));
  ASSERT_EQ(s.errors.size(), 1u);
  EXPECT_THAT(s.errors[0], HasSubstr("pods.yaml: line "));
  EXPECT_THAT(s.errors[0], HasSubstr("keeping its last good content"));

  // Fixed: the new content replaces the old, the error goes away.
  Write("pods.yaml", PodYaml("demo", "b", "10.0.0.2"));
  s = Reload(store);
  EXPECT_THAT(PodKeys(s), ElementsAre("demo/b"));
  EXPECT_THAT(s.errors, IsEmpty());
}

TEST_F(ManifestStoreTest, ObjectErrorsDropOnlyThatObject) {
  Write("pods.yaml", PodYaml("demo", "a", "10.0.0.1"));
  ManifestStore store(dir_.string());
  Reload(store);
  Write("pods.yaml", PodYaml("demo", "a", "10.0.0.1") + "---\n" + PodYaml("demo", "b", "10.1"));
  ManifestSnapshot s = Reload(store);
  EXPECT_THAT(PodKeys(s), ElementsAre("demo/a"));
  EXPECT_THAT(s.errors, ElementsAre("pods.yaml: document 2 (Pod demo/b): status.podIP: not an IP "
                                    "address: \"10.1\""));
}

TEST_F(ManifestStoreTest, DeletedFileDropsItsObjects) {
  Write("a.yaml", PodYaml("demo", "a", "10.0.0.1"));
  Write("b.yaml", PodYaml("demo", "b", "10.0.0.2"));
  ManifestStore store(dir_.string());
  ASSERT_THAT(PodKeys(Reload(store)), ElementsAre("demo/a", "demo/b"));
  std::filesystem::remove(dir_ / "a.yaml");
  EXPECT_THAT(PodKeys(Reload(store)), ElementsAre("demo/b"));
  // Also when it was broken at the time (its last good content goes with it).
  Write("b.yaml", "{{{");
  EXPECT_THAT(PodKeys(Reload(store)), ElementsAre("demo/b"));
  std::filesystem::remove(dir_ / "b.yaml");
  ManifestSnapshot s = Reload(store);
  EXPECT_THAT(s.pods, IsEmpty());
  EXPECT_THAT(s.errors, IsEmpty());
}

TEST_F(ManifestStoreTest, DuplicatesFirstFileWinsAndErrorNamesBoth) {
  Write("a.yaml", PodYaml("demo", "web", "10.0.0.1") +
                      "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n");
  Write("b.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: demo, labels: {x: y}}\n---\n" +
                      PodYaml("demo", "web", "10.0.0.2"));
  ManifestStore store(dir_.string());
  ManifestSnapshot s = Reload(store);
  ASSERT_EQ(s.pods.size(), 1u);
  EXPECT_EQ(s.pods[0].pod_ips[0], "10.0.0.1");
  ASSERT_EQ(s.namespaces.size(), 1u);
  EXPECT_THAT(s.namespaces[0].labels, IsEmpty());
  EXPECT_THAT(s.errors,
              ElementsAre("b.yaml:doc1: Namespace demo: duplicate, already defined at a.yaml:doc2 "
                          "(keeping that one)",
                          "b.yaml:doc2: Pod demo/web: duplicate, already defined at a.yaml:doc1 "
                          "(keeping that one)"));
}

TEST_F(ManifestStoreTest, DuplicateUidIsAnError) {
  Write("a.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: d, uid: u1}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: y, namespace: d, uid: u1}\n");
  ManifestStore store(dir_.string());
  ManifestSnapshot s = Reload(store);
  EXPECT_THAT(PodKeys(s), ElementsAre("d/x"));
  EXPECT_THAT(s.errors, ElementsAre("a.yaml:doc2: Pod d/y: metadata.uid: \"u1\" already used by "
                                    "Pod d/x at a.yaml:doc1 (keeping that one)"));
}

constexpr char kPaHeader[] = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n";

TEST_F(ManifestStoreTest, ServicesAndPeerAuthenticationsSortedAndFound) {
  Write("b.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo}\n---\n" +
                      std::string(kPaHeader) + "metadata: {name: strict, namespace: demo}\n"
                      "spec: {mtls: {mode: STRICT}}\n");
  Write("a.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: demo}\n---\n" +
                      std::string(kPaHeader) + "metadata: {name: default, namespace: zmesh-system}\n"
                      "---\n" + kPaHeader + "metadata: {name: broken, namespace: demo}\n"
                      "spec: {mtls: {mode: strict}}\n");
  ManifestStore store(dir_.string());
  ManifestSnapshot s = Reload(store);
  ASSERT_EQ(s.services.size(), 2u);
  EXPECT_EQ(s.services[0].key(), "demo/db");
  EXPECT_EQ(s.services[1].key(), "demo/web");
  ASSERT_EQ(s.peer_authentications.size(), 2u);
  EXPECT_EQ(s.peer_authentications[0].key(), "demo/strict");
  EXPECT_EQ(s.peer_authentications[1].key(), "zmesh-system/default");
  ASSERT_EQ(s.rejected_peer_authentications.size(), 1u);
  EXPECT_EQ(s.rejected_peer_authentications[0].key(), "demo/broken");
  EXPECT_THAT(s.errors, ElementsAre(HasSubstr("a.yaml: document 3 (PeerAuthentication "
                                              "demo/broken): spec.mtls.mode: unknown mode")));
  ASSERT_NE(s.FindService("demo", "web"), nullptr);
  EXPECT_EQ(s.FindService("demo", "nope"), nullptr);
  ASSERT_NE(s.FindPeerAuthentication("demo", "strict"), nullptr);
  EXPECT_EQ(s.FindPeerAuthentication("demo", "broken"), nullptr);  // only valid ones
}

TEST_F(ManifestStoreTest, ServiceAndPeerAuthenticationDuplicatesFirstFileWins) {
  Write("a.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo}\n"
                  "spec: {clusterIP: 10.96.0.1}\n---\n" +
                      std::string(kPaHeader) + "metadata: {name: pa, namespace: demo}\n"
                      "spec: {mtls: {mode: STRICT}}\n");
  Write("b.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo}\n"
                  "spec: {clusterIP: 10.96.0.2}\n---\n" +
                      std::string(kPaHeader) + "metadata: {name: pa, namespace: demo}\n"
                      "spec: {mtls: {mode: DISABLE}}\n");
  ManifestStore store(dir_.string());
  ManifestSnapshot s = Reload(store);
  ASSERT_EQ(s.services.size(), 1u);
  EXPECT_THAT(s.services[0].cluster_ips, ElementsAre("10.96.0.1"));
  ASSERT_EQ(s.peer_authentications.size(), 1u);
  EXPECT_EQ(s.peer_authentications[0].mode, PeerAuthenticationMode::kStrict);
  EXPECT_THAT(s.errors,
              ElementsAre("b.yaml:doc1: Service demo/web: duplicate, already defined at "
                          "a.yaml:doc1 (keeping that one)",
                          "b.yaml:doc2: PeerAuthentication demo/pa: duplicate, already defined "
                          "at a.yaml:doc2 (keeping that one)"));
}

// A rejected PeerAuthentication holds its name like a valid one: the first wins either way, so a
// broken rewrite in an earlier file cannot be bypassed by a permissive copy in a later one.
TEST_F(ManifestStoreTest, RejectedPeerAuthenticationTakesPartInDuplicates) {
  Write("a.yaml", std::string(kPaHeader) + "metadata: {name: pa, namespace: demo}\n"
                                           "spec: {mtls: {mode: STRICTT}}\n");
  Write("b.yaml", std::string(kPaHeader) + "metadata: {name: pa, namespace: demo}\n"
                                           "spec: {mtls: {mode: PERMISSIVE}}\n---\n" +
                      kPaHeader + "metadata: {name: pb, namespace: demo}\n"
                                  "spec: {mtls: {mode: DISABLE}}\n---\n" +
                      kPaHeader + "metadata: {name: pb, namespace: demo}\n"
                                  "spec: {mtls: {mod: STRICT}}\n");
  ManifestStore store(dir_.string());
  ManifestSnapshot s = Reload(store);
  ASSERT_EQ(s.rejected_peer_authentications.size(), 1u);
  EXPECT_EQ(s.rejected_peer_authentications[0].source, "a.yaml:doc1");
  ASSERT_EQ(s.peer_authentications.size(), 1u);
  EXPECT_EQ(s.peer_authentications[0].key(), "demo/pb");
  EXPECT_THAT(s.errors, ElementsAre(HasSubstr("a.yaml: document 1"),
                                    HasSubstr("b.yaml: document 3"),
                                    "b.yaml:doc1: PeerAuthentication demo/pa: duplicate, already "
                                    "defined at a.yaml:doc1 (keeping that one)",
                                    "b.yaml:doc3: PeerAuthentication demo/pb: duplicate, already "
                                    "defined at b.yaml:doc2 (keeping that one)"));
}

TEST_F(ManifestStoreTest, BrokenRewriteKeepsLastGoodPolicies) {
  Write("pa.yaml", std::string(kPaHeader) + "metadata: {name: pa, namespace: demo}\n"
                                            "spec: {mtls: {mode: STRICT}}\n");
  ManifestStore store(dir_.string());
  ASSERT_EQ(Reload(store).peer_authentications.size(), 1u);
  Write("pa.yaml", "apiVersion: [broken\n");
  ManifestSnapshot s = Reload(store);
  ASSERT_EQ(s.peer_authentications.size(), 1u);
  ASSERT_EQ(s.errors.size(), 1u);
  EXPECT_THAT(s.errors[0], HasSubstr("keeping its last good content"));
}

TEST_F(ManifestStoreTest, MissingDirectoryIsAnErrorNamingIt) {
  ManifestStore store((dir_ / "nope").string());
  absl::Status s = store.Reload();
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr((dir_ / "nope").string()));
}

}  // namespace
}  // namespace zm::k8s
