#pragma once
// Shared by the common/kube tests: objects as the API server stores them, a client for a fake
// server, a temporary directory, and a thread-safe record of informer events.

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/kube/client.h"
#include "common/kube/informer.h"
#include "tests/testutil/fake_kube_apiserver.h"
#include "tests/testutil/temp_dir.h"

namespace zm::kube::testing {

using nlohmann::json;

inline json PodJson(const std::string& ns, const std::string& name,
                    const std::map<std::string, std::string>& labels = {},
                    const std::string& ip = "") {
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", name}, {"namespace", ns}}},
              {"spec", {{"serviceAccountName", "sa-" + name}, {"nodeName", "node-a"}}},
              {"status", {{"phase", "Running"}}}};
  if (!labels.empty()) pod["metadata"]["labels"] = labels;
  if (!ip.empty()) pod["status"]["podIP"] = ip;
  return pod;
}

inline json NamespaceJson(const std::string& name,
                          const std::map<std::string, std::string>& labels = {}) {
  json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}};
  if (!labels.empty()) ns["metadata"]["labels"] = labels;
  return ns;
}

// A client for `server` (plain HTTP unless `config` says otherwise).
inline std::unique_ptr<KubeClient> ClientFor(const testutil::FakeKubeApiServer& server,
                                             Config config = {}, ClientOptions options = {}) {
  config.server = server.url();
  if (config.source.empty()) config.source = "test";
  auto client = KubeClient::Create(std::move(config), std::move(options));
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

using TempDir = testutil::TempDir;

// What handlers saw, as "add demo/a", "update demo/a", "delete demo/a".
class Recorder {
 public:
  template <typename T>
  typename Informer<T>::Handlers Handlers(std::function<std::string(const T&)> key) {
    return {.on_add = [this, key](const T& v) { Add("add " + key(v)); },
            .on_update = [this, key](const T&, const T& v) { Add("update " + key(v)); },
            .on_delete = [this, key](const T& v) { Add("delete " + key(v)); }};
  }
  std::vector<std::string> events() const {
    std::lock_guard lock(mu_);
    return events_;
  }
  size_t size() const {
    std::lock_guard lock(mu_);
    return events_.size();
  }
  // The events after the first `n`.
  std::vector<std::string> Since(size_t n) const {
    std::lock_guard lock(mu_);
    return std::vector<std::string>(
        events_.begin() + static_cast<long>(std::min(n, events_.size())), events_.end());
  }

 private:
  void Add(std::string e) {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(e));
  }
  mutable std::mutex mu_;
  std::vector<std::string> events_;
};

}  // namespace zm::kube::testing
