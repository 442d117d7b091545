#pragma once
// Shared by the Kubernetes-mode zmesh-ca tests: pods as the API server stores them, scripted
// TokenReview answers for the fake API server, and a client for it.
//
// The cluster of these tests: node1 runs ztunnel-node1 (zmesh-system/ztunnel) and demo/client,
// plus a finished job demo/batch; node2 runs ztunnel-node2, demo/server and demo/waypoint.

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/base/strings.h"
#include "common/jwt/base64url.h"
#include "common/kube/client.h"
#include "tests/testutil/fake_kube_apiserver.h"

namespace zm::ca::testing {

using nlohmann::json;

inline json PodJson(const std::string& ns, const std::string& name, const std::string& sa,
                    const std::string& node, const std::string& phase = "Running") {
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", name}, {"namespace", ns}, {"uid", "uid-" + name}}},
              {"spec", {{"serviceAccountName", sa}}},
              {"status", json::object()}};
  if (!node.empty()) pod["spec"]["nodeName"] = node;
  if (!phase.empty()) pod["status"]["phase"] = phase;
  return pod;
}

inline void PutCluster(testutil::FakeKubeApiServer& api) {
  for (const json& pod : {PodJson("zmesh-system", "ztunnel-node1", "ztunnel", "node1"),
                          PodJson("zmesh-system", "ztunnel-node2", "ztunnel", "node2"),
                          PodJson("demo", "client", "client", "node1"),
                          PodJson("demo", "batch", "batch", "node1", "Succeeded"),
                          PodJson("demo", "server", "server", "node2"),
                          PodJson("demo", "waypoint", "waypoint", "node2")}) {
    auto stored = api.Put(pod);
    ASSERT_TRUE(stored.ok()) << stored.status();
  }
}

// TokenReview status bodies.
inline json ServiceAccountReview(const std::string& ns, const std::string& sa,
                                 const std::string& pod = "",
                                 std::vector<std::string> audiences = {"zmesh-ca"}) {
  json user = {{"username", StrCat("system:serviceaccount:", ns, ":", sa)},
               {"uid", "sa-uid-" + sa},
               {"groups", {"system:serviceaccounts", "system:serviceaccounts:" + ns}}};
  if (!pod.empty()) {
    user["extra"] = {{"authentication.kubernetes.io/pod-name", {pod}},
                     {"authentication.kubernetes.io/pod-uid", {"uid-" + pod}}};
  }
  return {{"authenticated", true}, {"user", user}, {"audiences", audiences}};
}
inline json ZtunnelReview(const std::string& node) {
  return ServiceAccountReview("zmesh-system", "ztunnel", "ztunnel-" + node);
}
inline json Unauthenticated(const std::string& error) {
  return {{"authenticated", false}, {"error", error}};
}

// A compact JWS whose payload is {"exp": exp} (the signature is not checked by zmesh-ca: the API
// server does that in the TokenReview).
inline std::string JwtWithExp(int64_t exp, const std::string& salt = "") {
  return StrCat(jwt::Base64UrlEncode(R"({"alg":"RS256","typ":"JWT"})"), ".",
                jwt::Base64UrlEncode(StrCat(R"({"exp":)", exp, R"(,"jti":")", salt, R"("})")), ".",
                jwt::Base64UrlEncode("signature"));
}

// The fake API server's TokenReview answers: token -> status; an unknown token is not
// authenticated ("invalid bearer token"). Records the audiences asked for.
class TokenReviews {
 public:
  explicit TokenReviews(testutil::FakeKubeApiServer& api) {
    api.SetTokenReviewHandler([this](const json& spec) {
      std::lock_guard lock(mu_);
      ++reviews_;
      last_audiences_ = spec.value("audiences", json::array());
      auto it = answers_.find(spec.value("token", ""));
      return it != answers_.end() ? it->second : Unauthenticated("invalid bearer token");
    });
  }
  void Set(const std::string& token, json status) {
    std::lock_guard lock(mu_);
    answers_[token] = std::move(status);
  }
  int reviews() const {
    std::lock_guard lock(mu_);
    return reviews_;
  }
  json last_audiences() const {
    std::lock_guard lock(mu_);
    return last_audiences_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, json> answers_;
  int reviews_ = 0;
  json last_audiences_;
};

// A client for `server` (plain HTTP) with the bearer token the server expects.
inline std::unique_ptr<kube::KubeClient> KubeClientFor(const testutil::FakeKubeApiServer& server,
                                                       const std::string& token) {
  auto client =
      kube::KubeClient::Create({.server = server.url(), .token = token, .source = "test"});
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

}  // namespace zm::ca::testing
