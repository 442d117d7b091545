// The sandboxes zmesh-cni reported: laid over the objects (netns annotation and addresses, only for
// the same pod), kept in a file across restarts, forgotten on DEL (of that sandbox only) and when
// the pod is gone.
#include "agent/cni_pods.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "common/mesh/workload.h"
#include "tests/testutil/temp_dir.h"

namespace zm::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using Clock = std::chrono::steady_clock;

k8s::Pod Pod(std::string ns, std::string name, std::string uid) {
  return {.uid = std::move(uid),
          .name = std::move(name),
          .namespace_name = std::move(ns),
          .node_name = "n1"};
}

CniPod Sandbox(std::string ns, std::string name, std::string uid, const std::string& container) {
  return {.ns = std::move(ns),
          .name = std::move(name),
          .uid = std::move(uid),
          .container_id = container,
          .netns = "/var/run/netns/cni-" + container,
          .ips = {"10.1.0.7"},
          .recorded = Clock::now()};
}

TEST(WithCniPods, GivesThePodItsNetnsAndAddresses) {
  k8s::ManifestSnapshot objects;
  objects.pods = {Pod("demo", "a", "ua"), Pod("demo", "b", "ub"), Pod("demo", "c", "uc")};
  objects.pods[1].pod_ips = {"10.1.0.99"};
  objects.pods[1].annotations[std::string(mesh::kNetnsAnnotation)] = "/old";
  std::map<std::string, CniPod> pods = {{"demo/b", Sandbox("demo", "b", "ub", "c1")},
                                        {"demo/c", Sandbox("demo", "c", "other", "c2")}};
  k8s::ManifestSnapshot out = WithCniPods(objects, pods);
  EXPECT_EQ(out.pods[0], objects.pods[0]);  // no record
  EXPECT_EQ(out.pods[1].annotations.at(std::string(mesh::kNetnsAnnotation)),
            "/var/run/netns/cni-c1");
  EXPECT_THAT(out.pods[1].pod_ips, ElementsAre("10.1.0.7"));  // the sandbox's address wins
  EXPECT_EQ(out.pods[2], objects.pods[2]);  // the record is of another incarnation
  // Through the one translation, the pod is now enrollable.
  auto w = mesh::WorkloadFromPod(out.pods[1]);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->netns, "/var/run/netns/cni-c1");
}

TEST(CniPodStore, PersistsAcrossARestart) {
  testutil::TempDir dir("zmesh-cni-pods");
  const std::string path = dir.File("state/cni-pods.json");  // the directory is created
  {
    CniPodStore store(path);
    ASSERT_TRUE(store.Load(Clock::now()).ok());  // no file yet: empty
    EXPECT_THAT(store.pods(), IsEmpty());
    ASSERT_TRUE(store.Put(Sandbox("demo", "a", "ua", "c1")).ok());
    ASSERT_TRUE(store.Put(Sandbox("demo", "b", "", "c2")).ok());
  }
  CniPodStore again(path);
  ASSERT_TRUE(again.Load(Clock::now()).ok());
  ASSERT_EQ(again.pods().size(), 2u);
  EXPECT_EQ(again.pods().at("demo/a"), Sandbox("demo", "a", "ua", "c1"));
  EXPECT_EQ(again.pods().at("demo/b").uid, "");

  std::ofstream(path, std::ios::trunc) << R"({"pods":[{"namespace":"demo"}]})";
  absl::Status bad = again.Load(Clock::now());
  EXPECT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.message()), ::testing::HasSubstr("pods[0]"));
}

TEST(CniPodStore, DelForgetsOnlyThatSandbox) {
  CniPodStore store("");
  ASSERT_TRUE(store.Put(Sandbox("demo", "a", "ua", "c2")).ok());  // the sandbox after a restart
  auto stale = store.Remove("demo/a", "c1");                      // a late DEL of the old one
  ASSERT_TRUE(stale.ok());
  EXPECT_FALSE(*stale);
  EXPECT_EQ(store.pods().size(), 1u);
  auto removed = store.Remove("demo/a", "c2");
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(*removed);
  EXPECT_THAT(store.pods(), IsEmpty());
}

TEST(CniPodStore, GcForgetsPodsThatAreGoneAfterAGracePeriod) {
  CniPodStore store("");
  const auto t0 = Clock::now();
  CniPod gone = Sandbox("demo", "gone", "ug", "c1");
  CniPod recreated = Sandbox("demo", "re", "old-uid", "c2");
  CniPod young = Sandbox("demo", "young", "uy", "c3");
  CniPod kept = Sandbox("demo", "kept", "uk", "c4");
  CniPod live = Sandbox("demo", "live", "ul", "c5");
  for (CniPod* p : {&gone, &recreated, &kept, &live}) p->recorded = t0;
  young.recorded = t0 + std::chrono::seconds(50);
  for (const CniPod& p : {gone, recreated, young, kept, live}) ASSERT_TRUE(store.Put(p).ok());
  k8s::ManifestSnapshot objects;
  objects.pods = {Pod("demo", "live", "ul"), Pod("demo", "re", "new-uid")};
  auto removed =
      store.Gc(objects, {"demo/kept"}, t0 + std::chrono::seconds(61), std::chrono::seconds(60));
  ASSERT_TRUE(removed.ok());
  EXPECT_THAT(*removed, ElementsAre("demo/gone", "demo/re"));
  std::vector<std::string> left;
  for (const auto& [key, p] : store.pods()) left.push_back(key);
  EXPECT_THAT(left, ElementsAre("demo/kept", "demo/live", "demo/young"));
}

}  // namespace
}  // namespace zm::agent
