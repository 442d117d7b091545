// Informers against the fake API server: list then watch, bookmarks, relist on 410 (event and
// HTTP status) with a consistent diff, reconnect after a broken stream, backoff (on a fake
// sleeper), prompt Stop against a slow server, conversion into the k8s structs.
#include "common/kube/informer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/base/strings.h"
#include "common/kube/json.h"
#include "common/kube/kinds.h"
#include "tests/common/kube/kube_test_util.h"
#include "tests/testutil/fake_sleeper.h"
#include "tests/testutil/wait.h"

namespace zm::kube {
namespace {

using std::chrono::milliseconds;
using testing::ClientFor;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::NamespaceJson;
using testing::PodJson;
using testing::Recorder;
using testutil::FakeKubeApiServer;
using testutil::FakeSleeper;
using testutil::WaitFor;

std::string PodKey(const k8s::Pod& p) { return p.key(); }

class InformerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    client_ = ClientFor(server_);
    ASSERT_NE(client_, nullptr);
  }

  InformerOptions Options() {
    return {.backoff = {.initial = milliseconds(100), .max = milliseconds(1000), .jitter = 0},
            .sleeper = &sleeper_};
  }

  // A started pod informer whose handlers feed `recorder_`.
  std::unique_ptr<PodInformer> StartPods(InformerOptions options) {
    auto informer = NewPodInformer(*client_, std::move(options));
    informer->AddHandlers(recorder_.Handlers<k8s::Pod>(PodKey));
    informer->Start();
    return informer;
  }
  std::unique_ptr<PodInformer> StartPods() { return StartPods(Options()); }

  void Put(nlohmann::json object) {
    auto stored = server_.Put(std::move(object));
    ASSERT_TRUE(stored.ok()) << stored.status();
  }
  void DeletePod(const std::string& ns, const std::string& name) {
    ASSERT_TRUE(server_.Delete("v1", "Pod", ns, name).ok());
  }
  // Synced, with its watch open on the server.
  void WaitWatching(const InformerBase& informer, int watches = 1) {
    ASSERT_TRUE(informer.WaitForSync(std::chrono::seconds(10)));
    ASSERT_TRUE(WaitFor([&] { return server_.open_watches() == watches; }));
  }
  // The keys in the cache, as "key labels".
  static std::vector<std::string> Cached(const PodInformer& informer) {
    std::vector<std::string> out;
    for (const k8s::Pod& p : informer.List()) {
      std::string labels;
      for (const auto& [k, v] : p.labels) labels += StrCat(k, "=", v, ";");
      out.push_back(StrCat(p.key(), " ", labels));
    }
    return out;
  }

  FakeKubeApiServer server_;
  std::unique_ptr<KubeClient> client_;
  FakeSleeper sleeper_;
  Recorder recorder_;
};

TEST_F(InformerTest, ListsThenSeesAddModifyDeleteInOrder) {
  Put(PodJson("demo", "a", {}, "10.0.0.1"));
  Put(PodJson("demo", "b"));
  auto informer = StartPods();
  WaitWatching(*informer);
  EXPECT_TRUE(informer->HasSynced());
  EXPECT_THAT(recorder_.events(), ElementsAre("add demo/a", "add demo/b"));
  // List items come without kind/apiVersion; the informer still converts them.
  auto a = informer->Get("demo/a");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->service_account, "sa-a");
  EXPECT_THAT(a->pod_ips, ElementsAre("10.0.0.1"));
  EXPECT_EQ(a->source, "kube-apiserver");

  Put(PodJson("demo", "c"));
  Put(PodJson("demo", "a", {{"v", "2"}}, "10.0.0.1"));
  DeletePod("demo", "b");
  ASSERT_TRUE(WaitFor([&] { return recorder_.size() == 5; }));
  EXPECT_THAT(recorder_.Since(2), ElementsAre("add demo/c", "update demo/a", "delete demo/b"));
  EXPECT_THAT(Cached(*informer), ElementsAre("demo/a v=2;", "demo/c "));
  EXPECT_EQ(informer->ResourceVersion(), std::to_string(server_.resource_version()));
  // A change to a field the struct does not keep is no update.
  auto pod = PodJson("demo", "c");
  pod["status"]["conditions"] = {{{"type", "Ready"}, {"status", "True"}}};
  Put(pod);
  ASSERT_TRUE(WaitFor(
      [&] { return informer->ResourceVersion() == std::to_string(server_.resource_version()); }));
  EXPECT_EQ(recorder_.size(), 5u);
  const InformerStats stats = informer->Stats();
  EXPECT_EQ(stats.lists, 1);
  EXPECT_EQ(stats.failures, 0);
}

TEST_F(InformerTest, BookmarksAdvanceTheResourceVersion) {
  Put(PodJson("demo", "a"));
  auto informer = StartPods();
  WaitWatching(*informer);
  const std::string listed = informer->ResourceVersion();
  // Other kinds change: no pod events, but the version moves on.
  server_.BumpResourceVersion();
  server_.BumpResourceVersion();
  const std::string now = std::to_string(server_.resource_version());
  ASSERT_NE(listed, now);
  server_.SendBookmarks();
  ASSERT_TRUE(WaitFor([&] { return informer->ResourceVersion() == now; }));
  // The next watch starts from the bookmark.
  server_.EndWatches();
  ASSERT_TRUE(WaitFor([&] {
    const auto requests = server_.requests();
    return requests.back().target.find("watch=true&resourceVersion=" + now + "&") !=
           std::string::npos;
  }));
  EXPECT_EQ(recorder_.size(), 1u);  // a bookmark is no event
  EXPECT_EQ(informer->Stats().lists, 1);
}

// Objects change while the informer cannot see them and the history is gone: the relist must
// turn the gap into exactly the changes that happened.
class GoneTest : public InformerTest, public ::testing::WithParamInterface<bool> {};

TEST_P(GoneTest, RelistsAndTheCacheEndsConsistent) {
  const bool http_status = GetParam();
  server_.SetGoneAsHttpStatus(http_status);
  Put(PodJson("demo", "a"));
  Put(PodJson("demo", "b"));
  Put(PodJson("demo", "c"));
  auto recreated = PodJson("demo", "r");
  recreated["metadata"]["uid"] = "r-old";
  Put(recreated);
  auto informer = StartPods();
  WaitWatching(*informer);
  ASSERT_EQ(recorder_.size(), 4u);

  server_.PauseWatches(true);  // the gap
  DeletePod("demo", "a");
  Put(PodJson("demo", "b", {{"v", "2"}}));
  Put(PodJson("demo", "d"));
  recreated["metadata"]["uid"] = "r-new";  // deleted and created again
  Put(recreated);
  server_.Compact();
  if (http_status) {
    server_.EndWatches();  // the re-watch from the old version gets HTTP 410
  } else {
    server_.ExpireWatches();  // an ERROR event with code 410
  }
  server_.PauseWatches(false);

  ASSERT_TRUE(WaitFor([&] { return informer->Stats().lists == 2 && server_.open_watches() == 1; }));
  ASSERT_TRUE(WaitFor([&] { return recorder_.size() == 9; }))
      << ::testing::PrintToString(recorder_.events());
  // Deletes of what is gone first, then the list in order; the recreated pod is a delete and an
  // add (its uid changed), nothing else is touched.
  EXPECT_THAT(recorder_.Since(4), ElementsAre("delete demo/a", "update demo/b", "add demo/d",
                                              "delete demo/r", "add demo/r"));
  EXPECT_THAT(Cached(*informer), ElementsAre("demo/b v=2;", "demo/c ", "demo/d ", "demo/r "));
  EXPECT_EQ(informer->Get("demo/r")->uid, "r-new");
  const InformerStats stats = informer->Stats();
  EXPECT_EQ(stats.gone, 1);
  EXPECT_EQ(stats.failures, 0);
  if (http_status) {
    bool saw_410_watch = false;
    for (const auto& r : server_.requests()) {
      if (r.target.find("watch=true") != std::string::npos &&
          r.target.find("resourceVersion=" + std::to_string(server_.resource_version())) ==
              std::string::npos) {
        saw_410_watch = true;
      }
    }
    EXPECT_TRUE(saw_410_watch);
  }
  // And it keeps watching from the new list.
  Put(PodJson("demo", "e"));
  ASSERT_TRUE(WaitFor([&] { return recorder_.size() == 10; }));
  EXPECT_EQ(recorder_.events().back(), "add demo/e");
}

INSTANTIATE_TEST_SUITE_P(AsEventAndAsHttpStatus, GoneTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Http410" : "ErrorEvent"; });

TEST_F(InformerTest, BrokenStreamReconnectsWithoutLossOrDuplicates) {
  Put(PodJson("demo", "a"));
  auto informer = StartPods();
  WaitWatching(*informer);
  server_.BreakWatchesMidEvent();
  Put(PodJson("demo", "b"));  // cut in half on the wire
  Put(PodJson("demo", "b", {{"v", "2"}}));
  ASSERT_TRUE(
      WaitFor([&] { return informer->Stats().watches >= 2 && server_.open_watches() == 1; }));
  Put(PodJson("demo", "c"));
  ASSERT_TRUE(WaitFor([&] { return recorder_.size() == 4; }));
  EXPECT_THAT(recorder_.events(),
              ElementsAre("add demo/a", "add demo/b", "update demo/b", "add demo/c"));
  const InformerStats stats = informer->Stats();
  EXPECT_EQ(stats.lists, 1);  // resumed from its resourceVersion, no relist
  EXPECT_GE(stats.failures, 1);
  EXPECT_THAT(stats.last_error, HasSubstr("/api/v1/pods?watch=true"));
  EXPECT_THAT(Cached(*informer), ElementsAre("demo/a ", "demo/b v=2;", "demo/c "));
}

TEST_F(InformerTest, MalformedLineIsAnErrorAndNothingIsLost) {
  auto informer = StartPods();
  WaitWatching(*informer);
  server_.InjectWatchLine("{\"type\":\"ADDED\",\"object\":");
  Put(PodJson("demo", "a"));
  server_.InjectWatchLine(R"({"type":"SURPRISE","object":{}})");
  Put(PodJson("demo", "b"));
  ASSERT_TRUE(WaitFor([&] { return recorder_.size() == 2; }));
  ASSERT_TRUE(WaitFor([&] { return informer->Stats().failures >= 1; }));
  EXPECT_THAT(recorder_.events(), ElementsAre("add demo/a", "add demo/b"));
  EXPECT_THAT(
      informer->Stats().last_error,
      ::testing::AnyOf(HasSubstr("not a JSON object"), HasSubstr("unknown watch event type")));
}

TEST_F(InformerTest, BackoffGrowsIsCappedAndResetsAfterAHealthyWatch) {
  server_.FailRequests(500, -1);
  auto informer = StartPods();
  ASSERT_TRUE(WaitFor([&] { return sleeper_.sleeps().size() >= 7; }));
  // Park it in its next sleep before the server recovers.
  sleeper_.Hold(true);
  ASSERT_TRUE(WaitFor([&] { return sleeper_.blocked() == 1; }));
  server_.FailRequests(0, 0);
  std::vector<milliseconds> sleeps = sleeper_.sleeps();
  EXPECT_THAT(
      std::vector<milliseconds>(sleeps.begin(), sleeps.begin() + 7),
      ElementsAre(milliseconds(100), milliseconds(200), milliseconds(400), milliseconds(800),
                  milliseconds(1000), milliseconds(1000), milliseconds(1000)));
  EXPECT_THAT(informer->Stats().last_error,
              HasSubstr("HTTP 500 Internal Server Error: fake: injected failure"));
  EXPECT_FALSE(informer->HasSynced());
  sleeper_.Hold(false);
  WaitWatching(*informer);
  // A healthy watch (one that delivered) resets the backoff.
  Put(PodJson("demo", "a"));
  ASSERT_TRUE(WaitFor([&] { return recorder_.size() == 1; }));
  const size_t before = sleeper_.sleeps().size();
  server_.FailRequests(500, 2);
  server_.EndWatches();
  ASSERT_TRUE(WaitFor(
      [&] { return sleeper_.sleeps().size() == before + 2 && server_.open_watches() == 1; }));
  sleeps = sleeper_.sleeps();
  EXPECT_THAT(std::vector<milliseconds>(sleeps.begin() + static_cast<long>(before), sleeps.end()),
              ElementsAre(milliseconds(100), milliseconds(200)));
}

TEST(Backoff, JitterStaysBelowTheBase) {
  Backoff b({.initial = milliseconds(100), .max = milliseconds(1000), .jitter = 0.5}, 42);
  const int64_t bases[] = {100, 200, 400, 800, 1000, 1000, 1000, 1000};
  std::set<int64_t> distinct;
  for (int64_t base : bases) {
    const int64_t d = b.Next().count();
    EXPECT_GE(d, base / 2);
    EXPECT_LE(d, base);
    distinct.insert(d);
  }
  EXPECT_GT(distinct.size(), 4u);  // jittered, not constant
  b.Reset();
  const int64_t d = b.Next().count();
  EXPECT_GE(d, 50);
  EXPECT_LE(d, 100);
}

TEST_F(InformerTest, StopIsPromptAgainstASlowServer) {
  server_.SetResponseDelay(std::chrono::hours(1));
  auto informer = StartPods();
  ASSERT_TRUE(WaitFor([&] { return server_.requests().size() == 1; }));
  auto t0 = std::chrono::steady_clock::now();
  informer->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(500));
  EXPECT_FALSE(informer->HasSynced());
}

TEST_F(InformerTest, StopIsPromptDuringAnIdleWatchAndABackoff) {
  auto informer = StartPods({});  // real sleeper, default backoff
  WaitWatching(*informer);
  auto t0 = std::chrono::steady_clock::now();
  informer->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(500));

  server_.FailRequests(500, -1);
  auto failing = NewPodInformer(*client_, {.backoff = {.initial = std::chrono::hours(1)}});
  failing->Start();
  ASSERT_TRUE(WaitFor([&] { return failing->Stats().failures == 1; }));
  t0 = std::chrono::steady_clock::now();
  failing->Stop();  // in the middle of an hour-long backoff
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(500));
}

TEST_F(InformerTest, WrongTokenIsReportedAndRetried) {
  server_.SetToken("right");
  auto informer = StartPods();
  ASSERT_TRUE(WaitFor([&] { return sleeper_.sleeps().size() >= 2; }));
  EXPECT_THAT(informer->Stats().last_error,
              HasSubstr("/api/v1/pods?limit=500: HTTP 401 Unauthorized: Unauthorized"));
  EXPECT_FALSE(informer->HasSynced());
}

TEST_F(InformerTest, OneNamespaceOnly) {
  Put(PodJson("demo", "a"));
  Put(PodJson("other", "b"));
  InformerOptions options = Options();
  options.namespace_name = "demo";
  auto informer = StartPods(options);
  WaitWatching(*informer);
  Put(PodJson("other", "c"));
  Put(PodJson("demo", "d"));
  ASSERT_TRUE(WaitFor([&] { return recorder_.size() == 2; }));
  EXPECT_THAT(recorder_.events(), ElementsAre("add demo/a", "add demo/d"));
  EXPECT_THAT(server_.requests()[0].target, ::testing::StartsWith("/api/v1/namespaces/demo/pods?"));
}

TEST_F(InformerTest, RefusedObjectIsAbsentAndALaterBadVersionDeletes) {
  auto bad = PodJson("demo", "bad");
  bad["status"]["podIP"] = "10.1";
  Put(bad);
  Put(PodJson("demo", "good"));
  auto informer = StartPods();
  WaitWatching(*informer);
  EXPECT_THAT(recorder_.events(), ElementsAre("add demo/good"));
  EXPECT_EQ(informer->Stats().rejected, 1);
  EXPECT_THAT(informer->Stats().last_error,
              HasSubstr("kube-apiserver (Pod demo/bad): status.podIP: not an IP address"));
  // Fixed: it appears. Broken again: it goes, as in local mode.
  Put(PodJson("demo", "bad"));
  ASSERT_TRUE(WaitFor([&] { return recorder_.size() == 2; }));
  Put(bad);
  ASSERT_TRUE(WaitFor([&] { return recorder_.size() == 3; }));
  EXPECT_THAT(recorder_.Since(1), ElementsAre("add demo/bad", "delete demo/bad"));
}

TEST_F(InformerTest, NamespacesAndPolicyKinds) {
  Put(NamespaceJson("demo", {{"zmesh.io/dataplane-mode", "ambient"}}));
  nlohmann::json policy = {
      {"apiVersion", "security.istio.io/v1"},
      {"kind", "AuthorizationPolicy"},
      {"metadata",
       {{"name", "allow"}, {"namespace", "demo"}, {"managedFields", {{{"manager", "kubectl"}}}}}},
      {"spec",
       {{"action", "ALLOW"}, {"rules", {{{"from", {{{"source", {{"principals", {"x"}}}}}}}}}}}}};
  Put(policy);
  Put({{"apiVersion", "security.istio.io/v1"},
       {"kind", "PeerAuthentication"},
       {"metadata", {{"name", "bad"}, {"namespace", "demo"}}},
       {"spec", {{"mtls", {{"mode", "strict"}}}}}});

  auto namespaces = NewNamespaceInformer(*client_, Options());
  auto policies = NewAuthorizationPolicyInformer(*client_, Options());
  auto peer = NewPeerAuthenticationInformer(*client_, Options());
  namespaces->Start();
  policies->Start();
  peer->Start();
  WaitWatching(*namespaces, 3);
  ASSERT_TRUE(policies->WaitForSync(std::chrono::seconds(10)));
  ASSERT_TRUE(peer->WaitForSync(std::chrono::seconds(10)));

  auto ns = namespaces->Get("demo");
  ASSERT_TRUE(ns.has_value());
  EXPECT_EQ(ns->labels.at("zmesh.io/dataplane-mode"), "ambient");
  // AuthorizationPolicy goes through the manifest parser too: the same struct as local mode.
  auto ap = policies->Get("demo/allow");
  ASSERT_TRUE(ap.has_value());
  ASSERT_TRUE(std::holds_alternative<authz::AuthorizationPolicy>(*ap));
  const auto& allow = std::get<authz::AuthorizationPolicy>(*ap);
  EXPECT_EQ(allow.key(), "demo/allow");
  EXPECT_EQ(allow.action, authz::Action::kAllow);
  ASSERT_EQ(allow.rules.size(), 1u);
  EXPECT_EQ(allow.source, "kube-apiserver");
  auto pa = peer->Get("demo/bad");
  ASSERT_TRUE(pa.has_value());
  EXPECT_TRUE(std::holds_alternative<k8s::RejectedPeerAuthentication>(*pa));  // fails closed
  EXPECT_EQ(peer->Stats().rejected, 0);
}

TEST(InformerTls, SyncsOverTls) {
  auto pki = testutil::TestPki::Create();
  ASSERT_TRUE(pki.ok()) << pki.status();
  FakeKubeApiServer server({.tls = &*pki, .token = "t"});
  ASSERT_TRUE(server.Start().ok());
  ASSERT_TRUE(server.Put(PodJson("demo", "a")).ok());
  auto client = ClientFor(server, {.ca_pem = pki->ca_pem(), .token = "t"});
  auto informer = NewPodInformer(*client);
  informer->Start();
  ASSERT_TRUE(informer->WaitForSync(std::chrono::seconds(10)));
  ASSERT_TRUE(server.Put(PodJson("demo", "b")).ok());
  ASSERT_TRUE(WaitFor([&] { return informer->size() == 2; }));
}

}  // namespace
}  // namespace zm::kube
