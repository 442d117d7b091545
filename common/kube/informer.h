#pragma once
// A cache of one kind of object, kept in step with the API server (client-go's informer, by
// hand): list, then watch from the list's resourceVersion with bookmarks; relist on 410 Gone;
// back off with jitter on errors, broken streams and watches closed before any event (reset by
// a watch that delivered something). Each informer runs one thread of its own; handlers run on
// it, in order, without the cache lock held.
//
// What handlers see is consistent whatever the stream does: an event is applied only when the
// object's resourceVersion differs from the cached one (a replayed or duplicated event is a
// no-op), an object recreated under the same name (another uid) is a delete then an add, and a
// relist is a diff against the cache (gone objects are deletes, changed ones updates, unchanged
// ones nothing). Objects are keyed "namespace/name" ("name" for cluster-scoped kinds).

#include <atomic>
#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/base/log.h"
#include "common/kube/backoff.h"
#include "common/kube/cancel.h"
#include "common/kube/client.h"

namespace zm::kube {

// Where a kind lives in the API.
struct ResourceKind {
  std::string_view api_version;  // "v1", "discovery.k8s.io/v1"
  std::string_view kind;         // "Pod"
  std::string_view plural;       // "pods"
  bool namespaced = true;

  // "/api/v1/pods", "/api/v1/namespaces/demo/pods", "/apis/discovery.k8s.io/v1/endpointslices"
  std::string CollectionPath(std::string_view namespace_name = "") const;
  // "/api/v1/namespaces/demo/pods/client", "/api/v1/namespaces/demo"
  std::string ObjectPath(std::string_view namespace_name, std::string_view name) const;
};

struct InformerOptions {
  std::string namespace_name;  // empty: every namespace
  std::string label_selector;
  std::string field_selector;  // e.g. "spec.nodeName=node-a"
  int64_t page_size = 500;
  std::chrono::seconds watch_timeout{300};  // the server ends each watch after this; we re-watch
  BackoffPolicy backoff;
  uint64_t backoff_seed = 0;   // 0: random
  Sleeper* sleeper = nullptr;  // null: real time
};

struct InformerStats {
  int64_t lists = 0;     // successful lists, the first and every relist
  int64_t watches = 0;   // watch requests made
  int64_t gone = 0;      // 410 Gone seen (each leads to a relist)
  int64_t failures = 0;  // failed lists, and watches that ended in error, broken or bad event
  int64_t rejected = 0;  // objects the converter refused (absent from the cache)
  std::vector<std::chrono::milliseconds> backoffs;  // the last delays slept, oldest first (<= 32)
  std::string last_error;
};

// The kind-independent engine: the thread, list/watch, backoff and the resourceVersion index.
class InformerBase {
 public:
  virtual ~InformerBase();
  InformerBase(const InformerBase&) = delete;
  InformerBase& operator=(const InformerBase&) = delete;

  // Starts the informer thread. Once per informer.
  void Start();
  // Interrupts the list, watch or backoff in progress and joins the thread. Idempotent; a handler
  // already running finishes first.
  void Stop();

  // The first list has been applied (every object in it handed to on_add).
  bool HasSynced() const { return synced_.load(); }
  bool WaitForSync(std::chrono::milliseconds timeout) const;
  // The resourceVersion the next watch starts from.
  std::string ResourceVersion() const;
  InformerStats Stats() const;
  const ResourceKind& kind() const { return kind_; }

 protected:
  InformerBase(KubeApi& api, const ResourceKind& kind, InformerOptions options);
  bool started() const { return thread_.joinable(); }

  // On the informer thread, with each change that passed the resourceVersion check. The object
  // has kind and apiVersion set and metadata.managedFields removed.
  virtual void Upsert(const std::string& key, const nlohmann::json& object) = 0;
  virtual void Remove(const std::string& key) = 0;
  // A converter refused an object: counted, logged.
  void Rejected(const std::string& key, const absl::Status& why);

 private:
  struct Version {
    std::string uid;
    std::string resource_version;
  };

  void Run();
  absl::Status Relist();
  void OnEvent(WatchEvent&& event);
  // Applies one object from a list or an ADDED/MODIFIED event.
  void Put(const std::string& key, nlohmann::json&& object);
  void Delete(const std::string& key);
  // Normalizes an object; its key, or empty when it has no name.
  std::string Prepare(nlohmann::json& object) const;
  void SetResourceVersion(std::string rv);
  void Failure(const absl::Status& why);
  bool Sleep(Backoff& backoff);

  KubeApi& api_;
  const ResourceKind kind_;
  const InformerOptions options_;
  const std::string path_;
  Sleeper& sleeper_;
  Cancellation cancel_;
  std::thread thread_;
  std::atomic<bool> synced_{false};
  std::map<std::string, Version> index_;  // informer thread only

  mutable std::mutex mu_;
  mutable std::condition_variable synced_cv_;
  std::string resource_version_;
  InformerStats stats_;
};

// A typed cache: each object converted once by `convert`; an object it refuses is absent (and a
// cached one it now refuses is deleted), as a bad object is in local mode.
template <typename T>
class Informer final : public InformerBase {
 public:
  using Converter = std::function<absl::StatusOr<T>(const nlohmann::json& object)>;
  struct Handlers {
    std::function<void(const T&)> on_add;
    std::function<void(const T& old_value, const T& new_value)> on_update;
    std::function<void(const T&)> on_delete;  // the last cached value
  };

  Informer(KubeApi& api, const ResourceKind& kind, Converter convert, InformerOptions options = {})
      : InformerBase(api, kind, std::move(options)), convert_(std::move(convert)) {}
  ~Informer() override { Stop(); }

  // Before Start() only.
  void AddHandlers(Handlers handlers) {
    if (started()) {
      Log("kube").critical("{} informer: AddHandlers after Start", kind().kind);
      std::abort();
    }
    handlers_.push_back(std::move(handlers));
  }

  std::optional<T> Get(const std::string& key) const {
    std::lock_guard lock(mu_);
    auto it = items_.find(key);
    if (it == items_.end()) return std::nullopt;
    return it->second;
  }
  // Every cached object, by key.
  std::vector<T> List() const {
    std::lock_guard lock(mu_);
    std::vector<T> out;
    out.reserve(items_.size());
    for (const auto& [key, value] : items_) out.push_back(value);
    return out;
  }
  size_t size() const {
    std::lock_guard lock(mu_);
    return items_.size();
  }

 private:
  void Upsert(const std::string& key, const nlohmann::json& object) override {
    absl::StatusOr<T> value = convert_(object);
    if (!value.ok()) {
      Rejected(key, value.status());
      Remove(key);
      return;
    }
    std::optional<T> old;
    {
      std::lock_guard lock(mu_);
      auto [it, added] = items_.try_emplace(key, *value);
      if (!added) {
        old = std::move(it->second);
        it->second = *value;
      }
    }
    if (!old) {
      for (const Handlers& h : handlers_) {
        if (h.on_add) h.on_add(*value);
      }
      return;
    }
    if constexpr (std::equality_comparable<T>) {
      if (*old == *value) return;  // nothing this cache keeps changed
    }
    for (const Handlers& h : handlers_) {
      if (h.on_update) h.on_update(*old, *value);
    }
  }

  void Remove(const std::string& key) override {
    std::optional<T> old;
    {
      std::lock_guard lock(mu_);
      auto it = items_.find(key);
      if (it == items_.end()) return;
      old = std::move(it->second);
      items_.erase(it);
    }
    for (const Handlers& h : handlers_) {
      if (h.on_delete) h.on_delete(*old);
    }
  }

  Converter convert_;
  std::vector<Handlers> handlers_;
  mutable std::mutex mu_;
  std::map<std::string, T> items_;
};

}  // namespace zm::kube
