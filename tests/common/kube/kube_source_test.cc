// Cluster mode's object source (the agent's and the waypoint's) against the fake API server (real
// wire format): no snapshot before every informer synced; the snapshot is what local mode would
// build (sorted for its lookups, rejected policies kept); labels change who is in the mesh; the
// security kinds come and go; pod churn, a 410 relist, a stream broken mid-event, a slow server
// and token rotation all end in the server's exact state; the agent's own status annotation is
// no news.
#include "common/kube/kube_source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "common/base/strings.h"
#include "common/mesh/workload.h"
#include "tests/common/kube/kube_test_util.h"
#include "tests/testutil/wait.h"

namespace zm::kube {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;
using testutil::FakeKubeApiServer;
using testutil::WaitFor;
using Snap = std::shared_ptr<const k8s::ManifestSnapshot>;

json Namespace(const std::string& name, bool ambient) {
  return testing::NamespaceJson(
      name, ambient ? std::map<std::string, std::string>{{"zmesh.io/dataplane-mode", "ambient"}}
                    : std::map<std::string, std::string>{});
}

// A pod of node-a that local mode could enroll: netns annotation and IP.
json Pod(const std::string& ns, const std::string& name, const std::string& ip,
         std::map<std::string, std::string> labels = {}) {
  json p = testing::PodJson(ns, name, labels, ip);
  p["metadata"]["annotations"] = {{"zmesh.io/netns", "/var/run/netns/" + name}};
  return p;
}

json Policy(const std::string& kind, const std::string& ns, const std::string& name, json spec) {
  return {{"apiVersion", "security.istio.io/v1"},
          {"kind", kind},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"spec", std::move(spec)}};
}

// A RequestAuthentication spec with one rule; a jwksUri that is not http(s) fails validation.
json JwtSpec(const std::string& jwks_uri) {
  json rule = {{"issuer", "https://issuer.example"}, {"jwksUri", jwks_uri}};
  return {{"jwtRules", json::array({rule})}};
}

class KubeSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    client_ = testing::ClientFor(server_);
  }
  void TearDown() override {
    if (source_) source_->Stop();
  }

  KubeSource::Options Options() {
    KubeSource::Options o;
    o.informer.backoff = {.initial = std::chrono::milliseconds(10),
                          .max = std::chrono::milliseconds(100),
                          .jitter = 0};
    o.quiet = std::chrono::milliseconds(20);
    o.max_delay = std::chrono::milliseconds(200);
    return o;
  }
  void Start(KubeApi& api) {
    source_ = KubeSource::Start(
        api,
        [this](Snap s) {
          std::lock_guard lock(mu_);
          ++callbacks_;
          last_ = std::move(s);
        },
        Options());
  }
  void Start() { Start(*client_); }
  void Put(json o) { ASSERT_TRUE(server_.Put(std::move(o)).ok()); }
  // Waits until the latest snapshot satisfies `pred` (the callback's and Current() agree).
  Snap WaitSnapshot(const std::function<bool(const k8s::ManifestSnapshot&)>& pred) {
    Snap got;
    bool ok = WaitFor([&] {
      std::lock_guard lock(mu_);
      got = last_;
      return got != nullptr && pred(*got);
    });
    EXPECT_TRUE(ok) << "no snapshot satisfied the condition";
    return ok ? got : nullptr;
  }
  static std::vector<std::string> PodKeys(const k8s::ManifestSnapshot& s) {
    std::vector<std::string> out;
    for (const auto& p : s.pods) out.push_back(p.key());
    return out;
  }
  // Whether the mesh model puts pod ns/name in the mesh (the labels the agent's enrollment and a
  // waypoint's routing both read); nullopt when the snapshot has no such pod.
  static std::optional<bool> InMesh(const k8s::ManifestSnapshot& s, const std::string& ns,
                                    const std::string& name) {
    const k8s::Pod* pod = s.FindPod(ns, name);
    if (pod == nullptr) return std::nullopt;
    return mesh::InMesh(mesh::BuildSnapshot(s), ns, pod->labels);
  }
  static std::vector<std::string> PolicyKeys(const k8s::ManifestSnapshot& s) {
    std::vector<std::string> out;
    for (const auto& p : s.authorization_policies) out.push_back("AuthorizationPolicy " + p.key());
    for (const auto& p : s.request_authentications)
      out.push_back("RequestAuthentication " + p.key());
    for (const auto& p : s.rejected_request_authentications)
      out.push_back("rejected RequestAuthentication " + p.key());
    return out;
  }

  FakeKubeApiServer server_;
  std::unique_ptr<KubeClient> client_;
  std::unique_ptr<KubeClient> token_client_;
  std::unique_ptr<KubeSource> source_;
  std::set<std::string> server_pods_;
  std::mutex mu_;
  int callbacks_ = 0;
  Snap last_;
};

TEST_F(KubeSourceTest, NothingBeforeEveryKindSyncedThenTheSameShapeAsLocalMode) {
  Put(Namespace("a", true));
  Put(Namespace("a-b", false));
  Put(Pod("a-b", "x", "10.0.0.2"));
  Put(Pod("a", "x", "10.0.0.1"));
  Put({{"apiVersion", "v1"},
       {"kind", "Service"},
       {"metadata", {{"name", "web"}, {"namespace", "a"}}},
       {"spec",
        {{"selector", {{"app", "web"}}},
         {"clusterIP", "10.96.0.9"},
         {"ports", {{{"port", 80}}}}}}});
  Put(Policy("PeerAuthentication", "a", "strict", {{"mtls", {{"mode", "STRICT"}}}}));
  Put(Policy("PeerAuthentication", "a", "broken", {{"mtls", {{"mode", "strict"}}}}));
  Put(Policy("AuthorizationPolicy", "a", "allow",
             {{"action", "ALLOW"}, {"rules", json::array({json::object()})}}));
  Put(Policy("AuthorizationPolicy", "a", "broken", {{"action", "DENY"}, {"rulez", json::array()}}));
  Put(Policy("RequestAuthentication", "a", "jwt", JwtSpec("https://issuer.example/jwks.json")));
  Put(Policy("RequestAuthentication", "a", "broken", JwtSpec("ftp://i/jwks.json")));

  server_.FailRequests(500, -1);  // every list fails: no informer syncs
  Start();
  EXPECT_FALSE(source_->WaitForSync(std::chrono::milliseconds(300)));
  EXPECT_EQ(source_->Current(), nullptr);
  EXPECT_THAT(source_->Unsynced(),
              UnorderedElementsAre("Namespace", "Pod", "Service", "PeerAuthentication",
                                   "AuthorizationPolicy", "RequestAuthentication"));
  {
    std::lock_guard lock(mu_);
    EXPECT_EQ(callbacks_, 0);
  }
  server_.FailRequests(0, 0);
  ASSERT_TRUE(source_->WaitForSync(std::chrono::seconds(10)));
  Snap s = source_->Current();
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(source_->Unsynced().empty());
  ASSERT_EQ(s->namespaces.size(), 2u);
  EXPECT_EQ(s->namespaces[0].name, "a");
  // Sorted by (namespace, name), not by the string "namespace/name": "a" before "a-b".
  EXPECT_THAT(PodKeys(*s), ElementsAre("a/x", "a-b/x"));
  ASSERT_NE(s->FindPod("a-b", "x"), nullptr);
  ASSERT_NE(s->FindPod("a", "x"), nullptr);
  ASSERT_NE(s->FindService("a", "web"), nullptr);
  EXPECT_EQ(s->peer_authentications.size(), 1u);
  ASSERT_EQ(s->rejected_peer_authentications.size(), 1u);  // fails closed, not dropped
  EXPECT_EQ(s->authorization_policies.size(), 1u);
  ASSERT_EQ(s->rejected_authorization_policies.size(), 1u);
  EXPECT_EQ(s->rejected_authorization_policies[0].key(), "a/broken");
  ASSERT_EQ(s->request_authentications.size(), 1u);
  EXPECT_EQ(s->request_authentications[0].key(), "a/jwt");
  ASSERT_EQ(s->rejected_request_authentications.size(), 1u);  // fails closed, not dropped
  EXPECT_EQ(s->rejected_request_authentications[0].key(), "a/broken");
  EXPECT_EQ(InMesh(*s, "a", "x"), true);
  EXPECT_EQ(InMesh(*s, "a-b", "x"), false);
}

TEST_F(KubeSourceTest, SecurityPoliciesComeAndGo) {
  Put(Namespace("demo", true));
  Start();
  ASSERT_TRUE(source_->WaitForSync(std::chrono::seconds(10)));
  EXPECT_THAT(PolicyKeys(*source_->Current()), ::testing::IsEmpty());
  Put(Policy(
      "AuthorizationPolicy", "demo", "deny-admin",
      json::parse(R"({"action":"DENY","rules":[{"to":[{"operation":{"paths":["/admin"]}}]}]})")));
  Put(Policy("RequestAuthentication", "demo", "jwt", JwtSpec("https://issuer.example/jwks.json")));
  WaitSnapshot([](const auto& snap) {
    return PolicyKeys(snap) == std::vector<std::string>{"AuthorizationPolicy demo/deny-admin",
                                                        "RequestAuthentication demo/jwt"};
  });
  // An edit that breaks it: kept, rejected (tokens at its scope fail), not dropped.
  Put(Policy("RequestAuthentication", "demo", "jwt", JwtSpec("ftp://issuer.example/jwks.json")));
  WaitSnapshot([](const auto& snap) {
    return PolicyKeys(snap) == std::vector<std::string>{"AuthorizationPolicy demo/deny-admin",
                                                        "rejected RequestAuthentication demo/jwt"};
  });
  ASSERT_TRUE(
      server_.Delete("security.istio.io/v1", "AuthorizationPolicy", "demo", "deny-admin").ok());
  ASSERT_TRUE(server_.Delete("security.istio.io/v1", "RequestAuthentication", "demo", "jwt").ok());
  WaitSnapshot([](const auto& snap) { return PolicyKeys(snap).empty(); });
}

TEST_F(KubeSourceTest, LabelsDecideWhoIsInTheMesh) {
  Put(Namespace("demo", false));
  Put(Pod("demo", "web", "10.0.0.5"));
  Start();
  ASSERT_TRUE(source_->WaitForSync(std::chrono::seconds(10)));
  EXPECT_EQ(InMesh(*source_->Current(), "demo", "web"), false);
  // kubectl label namespace demo zmesh.io/dataplane-mode=ambient
  ASSERT_TRUE(client_
                  ->Patch("/api/v1/namespaces/demo",
                          {{"metadata", {{"labels", {{"zmesh.io/dataplane-mode", "ambient"}}}}}})
                  .ok());
  WaitSnapshot([](const auto& s) { return InMesh(s, "demo", "web") == true; });
  // The pod opts out.
  ASSERT_TRUE(client_
                  ->Patch("/api/v1/namespaces/demo/pods/web",
                          {{"metadata", {{"labels", {{"zmesh.io/dataplane-mode", "none"}}}}}})
                  .ok());
  WaitSnapshot([](const auto& s) {
    return InMesh(s, "demo", "web") == false &&
           s.FindPod("demo", "web")->labels.contains("zmesh.io/dataplane-mode");
  });
  // kubectl label namespace demo zmesh.io/dataplane-mode-
  ASSERT_TRUE(client_
                  ->Patch("/api/v1/namespaces/demo/pods/web",
                          {{"metadata", {{"labels", {{"zmesh.io/dataplane-mode", nullptr}}}}}})
                  .ok());
  ASSERT_TRUE(client_
                  ->Patch("/api/v1/namespaces/demo",
                          {{"metadata", {{"labels", {{"zmesh.io/dataplane-mode", nullptr}}}}}})
                  .ok());
  WaitSnapshot([](const auto& s) {
    return InMesh(s, "demo", "web") == false &&
           !s.FindPod("demo", "web")->labels.contains("zmesh.io/dataplane-mode") &&
           s.FindNamespace("demo")->labels.empty();
  });
}

TEST_F(KubeSourceTest, PodChurnEndsInTheServersState) {
  Put(Namespace("demo", true));
  Start();
  ASSERT_TRUE(source_->WaitForSync(std::chrono::seconds(10)));
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 40; ++i) {
      const std::string name = StrCat("p", i);
      if ((i + round) % 3 == 0 && server_pods_.count("demo/" + name)) {
        ASSERT_TRUE(server_.Delete("v1", "Pod", "demo", name).ok());
        server_pods_.erase("demo/" + name);
      } else {
        Put(Pod("demo", name, StrCat("10.0.", round, ".", i + 1), {{"round", StrCat(round)}}));
        server_pods_.insert("demo/" + name);
      }
    }
  }
  // The server's state, exactly: the same pods (one each), each with its last address.
  const std::vector<std::string> want(server_pods_.begin(), server_pods_.end());
  auto matches = [&](const k8s::ManifestSnapshot& snap) {
    if (PodKeys(snap) != want) return false;
    for (const auto& p : snap.pods) {
      auto stored = server_.Object("v1", "Pod", "demo", p.name);
      if (!stored || p.pod_ips.empty() || p.pod_ips[0] != (*stored)["status"]["podIP"])
        return false;
    }
    return true;
  };
  Snap s = WaitSnapshot(matches);
  ASSERT_NE(s, nullptr);
  std::set<std::string> uids;
  for (const auto& p : s->pods) EXPECT_TRUE(uids.insert(p.uid).second) << p.key();
  // Bursts coalesce: far fewer snapshots than changes.
  EXPECT_LT(source_->snapshots(), 60u);
}

TEST_F(KubeSourceTest, ARelistAfter410IsADiffNothingLostOrDuplicated) {
  Put(Namespace("demo", true));
  Put(Pod("demo", "stays", "10.0.0.1"));
  Put(Pod("demo", "goes", "10.0.0.2"));
  Put(Pod("demo", "changes", "10.0.0.3"));
  Start();
  ASSERT_TRUE(source_->WaitForSync(std::chrono::seconds(10)));
  ASSERT_TRUE(WaitFor([&] { return server_.open_watches() == 6; }));
  // While the watches miss everything, history is compacted; then the watches expire.
  server_.PauseWatches(true);
  ASSERT_TRUE(server_.Delete("v1", "Pod", "demo", "goes").ok());
  Put(Pod("demo", "changes", "10.0.0.33"));
  Put(Pod("demo", "new", "10.0.0.4"));
  server_.Compact();
  server_.ExpireWatches();
  server_.PauseWatches(false);
  Snap s = WaitSnapshot([](const auto& snap) {
    return PodKeys(snap) == std::vector<std::string>{"demo/changes", "demo/new", "demo/stays"} &&
           snap.FindPod("demo", "changes")->pod_ips.at(0) == "10.0.0.33";
  });
  ASSERT_NE(s, nullptr);
  std::vector<std::string> in_mesh;
  for (const auto& p : s->pods) {
    if (InMesh(*s, p.namespace_name, p.name) == true) in_mesh.push_back(p.key());
  }
  EXPECT_THAT(in_mesh, ElementsAre("demo/changes", "demo/new", "demo/stays"));
  int gone = 0;
  for (const auto& [kind, st] : source_->Stats()) gone += static_cast<int>(st.gone);
  EXPECT_GE(gone, 1);
}

TEST_F(KubeSourceTest, AStreamBrokenMidEventLosesNothing) {
  Put(Namespace("demo", true));
  Start();
  ASSERT_TRUE(source_->WaitForSync(std::chrono::seconds(10)));
  ASSERT_TRUE(WaitFor([&] { return server_.open_watches() == 6; }));
  server_.BreakWatchesMidEvent();
  Put(Pod("demo", "a", "10.0.0.1"));  // half of this event, then the connection is cut
  Put(Pod("demo", "b", "10.0.0.2"));
  WaitSnapshot([](const auto& s) {
    return PodKeys(s) == std::vector<std::string>{"demo/a", "demo/b"};
  });
  int failures = 0;
  for (const auto& [kind, st] : source_->Stats()) failures += static_cast<int>(st.failures);
  EXPECT_GE(failures, 1);
}

TEST_F(KubeSourceTest, SlowServerAndTokenRotation) {
  testutil::TempDir dir("zmesh-kube-source");
  const std::string token = dir.Write("token", "token-1");
  server_.SetToken("token-1");
  // A member: it must outlive the informers, which TearDown stops.
  token_client_ = testing::ClientFor(server_, {.token_file = token});
  Put(Namespace("demo", true));
  server_.SetResponseDelay(std::chrono::milliseconds(150));
  Start(*token_client_);
  ASSERT_TRUE(source_->WaitForSync(std::chrono::seconds(20)));
  server_.SetResponseDelay(std::chrono::milliseconds(0));
  // kubelet rotates the projected token; the server takes only the new one from now on.
  dir.Write("token.new", "token-2");
  std::filesystem::rename(dir.File("token.new"), token);
  server_.SetToken("token-2");
  server_.EndWatches();  // the next watches authenticate again
  Put(Pod("demo", "after-rotation", "10.0.0.9"));
  WaitSnapshot([](const auto& s) { return s.FindPod("demo", "after-rotation") != nullptr; });
  EXPECT_EQ(server_.requests().back().authorization, "Bearer token-2");
}

TEST_F(KubeSourceTest, TheStatusAnnotationIsNoNews) {
  Put(Namespace("demo", true));
  Put(Pod("demo", "web", "10.0.0.1"));
  Start();
  ASSERT_TRUE(source_->WaitForSync(std::chrono::seconds(10)));
  const std::string uid = source_->Current()->FindPod("demo", "web")->uid;
  using Observed = std::optional<std::optional<std::string>>;
  EXPECT_EQ(source_->ObservedStatus("demo", "web", uid), Observed(std::optional<std::string>()));
  EXPECT_EQ(source_->ObservedStatus("demo", "web", "another-uid"), std::nullopt);
  const uint64_t before = source_->snapshots();
  ASSERT_TRUE(client_
                  ->Patch("/api/v1/namespaces/demo/pods/web",
                          {{"metadata", {{"annotations", {{"zmesh.io/status", "enrolled"}}}}}})
                  .ok());
  ASSERT_TRUE(WaitFor([&] {
    return source_->ObservedStatus("demo", "web", uid) ==
           Observed(std::optional<std::string>("enrolled"));
  }));
  // A real change after it: exactly one more snapshot, and no status annotation in the mesh input.
  Put(Pod("demo", "other", "10.0.0.2"));
  Snap s = WaitSnapshot([](const auto& snap) { return snap.FindPod("demo", "other") != nullptr; });
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(source_->snapshots(), before + 1);
  EXPECT_FALSE(s->FindPod("demo", "web")->annotations.contains("zmesh.io/status"));
}

}  // namespace
}  // namespace zm::kube
