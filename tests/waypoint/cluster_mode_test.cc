// The waypoint binary in cluster mode (--kubeconfig, the same informers as --in-cluster) against
// the fake API server (the real list/watch wire format), with its certificate from a real
// zmesh-ca (file mode) on 127.0.0.1: not ready before every informer has synced, even with its
// certificate; an AuthorizationPolicy and a RequestAuthentication created through the API show
// up in /config_dump (attached to the waypoint), and disappear when deleted. Usage errors are
// clear. No root, no netns: everything on loopback, in a temporary directory removed after.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "common/base/strings.h"
#include "common/http/curl.h"
#include "tests/testutil/child_process.h"
#include "tests/testutil/fake_kube_apiserver.h"
#include "tests/testutil/temp_dir.h"
#include "tests/testutil/wait.h"

namespace zm::waypoint {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using testutil::ChildProcess;
using testutil::WaitFor;

constexpr char kApiToken[] = "waypoint-sa-token";
constexpr auto kDeadline = std::chrono::seconds(30);

struct HttpResult {
  long status = 0;  // 0: no answer
  std::string body;
};

HttpResult Get(uint16_t port, std::string_view path) {
  HttpResult r;
  if (!http::InitCurl().ok()) return r;
  http::CurlEasyPtr c(curl_easy_init());
  const std::string url = StrCat("http://127.0.0.1:", port, path);
  curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(c.get(), CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(
      c.get(), CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t n, void* out) {
        static_cast<std::string*>(out)->append(data, size * n);
        return size * n;
      });
  if (curl_easy_perform(c.get()) == CURLE_OK) {
    curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &r.status);
  }
  return r;
}

// The first number captured by `re` in `log` once it appears; 0 if `process` exits first or the
// deadline passes.
int WaitForNumber(ChildProcess& process, const std::regex& re) {
  int n = 0;
  WaitFor(
      [&] {
        std::smatch m;
        const std::string log = process.Log();
        if (std::regex_search(log, m, re)) n = std::stoi(m[1]);
        return n != 0 || process.Exited();
      },
      kDeadline);
  return n;
}

json Policy(const std::string& kind, const std::string& name, json spec) {
  return {{"apiVersion", "security.istio.io/v1"},
          {"kind", kind},
          {"metadata", {{"name", name}, {"namespace", "demo"}}},
          {"spec", std::move(spec)}};
}

// targetRefs to this waypoint's Gateway: the policy is the waypoint's own.
json ToWaypoint() {
  return json::parse(
      R"([{"kind":"Gateway","group":"gateway.networking.k8s.io","name":"waypoint"}])");
}

class WaypointClusterModeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(api_.Start().ok());
    dir_.Write("kubeconfig", StrCat(R"(apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: ")",
                                    api_.url(), R"("}}]
users: [{name: waypoint, user: {token: )",
                                    kApiToken, R"(}}]
contexts: [{name: fake, context: {cluster: fake, user: waypoint}}]
current-context: fake
)"));
    Put({{"apiVersion", "v1"},
         {"kind", "Namespace"},
         {"metadata", {{"name", "demo"}, {"labels", {{"zmesh.io/dataplane-mode", "ambient"}}}}}});
  }

  void Put(json object) { ASSERT_TRUE(api_.Put(std::move(object)).ok()); }

  // zmesh-ca in file mode, serving "localhost": the token tok-waypoint is node1's, where a pod of
  // demo/waypoint runs, so it gets spiffe://cluster.local/ns/demo/sa/waypoint. Returns its port.
  int StartCa() {
    dir_.Write("ca-tokens", "tok-waypoint,node1\n");
    std::filesystem::create_directories(dir_.File("ca-manifests"));
    dir_.Write("ca-manifests/pods.yaml", R"(apiVersion: v1
kind: Pod
metadata: {name: waypoint-0, namespace: demo, uid: u-waypoint-0}
spec: {serviceAccountName: waypoint, nodeName: node1}
status: {phase: Running, podIP: 10.0.0.9}
)");
    dir_.Write("ca-token", "tok-waypoint");
    auto ca = ChildProcess::Spawn(
        ChildProcess::BuildBinary("zmesh-ca"),
        {"--listen", "127.0.0.1:0", "--dns-name", "localhost", "--state-dir", dir_.File("ca-state"),
         "--tokens", dir_.File("ca-tokens"), "--manifests", dir_.File("ca-manifests")},
        dir_.File("zmesh-ca.log"));
    EXPECT_TRUE(ca.ok()) << ca.status();
    if (!ca.ok()) return 0;
    ca_ = std::move(*ca);
    return WaitForNumber(*ca_, std::regex(R"(listening on 127\.0\.0\.1:(\d+) \(TLS\))"));
  }

  // The waypoint for demo/waypoint with `args` after the common ones; every port on 127.0.0.1,
  // picked by the kernel.
  void StartWaypoint(std::vector<std::string> args, std::vector<std::string> env = {}) {
    std::vector<std::string> all = {"--namespace",      "demo",           "--listen",
                                    "127.0.0.1:0",      "--metrics-addr", "127.0.0.1:0",
                                    "--readiness-addr", "127.0.0.1:0",    "--admin-addr",
                                    "127.0.0.1:0",      "--workers",      "1",
                                    "--log-level",      "debug"};
    all.insert(all.end(), args.begin(), args.end());
    // Native resolution of "localhost" (as the deployment sets GRPC_DNS_RESOLVER).
    env.push_back("GRPC_DNS_RESOLVER=native");
    auto wp = ChildProcess::Spawn(ChildProcess::BuildBinary("waypoint"), std::move(all),
                                  dir_.File("waypoint.log"), std::move(env));
    ASSERT_TRUE(wp.ok()) << wp.status();
    waypoint_ = std::move(*wp);
  }

  // Starts the CA and the waypoint in cluster mode; sets the readiness and admin ports.
  void StartInCluster() {
    const int ca_port = StartCa();
    ASSERT_NE(ca_port, 0) << ca_->Log();
    StartWaypoint({"--kubeconfig", dir_.File("kubeconfig"), "--ca-address",
                   StrCat("localhost:", ca_port), "--ca-root-cert",
                   dir_.File("ca-state/ca/root-cert.pem"), "--ca-token-file",
                   dir_.File("ca-token")});
    static const std::regex kReadiness(R"(readiness 127\.0\.0\.1:(\d+), admin)");
    static const std::regex kAdmin(R"(, admin 127\.0\.0\.1:(\d+))");
    readiness_port_ = static_cast<uint16_t>(WaitForNumber(*waypoint_, kReadiness));
    admin_port_ = static_cast<uint16_t>(WaitForNumber(*waypoint_, kAdmin));
    ASSERT_NE(readiness_port_, 0) << waypoint_->Log();
    ASSERT_NE(admin_port_, 0) << waypoint_->Log();
  }

  json ConfigDump() {
    HttpResult r = Get(admin_port_, "/config_dump");
    if (r.status != 200) return json::object();
    json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    return j.is_discarded() ? json::object() : j;
  }
  // Waits until /config_dump satisfies `pred`; the last dump seen.
  json WaitConfigDump(const std::function<bool(const json&)>& pred) {
    json last;
    WaitFor(
        [&] {
          last = ConfigDump();
          return pred(last);
        },
        kDeadline);
    return last;
  }
  std::string Logs() { return StrCat("--- waypoint:\n", waypoint_ ? waypoint_->Log() : ""); }

  testutil::TempDir dir_{"waypoint-cluster"};
  testutil::FakeKubeApiServer api_{{.token = kApiToken}};
  std::unique_ptr<ChildProcess> ca_;
  std::unique_ptr<ChildProcess> waypoint_;
  uint16_t readiness_port_ = 0;
  uint16_t admin_port_ = 0;
};

bool HasCertificate(const json& dump) {
  return dump.contains("certificates") && dump["certificates"].size() == 1 &&
         dump["certificates"][0].value("has_certificate", false);
}

std::vector<std::string> Names(const json& dump, const std::string& list) {
  std::vector<std::string> out;
  if (dump.contains("policies")) {
    for (const auto& n : dump["policies"].value(list, json::array())) out.push_back(n);
  }
  return out;
}

std::vector<std::string> Attached(const json& dump) {
  std::vector<std::string> out;
  if (!dump.contains("policies")) return out;
  const json& a = dump["policies"]["attached_to_waypoint"];
  for (const auto& p : a["authorization_policies"]) {
    out.push_back(StrCat(p["action"].get<std::string>(), " ", p["name"].get<std::string>()));
  }
  for (const auto& n : a["request_authentications"]) {
    out.push_back(StrCat("jwt ", n.get<std::string>()));
  }
  return out;
}

TEST_F(WaypointClusterModeTest, ReadyOnlyAfterSyncThenPoliciesFollowTheApiServer) {
  // (a) Every request to the API server fails: the informers cannot sync.
  api_.FailRequests(503, -1);
  StartInCluster();
  json dump = WaitConfigDump([](const json& d) {
    if (!HasCertificate(d) || !d.contains("source")) return false;
    for (const auto& i : d["source"]["informers"]) {
      if (i.value("failures", 0) < 1) return false;
    }
    return true;
  });
  ASSERT_TRUE(HasCertificate(dump)) << dump.dump(2) << Logs() << ca_->Log();
  EXPECT_EQ(dump["source"]["mode"], "cluster");
  EXPECT_EQ(dump["source"]["synced"], false);
  EXPECT_EQ(dump["source"]["unsynced"].size(), 6u) << dump.dump(2);
  EXPECT_EQ(dump["mesh_version"], 0);
  for (const auto& i : dump["source"]["informers"]) {
    EXPECT_THAT(i["last_error"].get<std::string>(), HasSubstr("503")) << i.dump();
  }
  // It has its certificate; only the API server's objects are missing, and readiness says so.
  HttpResult ready = Get(readiness_port_, "/healthz/ready");
  EXPECT_EQ(ready.status, 503) << ready.body;
  EXPECT_THAT(ready.body, HasSubstr("not synced: "));
  EXPECT_THAT(ready.body, HasSubstr("RequestAuthentication"));
  EXPECT_THAT(ready.body, Not(HasSubstr("certificate")));

  // The API server recovers: the informers sync (after their backoff) and the waypoint is ready.
  api_.FailRequests(0, 0);
  EXPECT_TRUE(
      WaitFor([&] { return Get(readiness_port_, "/healthz/ready").status == 200; }, kDeadline))
      << Get(readiness_port_, "/healthz/ready").body << Logs();
  dump = ConfigDump();
  EXPECT_EQ(dump["source"]["synced"], true);
  EXPECT_GE(dump["mesh_version"].get<int>(), 1);
  EXPECT_THAT(Names(dump, "authorization_policies"), ::testing::IsEmpty());
  EXPECT_THAT(waypoint_->Log(), HasSubstr(StrCat("cluster mode: API server ", api_.url())));

  // (b) kubectl apply: a DENY for /admin and a RequestAuthentication, both on the waypoint.
  Put(Policy("AuthorizationPolicy", "deny-admin",
             {{"targetRefs", ToWaypoint()},
              {"action", "DENY"},
              {"rules", json::parse(R"([{"to":[{"operation":{"paths":["/admin"]}}]}])")}}));
  // An inline key set (RFC 7517 A.1's public EC key): no fetch from the test.
  Put(Policy("RequestAuthentication", "jwt",
             {{"targetRefs", ToWaypoint()},
              {"jwtRules", json::parse(R"([{"issuer":"https://issuer.example","jwks":
"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4\",\"y\":\"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM\",\"kid\":\"1\"}]}"}])")}}));
  dump = WaitConfigDump([](const json& d) {
    return Names(d, "authorization_policies") == std::vector<std::string>{"demo/deny-admin"} &&
           Names(d, "request_authentications") == std::vector<std::string>{"demo/jwt"};
  });
  EXPECT_EQ(Names(dump, "authorization_policies"), std::vector<std::string>{"demo/deny-admin"})
      << dump.dump(2) << Logs();
  EXPECT_EQ(Names(dump, "request_authentications"), std::vector<std::string>{"demo/jwt"});
  EXPECT_THAT(Attached(dump),
              ::testing::UnorderedElementsAre("DENY demo/deny-admin", "jwt demo/jwt"));
  EXPECT_THAT(dump["warnings"], ::testing::IsEmpty()) << dump.dump(2);

  // A broken edit: kept as rejected (fails closed), named in the warnings.
  Put(Policy("RequestAuthentication", "jwt",
             {{"targetRefs", ToWaypoint()},
              {"jwtRules", json::parse(R"([{"issuer":"i","jwksUri":"ftp://i/jwks"}])")}}));
  dump = WaitConfigDump([](const json& d) {
    return Names(d, "rejected_request_authentications") == std::vector<std::string>{"demo/jwt"};
  });
  EXPECT_EQ(Names(dump, "rejected_request_authentications"), std::vector<std::string>{"demo/jwt"})
      << dump.dump(2);
  EXPECT_THAT(Names(dump, "request_authentications"), ::testing::IsEmpty());
  EXPECT_THAT(dump["warnings"].dump(), HasSubstr("demo/jwt"));

  // (c) kubectl delete: both disappear.
  ASSERT_TRUE(
      api_.Delete("security.istio.io/v1", "AuthorizationPolicy", "demo", "deny-admin").ok());
  ASSERT_TRUE(api_.Delete("security.istio.io/v1", "RequestAuthentication", "demo", "jwt").ok());
  dump = WaitConfigDump([](const json& d) {
    return d.contains("policies") && Names(d, "authorization_policies").empty() &&
           Names(d, "rejected_request_authentications").empty() &&
           Names(d, "request_authentications").empty();
  });
  EXPECT_THAT(Names(dump, "authorization_policies"), ::testing::IsEmpty()) << dump.dump(2);
  EXPECT_THAT(Names(dump, "rejected_request_authentications"), ::testing::IsEmpty());
  EXPECT_THAT(Attached(dump), ::testing::IsEmpty());
  EXPECT_EQ(Get(readiness_port_, "/healthz/ready").status, 200);

  ASSERT_TRUE(waypoint_->Signal(SIGTERM));
  EXPECT_EQ(waypoint_->WaitExit(), 0) << Logs();
}

TEST_F(WaypointClusterModeTest, UsageAndConfigurationErrorsAreClear) {
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  const std::string kubeconfig = dir_.File("kubeconfig");
  const Case cases[] = {
      {{"--manifests", dir_.path(), "--kubeconfig", kubeconfig},
       "exactly one of --manifests DIR (local mode), --kubeconfig FILE or --in-cluster"},
      {{}, "exactly one of --manifests DIR"},
      {{"--in-cluster", "--kube-context", "x"}, "--kube-context needs --kubeconfig"},
      {{"--in-cluster"},
       "in-cluster config: KUBERNETES_SERVICE_HOST is not set (not running in a pod?)"},
      {{"--kubeconfig", dir_.File("missing")},
       StrCat("kubeconfig: open(", dir_.File("missing"), ")")},
      {{"--kubeconfig", kubeconfig, "--kube-context", "other"}, "other"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = c.args;
    args.insert(args.end(), {"--ca-address", "unix:" + dir_.File("no-ca.sock")});
    StartWaypoint(args, {"KUBERNETES_SERVICE_HOST=", "KUBERNETES_SERVICE_PORT="});
    EXPECT_EQ(waypoint_->WaitExit(), 2) << waypoint_->Log();
    EXPECT_THAT(waypoint_->Log(), HasSubstr(c.error));
    EXPECT_THAT(waypoint_->Log(), Not(HasSubstr("not built yet")));
  }
}

}  // namespace
}  // namespace zm::waypoint
