// KubeClient against the fake API server on loopback: pagination, the watch stream and every
// way it ends, tokens, TLS, merge-patch, create/get and TokenReview.
#include "common/kube/client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "common/base/strings.h"
#include "common/kube/json.h"
#include "tests/common/kube/kube_test_util.h"
#include "tests/testutil/wait.h"

namespace zm::kube {
namespace {

using nlohmann::json;
using testing::ClientFor;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::PodJson;
using ::testing::StartsWith;
using testutil::FakeKubeApiServer;
using testutil::WaitFor;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    client_ = ClientFor(server_);
    ASSERT_NE(client_, nullptr);
  }

  void PutPod(const std::string& ns, const std::string& name,
              const std::map<std::string, std::string>& labels = {}) {
    auto stored = server_.Put(PodJson(ns, name, labels));
    ASSERT_TRUE(stored.ok()) << stored.status();
  }

  // Runs a watch on a thread of its own, collecting "TYPE name@rv".
  struct BackgroundWatch {
    Cancellation cancel;
    std::mutex mu;
    std::vector<std::string> seen;
    WatchResult result;
    std::atomic<bool> done{false};
    std::thread thread;

    BackgroundWatch(KubeApi& api, std::string path, WatchOptions options) {
      options.cancel = &cancel;
      thread = std::thread([this, &api, path, options] {
        result = api.Watch(path, options, [this](WatchEvent&& e) {
          std::lock_guard lock(mu);
          seen.push_back(StrCat(EventTypeName(e.type), " ", MetaField(e.object, "name"), "@",
                                MetaField(e.object, "resourceVersion")));
        });
        done = true;
      });
    }
    ~BackgroundWatch() {
      cancel.Cancel();
      thread.join();
    }
    std::vector<std::string> Seen() {
      std::lock_guard lock(mu);
      return seen;
    }
    bool WaitDone() {
      return WaitFor([this] { return done.load(); });
    }
  };

  std::unique_ptr<BackgroundWatch> StartWatch(std::string rv, std::string path = "/api/v1/pods") {
    // The server has noticed every earlier watch go.
    EXPECT_TRUE(WaitFor([this] { return server_.open_watches() == 0; }));
    auto w = std::make_unique<BackgroundWatch>(*client_, std::move(path),
                                               WatchOptions{.resource_version = std::move(rv)});
    EXPECT_TRUE(WaitFor([this] { return server_.open_watches() == 1; }));
    return w;
  }

  FakeKubeApiServer server_;
  std::unique_ptr<KubeClient> client_;
};

TEST_F(ClientTest, ListFollowsContinueTokens) {
  for (const char* name : {"a", "b", "c", "d", "e"}) PutPod("demo", name);
  PutPod("other", "f");
  auto list = client_->List("/api/v1/namespaces/demo/pods", {.page_size = 2});
  ASSERT_TRUE(list.ok()) << list.status();
  std::vector<std::string> names;
  for (const auto& item : list->items) names.push_back(MetaField(item, "name"));
  EXPECT_THAT(names, ElementsAre("a", "b", "c", "d", "e"));
  EXPECT_EQ(list->resource_version, std::to_string(server_.resource_version()));
  // Built-in kinds: list items come without kind and apiVersion, as from a real server.
  EXPECT_FALSE(list->items[0].contains("kind"));
  std::vector<std::string> targets;
  for (const auto& r : server_.requests()) targets.push_back(r.target);
  EXPECT_THAT(targets, ElementsAre("/api/v1/namespaces/demo/pods?limit=2",
                                   "/api/v1/namespaces/demo/pods?limit=2&continue=page-1",
                                   "/api/v1/namespaces/demo/pods?limit=2&continue=page-2"));
}

TEST_F(ClientTest, ListStartsAgainWhenTheContinueTokenExpires) {
  for (const char* name : {"a", "b", "c"}) PutPod("demo", name);
  server_.ExpireNextContinueToken();
  auto list = client_->List("/api/v1/pods", {.page_size = 2});
  ASSERT_TRUE(list.ok()) << list.status();
  std::vector<std::string> names;
  for (const auto& item : list->items) names.push_back(MetaField(item, "name"));
  EXPECT_THAT(names, ElementsAre("a", "b", "c"));  // nothing twice
  EXPECT_EQ(server_.requests().size(), 4u);        // page 1, expired page 2, page 1, page 2
}

TEST_F(ClientTest, WatchSeesAddModifyDeleteInOrder) {
  PutPod("demo", "before");
  const std::string rv = std::to_string(server_.resource_version());
  auto w = StartWatch(rv);
  PutPod("demo", "a");
  PutPod("demo", "a", {{"v", "2"}});
  ASSERT_TRUE(server_.Delete("v1", "Pod", "demo", "a").ok());
  ASSERT_TRUE(WaitFor([&] { return w->Seen().size() == 3; }));
  const uint64_t r = std::stoull(rv);
  EXPECT_THAT(w->Seen(), ElementsAre(StrCat("ADDED a@", r + 1), StrCat("MODIFIED a@", r + 2),
                                     StrCat("DELETED a@", r + 3)));
  w->cancel.Cancel();
  ASSERT_TRUE(w->WaitDone());
  EXPECT_EQ(w->result.end, WatchEnd::kCancelled);
  EXPECT_EQ(w->result.events, 3);
  EXPECT_THAT(server_.requests().back().target,
              StartsWith(StrCat("/api/v1/pods?watch=true&resourceVersion=", rv,
                                "&allowWatchBookmarks=true&timeoutSeconds=300")));
}

TEST_F(ClientTest, WatchEndsCleanlyAndSeesBookmarks) {
  auto w = StartWatch(std::to_string(server_.resource_version()));
  server_.BumpResourceVersion();
  server_.SendBookmarks();
  const std::string bookmark = StrCat("BOOKMARK @", server_.resource_version());
  ASSERT_TRUE(WaitFor([&] { return w->Seen().size() == 1; }));
  EXPECT_THAT(w->Seen(), ElementsAre(bookmark));
  server_.EndWatches();
  ASSERT_TRUE(w->WaitDone());
  EXPECT_EQ(w->result.end, WatchEnd::kClosed);
  EXPECT_TRUE(w->result.status.ok()) << w->result.status;
}

TEST_F(ClientTest, WatchFromACompactedVersionIsGone) {
  const std::string old_rv = std::to_string(server_.resource_version());
  PutPod("demo", "a");
  server_.Compact();
  // As an ERROR event on a 200 stream (the default) ...
  WatchResult r = client_->Watch("/api/v1/pods", {.resource_version = old_rv}, [](WatchEvent&&) {});
  EXPECT_EQ(r.end, WatchEnd::kGone);
  EXPECT_EQ(HttpStatusOf(r.status), 410);
  EXPECT_THAT(Message(r.status), HasSubstr("ERROR watch event: code 410 Expired: too old resource "
                                           "version: "));
  // ... and as an HTTP 410.
  server_.SetGoneAsHttpStatus(true);
  r = client_->Watch("/api/v1/pods", {.resource_version = old_rv}, [](WatchEvent&&) {});
  EXPECT_EQ(r.end, WatchEnd::kGone);
  EXPECT_EQ(HttpStatusOf(r.status), 410);
  EXPECT_THAT(Message(r.status), HasSubstr(": HTTP 410 Gone: too old resource version: "));
  // An open watch told to expire.
  auto w = StartWatch(std::to_string(server_.resource_version()));
  server_.ExpireWatches();
  ASSERT_TRUE(w->WaitDone());
  EXPECT_EQ(w->result.end, WatchEnd::kGone);
}

TEST_F(ClientTest, StreamBrokenMidEventIsBrokenAndTheHalfEventIsNotDelivered) {
  auto w = StartWatch(std::to_string(server_.resource_version()));
  PutPod("demo", "a");
  ASSERT_TRUE(WaitFor([&] { return w->Seen().size() == 1; }));
  server_.BreakWatchesMidEvent();
  PutPod("demo", "b");
  ASSERT_TRUE(w->WaitDone());
  EXPECT_EQ(w->result.end, WatchEnd::kBroken) << w->result.status;
  EXPECT_EQ(w->result.events, 1);
  EXPECT_EQ(w->Seen().size(), 1u);
}

TEST_F(ClientTest, MalformedLineAndUnknownTypeAreBadEvents) {
  auto w = StartWatch(std::to_string(server_.resource_version()));
  PutPod("demo", "a");
  server_.InjectWatchLine("{\"type\":\"ADDED\",\"object\":{\"kind\":");
  ASSERT_TRUE(w->WaitDone());
  EXPECT_EQ(w->result.end, WatchEnd::kBadEvent);
  EXPECT_EQ(w->result.events, 1);  // what came before still counted
  EXPECT_THAT(
      Message(w->result.status),
      HasSubstr(": a watch line is not a JSON object: {\"type\":\"ADDED\",\"object\":{\"kind\":"));
  w.reset();
  auto w2 = StartWatch(std::to_string(server_.resource_version()));
  server_.InjectWatchLine(R"({"type":"EXPLODED","object":{}})");
  ASSERT_TRUE(w2->WaitDone());
  EXPECT_EQ(w2->result.end, WatchEnd::kBadEvent);
  EXPECT_THAT(Message(w2->result.status), HasSubstr("unknown watch event type \"EXPLODED\""));
  w2.reset();
  auto w3 = StartWatch(std::to_string(server_.resource_version()));
  server_.InjectWatchLine(
      R"({"type":"ERROR","object":{"kind":"Status","code":500,"reason":"InternalError","message":"etcd is down"}})");
  ASSERT_TRUE(w3->WaitDone());
  EXPECT_EQ(w3->result.end, WatchEnd::kError);
  EXPECT_THAT(Message(w3->result.status),
              HasSubstr("ERROR watch event: code 500 InternalError: etcd is down"));
}

TEST_F(ClientTest, CancelInterruptsABlockedWatchAndASlowList) {
  auto w = StartWatch(std::to_string(server_.resource_version()));
  auto t0 = std::chrono::steady_clock::now();
  w->cancel.Cancel();
  ASSERT_TRUE(w->WaitDone());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500));
  EXPECT_EQ(w->result.end, WatchEnd::kCancelled);

  server_.SetResponseDelay(std::chrono::hours(1));
  Cancellation cancel;
  absl::Status list_status;
  std::atomic<bool> done{false};
  std::thread lister([&] {
    list_status = client_->List("/api/v1/pods", {.cancel = &cancel}).status();
    done = true;
  });
  ASSERT_TRUE(WaitFor([&] { return server_.requests().size() == 2; }));
  t0 = std::chrono::steady_clock::now();
  cancel.Cancel();
  ASSERT_TRUE(WaitFor([&] { return done.load(); }));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500));
  lister.join();
  EXPECT_EQ(list_status.code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(Message(list_status),
              HasSubstr("GET " + server_.url() + "/api/v1/pods?limit=500: cancelled"));
}

TEST_F(ClientTest, SlowServerHitsTheRequestTimeout) {
  server_.SetResponseDelay(std::chrono::hours(1));
  auto client = ClientFor(server_, {}, {.request_timeout = std::chrono::milliseconds(200)});
  auto got = client->Get("/api/v1/namespaces/demo/pods/a");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(Message(got.status()),
              StartsWith("GET " + server_.url() + "/api/v1/namespaces/demo/pods/a: "));
}

TEST_F(ClientTest, WrongTokenIsAClearError) {
  server_.SetToken("right");
  auto client = ClientFor(server_, {.token = "wrong"});
  auto list = client->List("/api/v1/pods", {});
  EXPECT_EQ(list.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(HttpStatusOf(list.status()), 401);
  EXPECT_EQ(Message(list.status()),
            "GET " + server_.url() + "/api/v1/pods?limit=500: HTTP 401 Unauthorized: Unauthorized");
  EXPECT_EQ(server_.requests().back().authorization, "Bearer wrong");
  WatchResult w = client->Watch("/api/v1/pods", {}, [](WatchEvent&&) {});
  EXPECT_EQ(w.end, WatchEnd::kError);
  EXPECT_THAT(Message(w.status), HasSubstr(": HTTP 401 Unauthorized: Unauthorized"));
}

TEST_F(ClientTest, RotatedTokenFileIsUsedByTheNextRequest) {
  testing::TempDir dir;
  const std::string path = dir.Write("token", "token-1");
  server_.SetToken("token-1");
  auto client = ClientFor(server_, {.token_file = path});
  ASSERT_TRUE(client->List("/api/v1/pods", {}).ok());
  // kubelet rotates: a new file swapped in, and the server only takes the new token.
  dir.Write("token.new", "token-2");
  std::filesystem::rename(dir.File("token.new"), path);
  server_.SetToken("token-2");
  auto list = client->List("/api/v1/pods", {});
  EXPECT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(server_.requests().back().authorization, "Bearer token-2");
}

TEST_F(ClientTest, MergePatchSetsAPodAnnotation) {
  json pod = PodJson("demo", "client");
  pod["metadata"]["annotations"] = {{"keep", "me"}};
  ASSERT_TRUE(server_.Put(pod).ok());
  const uint64_t before = server_.resource_version();
  auto patched =
      client_->Patch("/api/v1/namespaces/demo/pods/client",
                     {{"metadata", {{"annotations", {{"zmesh.io/status", "enrolled"}}}}}});
  ASSERT_TRUE(patched.ok()) << patched.status();
  EXPECT_EQ((*patched)["metadata"]["annotations"],
            json({{"keep", "me"}, {"zmesh.io/status", "enrolled"}}));
  EXPECT_EQ(MetaField(*patched, "resourceVersion"), std::to_string(before + 1));
  auto stored = server_.Object("v1", "Pod", "demo", "client");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ((*stored)["metadata"]["annotations"]["zmesh.io/status"], "enrolled");
  EXPECT_EQ(server_.requests().back().method, "PATCH");
  EXPECT_EQ(server_.requests().back().content_type, "application/merge-patch+json");
  // null removes the key (RFC 7386).
  patched = client_->Patch("/api/v1/namespaces/demo/pods/client",
                           {{"metadata", {{"annotations", {{"zmesh.io/status", nullptr}}}}}});
  ASSERT_TRUE(patched.ok()) << patched.status();
  EXPECT_EQ((*patched)["metadata"]["annotations"], json({{"keep", "me"}}));

  auto missing = client_->Patch("/api/v1/namespaces/demo/pods/nope", json::object());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Message(missing.status()), "PATCH " + server_.url() +
                                           "/api/v1/namespaces/demo/pods/nope: HTTP 404 Not "
                                           "Found: pods \"nope\" not found");
}

TEST_F(ClientTest, CreateThenGet) {
  auto created = client_->Create("/api/v1/namespaces/demo/pods", PodJson("demo", "new"));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_FALSE(MetaField(*created, "uid").empty());
  auto got = client_->Get("/api/v1/namespaces/demo/pods/new");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, *created);
  auto again = client_->Create("/api/v1/namespaces/demo/pods", PodJson("demo", "new"));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(Message(again.status()), HasSubstr("HTTP 409 Conflict: pods \"new\" already exists"));
  auto cluster = client_->Get("/api/v1/namespaces/demo");
  EXPECT_EQ(cluster.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ClientTest, TokenReview) {
  json seen_spec;
  server_.SetTokenReviewHandler([&seen_spec](const json& spec) {
    seen_spec = spec;
    if (spec.value("token", "") != "good")
      return json{{"authenticated", false}, {"error", "bad token"}};
    return json{{"authenticated", true},
                {"audiences", {"zmesh-ca"}},
                {"user",
                 {{"username", "system:serviceaccount:zmesh-system:ztunnel"},
                  {"uid", "u-1"},
                  {"groups", {"system:serviceaccounts", "system:authenticated"}},
                  {"extra",
                   {{"authentication.kubernetes.io/pod-name", {"ztunnel-abc"}},
                    {"authentication.kubernetes.io/node-name", {"node-a"}}}}}}};
  });
  auto ok = ReviewToken(*client_, "good", {"zmesh-ca"});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ok->authenticated);
  EXPECT_EQ(ok->username, "system:serviceaccount:zmesh-system:ztunnel");
  EXPECT_EQ(ok->uid, "u-1");
  EXPECT_THAT(ok->groups, ElementsAre("system:serviceaccounts", "system:authenticated"));
  EXPECT_THAT(ok->audiences, ElementsAre("zmesh-ca"));
  EXPECT_THAT(ok->extra["authentication.kubernetes.io/node-name"], ElementsAre("node-a"));
  EXPECT_EQ(seen_spec, json({{"token", "good"}, {"audiences", {"zmesh-ca"}}}));
  EXPECT_EQ(server_.requests().back().target, "/apis/authentication.k8s.io/v1/tokenreviews");

  auto bad = ReviewToken(*client_, "forged");
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_FALSE(bad->authenticated);
  EXPECT_EQ(bad->error, "bad token");
  EXPECT_EQ(seen_spec, json({{"token", "forged"}}));
}

TEST(ClientConfig, BadServerUrlAndUnreadableTokenFile) {
  auto c = KubeClient::Create({.server = "ftp://x", .source = "kubeconfig k"});
  EXPECT_EQ(Message(c.status()), "kubeconfig k: server is not an http(s) URL: \"ftp://x\"");
  auto t = KubeClient::Create({.server = "https://x", .token_file = "/nonexistent/token"});
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(t.status()), HasSubstr("/nonexistent/token"));
}

TEST(ClientTransport, ConnectionRefusedIsUnavailable) {
  FakeKubeApiServer server;
  ASSERT_TRUE(server.Start().ok());
  const std::string url = server.url();
  server.Stop();  // nothing listens on the port any more
  auto client = KubeClient::Create({.server = url});
  ASSERT_TRUE(client.ok());
  auto got = (*client)->Get("/api/v1/pods");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Message(got.status()), StartsWith("GET " + url + "/api/v1/pods: "));
  WatchResult w = (*client)->Watch("/api/v1/pods", {}, [](WatchEvent&&) {});
  EXPECT_EQ(w.end, WatchEnd::kError);  // it never started: not "broken"
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pki = testutil::TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = std::make_unique<testutil::TestPki>(*std::move(pki));
    auto other = testutil::TestPki::Create();
    ASSERT_TRUE(other.ok()) << other.status();
    other_ = std::make_unique<testutil::TestPki>(*std::move(other));
  }
  std::unique_ptr<testutil::TestPki> pki_, other_;
};

TEST_F(TlsTest, VerifiesTheServerAgainstTheCaBundle) {
  FakeKubeApiServer server({.tls = pki_.get(), .token = "tok"});
  ASSERT_TRUE(server.Start().ok());
  ASSERT_TRUE(server.Put(PodJson("demo", "a")).ok());
  testing::TempDir dir;
  const std::string ca_file = dir.Write("ca.crt", pki_->ca_pem());
  // The CA as a file (in-cluster) and as data (kubeconfig).
  size_t pods = 1;
  for (Config config : {Config{.ca_file = ca_file, .token = "tok"},
                        Config{.ca_pem = pki_->ca_pem(), .token = "tok"}}) {
    auto client = ClientFor(server, config);
    auto list = client->List("/api/v1/pods", {});
    ASSERT_TRUE(list.ok()) << list.status();
    EXPECT_EQ(list->items.size(), pods);
    // The watch stream over TLS too.
    WatchResult w;
    std::atomic<int> seen{0};
    std::thread t([&] {
      w = client->Watch("/api/v1/pods", {.resource_version = list->resource_version},
                        [&seen](WatchEvent&&) { ++seen; });
    });
    ASSERT_TRUE(WaitFor([&] { return server.open_watches() == 1; }));
    ASSERT_TRUE(server.Put(PodJson("demo", StrCat("b", pods++))).ok());
    ASSERT_TRUE(WaitFor([&] { return seen == 1; }));
    server.EndWatches();
    t.join();
    EXPECT_EQ(w.end, WatchEnd::kClosed) << w.status;
    EXPECT_EQ(w.events, 1);
  }
}

TEST_F(TlsTest, WrongCaFailsWithAClearError) {
  FakeKubeApiServer server({.tls = pki_.get()});
  ASSERT_TRUE(server.Start().ok());
  testing::TempDir dir;
  const std::string wrong = dir.Write("wrong-ca.crt", other_->ca_pem());
  auto client = ClientFor(server, {.ca_file = wrong});
  auto list = client->List("/api/v1/pods", {});
  EXPECT_EQ(list.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Message(list.status()),
              ::testing::MatchesRegex("GET https://localhost:[0-9]+/api/v1/pods\\?limit=500: TLS: "
                                      "SSL certificate problem: .* \\(server certificate checked "
                                      "against CA bundle " +
                                      wrong + "\\)"));
  auto data = ClientFor(server, {.ca_pem = other_->ca_pem(), .source = "kubeconfig k"});
  EXPECT_THAT(Message(data->List("/api/v1/pods", {}).status()),
              HasSubstr("checked against the CA data of kubeconfig k)"));
  // insecure-skip-tls-verify does connect (and says so in the log).
  auto insecure = ClientFor(server, {.insecure_skip_tls_verify = true});
  EXPECT_TRUE(insecure->List("/api/v1/pods", {}).ok());
}

TEST_F(TlsTest, ClientCertificate) {
  FakeKubeApiServer server({.tls = pki_.get(), .require_client_cert = true});
  ASSERT_TRUE(server.Start().ok());
  auto creds = pki_->MintClient("zmesh-system", "agent");
  ASSERT_TRUE(creds.ok()) << creds.status();
  auto with = ClientFor(
      server,
      {.ca_pem = pki_->ca_pem(), .client_cert_pem = creds->first, .client_key_pem = creds->second});
  auto list = with->List("/api/v1/pods", {});
  EXPECT_TRUE(list.ok()) << list.status();
  auto without = ClientFor(server, {.ca_pem = pki_->ca_pem()});
  auto refused = without->List("/api/v1/pods", {});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
}

}  // namespace
}  // namespace zm::kube
