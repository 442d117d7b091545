#pragma once
// A small Kubernetes API client on libcurl (DESIGN §2, cluster mode): list with pagination,
// watch as a stream of JSON events, get, create, merge-patch, and TokenReview on top.
// `KubeApi` is the seam the agent's tests fake; `KubeClient` is the real one.
//
// Errors name the verb, the URL, the HTTP status and the API's Status.message:
// `PATCH https://10.96.0.1:443/api/v1/namespaces/demo/pods/x: HTTP 404 Not Found: pods "x" not
// found`. The HTTP status also travels as a payload of the Status (HttpStatusOf).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/kube/cancel.h"
#include "common/kube/config.h"

namespace zm::kube {

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  int64_t page_size = 500;         // `limit` per request; 0 asks for everything at once
  Cancellation* cancel = nullptr;  // interrupts a list in progress (KubeClient: at once)
};

struct ListResult {
  std::vector<nlohmann::json> items;  // as sent: list items of built-in kinds lack kind/apiVersion
  std::string resource_version;       // the list's, to watch from
};

enum class EventType { kAdded, kModified, kDeleted, kBookmark };
std::string_view EventTypeName(EventType type);

struct WatchEvent {
  EventType type;
  nlohmann::json object;  // BOOKMARK: only kind, apiVersion and metadata.resourceVersion
};

struct WatchOptions {
  std::string resource_version;  // watch changes after this one ("" or "0": from any point)
  bool allow_bookmarks = true;
  // timeoutSeconds: the server ends the watch cleanly after this long. The transfer itself
  // gives up `ClientOptions::watch_grace` later.
  std::chrono::seconds timeout{300};
  std::string label_selector;
  std::string field_selector;
  Cancellation* cancel = nullptr;
};

// Why a watch ended.
enum class WatchEnd {
  kClosed,     // the server ended the stream cleanly (timeoutSeconds): watch again
  kGone,       // 410 Gone (HTTP status, or an ERROR event with code 410): relist
  kError,      // the request failed or was refused (connect, TLS, HTTP status, ERROR event)
  kBroken,     // the stream had started and broke (reset, cut inside an event, transport timeout)
  kBadEvent,   // a line that is not a watch event (malformed JSON, unknown type, no object)
  kCancelled,  // WatchOptions::cancel fired
};
std::string_view WatchEndName(WatchEnd end);

struct WatchResult {
  WatchEnd end = WatchEnd::kClosed;
  absl::Status status;  // OK for kClosed; otherwise why, naming the verb and the URL
  int64_t events = 0;   // events handed to the callback, bookmarks included
};

// Runs on the calling thread, once per event, in stream order.
using WatchCallback = std::function<void(WatchEvent&& event)>;

// The Kubernetes API as the informers and the agent use it. Paths are absolute API paths
// ("/api/v1/namespaces/demo/pods"); implementations are thread-safe.
class KubeApi {
 public:
  virtual ~KubeApi() = default;
  // Every page (limit/continue); a continue token that expired restarts the list once.
  virtual absl::StatusOr<ListResult> List(std::string_view path, const ListOptions& options) = 0;
  // Blocks until the watch ends; see WatchEnd.
  virtual WatchResult Watch(std::string_view path, const WatchOptions& options,
                            const WatchCallback& on_event) = 0;
  virtual absl::StatusOr<nlohmann::json> Get(std::string_view path) = 0;
  // POST `object` to the collection `path`; returns what the server stored.
  virtual absl::StatusOr<nlohmann::json> Create(std::string_view path,
                                                const nlohmann::json& object) = 0;
  // A JSON merge patch (RFC 7386, application/merge-patch+json); returns the patched object.
  virtual absl::StatusOr<nlohmann::json> Patch(std::string_view path,
                                               const nlohmann::json& merge_patch) = 0;
};

// The HTTP status a KubeApi error carries; 0 when it has none (transport errors).
int HttpStatusOf(const absl::Status& status);

// authentication.k8s.io/v1 TokenReview (zmesh-ca checks ztunnels' projected tokens).
struct TokenReviewResult {
  bool authenticated = false;
  std::string username;  // "system:serviceaccount:zmesh-system:ztunnel"
  std::string uid;
  std::vector<std::string> groups;
  std::vector<std::string> audiences;  // the audiences the token is valid for
  // user.extra, e.g. "authentication.kubernetes.io/pod-name", ".../node-name"
  std::map<std::string, std::vector<std::string>> extra;
  std::string error;  // status.error: why the token was not authenticated
};

// POSTs a TokenReview for `token` (with `audiences`, empty: the API server's) and reads its
// status. Not authenticated is a result, not an error; a refused request is.
absl::StatusOr<TokenReviewResult> ReviewToken(KubeApi& api, std::string_view token,
                                              const std::vector<std::string>& audiences = {});

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds request_timeout{30'000};  // every request but watches
  std::chrono::seconds watch_grace{30};
  std::string user_agent = "zmesh/0.1";
  const Clock* clock = &SystemClock::Get();  // for the token file's re-read interval
};

// The libcurl client. Every request runs on the calling thread in its own curl multi handle
// (so a Cancellation can wake it); idle handles are pooled and keep their connection. HTTP/1.1
// only: what the fake API server tests is what runs.
class KubeClient final : public KubeApi {
 public:
  // Checks the config (server URL; token file readable) and initializes libcurl.
  static absl::StatusOr<std::unique_ptr<KubeClient>> Create(Config config,
                                                            ClientOptions options = {});
  ~KubeClient() override;

  absl::StatusOr<ListResult> List(std::string_view path, const ListOptions& options) override;
  WatchResult Watch(std::string_view path, const WatchOptions& options,
                    const WatchCallback& on_event) override;
  absl::StatusOr<nlohmann::json> Get(std::string_view path) override;
  absl::StatusOr<nlohmann::json> Create(std::string_view path,
                                        const nlohmann::json& object) override;
  absl::StatusOr<nlohmann::json> Patch(std::string_view path,
                                       const nlohmann::json& merge_patch) override;

  const Config& config() const { return config_; }

  struct Handle;    // a curl multi handle with its easy handle (client.cc)
  struct Request;   // one HTTP exchange (client.cc)
  struct Response;  // its outcome (client.cc)

 private:
  KubeClient(Config config, ClientOptions options);

  // One exchange on a pooled handle; a 401 invalidates the token.
  Response Perform(const Request& request);
  // A non-streaming exchange whose body must be a JSON object.
  absl::StatusOr<nlohmann::json> JsonCall(std::string_view verb, const std::string& path_query,
                                          const std::string* body, std::string_view content_type,
                                          Cancellation* cancel);
  std::unique_ptr<Handle> Acquire();
  void Release(std::unique_ptr<Handle> handle);

  const Config config_;
  const ClientOptions options_;
  TokenSource token_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Handle>> idle_;
};

}  // namespace zm::kube
