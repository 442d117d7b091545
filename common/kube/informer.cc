#include "common/kube/informer.h"

#include <set>
#include <utility>

#include "common/base/log.h"
#include "common/base/strings.h"
#include "common/kube/json.h"

namespace zm::kube {
namespace {

using nlohmann::json;

spdlog::logger& L() { return Log("kube"); }

constexpr size_t kMaxBackoffHistory = 32;

std::string GroupVersionPath(std::string_view api_version) {
  return api_version.find('/') == std::string_view::npos ? StrCat("/api/", api_version)
                                                         : StrCat("/apis/", api_version);
}

}  // namespace

std::string ResourceKind::CollectionPath(std::string_view namespace_name) const {
  if (!namespaced || namespace_name.empty())
    return StrCat(GroupVersionPath(api_version), "/", plural);
  return StrCat(GroupVersionPath(api_version), "/namespaces/", namespace_name, "/", plural);
}

std::string ResourceKind::ObjectPath(std::string_view namespace_name, std::string_view name) const {
  return StrCat(CollectionPath(namespaced ? namespace_name : ""), "/", name);
}

InformerBase::InformerBase(KubeApi& api, const ResourceKind& kind, InformerOptions options)
    : api_(api),
      kind_(kind),
      options_(std::move(options)),
      path_(kind.CollectionPath(options_.namespace_name)),
      sleeper_(options_.sleeper != nullptr ? *options_.sleeper : RealSleeper::Get()) {}

InformerBase::~InformerBase() {
  // The derived class has stopped us already (its members die before ours).
  if (thread_.joinable()) {
    L().critical("{} informer destroyed while running", kind_.kind);
    std::abort();
  }
}

void InformerBase::Start() {
  if (thread_.joinable() || cancel_.cancelled()) {
    L().critical("{} informer: Start called twice", kind_.kind);
    std::abort();
  }
  thread_ = std::thread([this] { Run(); });
}

void InformerBase::Stop() {
  cancel_.Cancel();
  if (thread_.joinable()) thread_.join();
}

bool InformerBase::WaitForSync(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return synced_cv_.wait_for(lock, timeout, [this] { return synced_.load(); });
}

std::string InformerBase::ResourceVersion() const {
  std::lock_guard lock(mu_);
  return resource_version_;
}

InformerStats InformerBase::Stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void InformerBase::SetResourceVersion(std::string rv) {
  if (rv.empty()) return;
  std::lock_guard lock(mu_);
  resource_version_ = std::move(rv);
}

void InformerBase::Failure(const absl::Status& why) {
  std::lock_guard lock(mu_);
  ++stats_.failures;
  stats_.last_error = std::string(why.message());
}

void InformerBase::Rejected(const std::string& key, const absl::Status& why) {
  L().error("{} {}: not cached: {}", kind_.kind, key, why.message());
  std::lock_guard lock(mu_);
  ++stats_.rejected;
  stats_.last_error = std::string(why.message());
}

bool InformerBase::Sleep(Backoff& backoff) {
  const std::chrono::milliseconds d = backoff.Next();
  {
    std::lock_guard lock(mu_);
    if (stats_.backoffs.size() == kMaxBackoffHistory)
      stats_.backoffs.erase(stats_.backoffs.begin());
    stats_.backoffs.push_back(d);
  }
  L().debug("{} informer: retrying in {} ms", kind_.kind, d.count());
  return sleeper_.Sleep(d, cancel_);
}

std::string InformerBase::Prepare(json& object) const {
  if (!object.is_object()) return "";
  // List items of built-in kinds come without kind and apiVersion; the converters need them.
  if (StringField(object, "kind").empty()) object["kind"] = kind_.kind;
  if (StringField(object, "apiVersion").empty()) object["apiVersion"] = kind_.api_version;
  auto meta = object.find("metadata");
  if (meta != object.end() && meta->is_object()) meta->erase("managedFields");
  const std::string name = MetaField(object, "name");
  if (name.empty()) return "";
  if (!kind_.namespaced) return name;
  return StrCat(MetaField(object, "namespace"), "/", name);
}

void InformerBase::Put(const std::string& key, json&& object) {
  const std::string uid = MetaField(object, "uid");
  std::string rv = MetaField(object, "resourceVersion");
  auto it = index_.find(key);
  if (it != index_.end()) {
    if (!rv.empty() && it->second.resource_version == rv) return;  // seen already
    if (!uid.empty() && !it->second.uid.empty() && uid != it->second.uid) {
      // Deleted and created again under the same name while we were not looking.
      index_.erase(it);
      Remove(key);
    }
  }
  index_[key] = Version{.uid = uid, .resource_version = std::move(rv)};
  Upsert(key, object);
}

void InformerBase::Delete(const std::string& key) {
  if (index_.erase(key) == 0) return;
  Remove(key);
}

absl::Status InformerBase::Relist() {
  absl::StatusOr<ListResult> list =
      api_.List(path_, ListOptions{.label_selector = options_.label_selector,
                                   .field_selector = options_.field_selector,
                                   .page_size = options_.page_size,
                                   .cancel = &cancel_});
  if (!list.ok()) return list.status();
  if (list->resource_version.empty()) {
    return absl::DataLossError(StrCat("GET ", path_, ": the list has no resourceVersion"));
  }
  std::vector<std::pair<std::string, json>> objects;
  objects.reserve(list->items.size());
  std::set<std::string> listed;
  for (json& item : list->items) {
    std::string key = Prepare(item);
    if (key.empty()) {
      L().error("{} list: an item without metadata.name, skipped", kind_.kind);
      continue;
    }
    if (!listed.insert(key).second) continue;
    objects.emplace_back(std::move(key), std::move(item));
  }
  // The diff: what is no longer listed went away while we were not watching.
  std::vector<std::string> gone;
  for (const auto& [key, version] : index_) {
    if (!listed.contains(key)) gone.push_back(key);
  }
  for (const std::string& key : gone) Delete(key);
  for (auto& [key, object] : objects) Put(key, std::move(object));
  SetResourceVersion(list->resource_version);
  {
    std::lock_guard lock(mu_);
    ++stats_.lists;
    synced_ = true;
  }
  synced_cv_.notify_all();
  L().debug("{} informer: listed {} objects at resourceVersion {}", kind_.kind, objects.size(),
            list->resource_version);
  return absl::OkStatus();
}

void InformerBase::OnEvent(WatchEvent&& event) {
  std::string rv = MetaField(event.object, "resourceVersion");
  if (event.type == EventType::kBookmark) {
    SetResourceVersion(std::move(rv));
    return;
  }
  const std::string key = Prepare(event.object);
  if (key.empty()) {
    L().error("{} watch: a {} event for an object without metadata.name, skipped", kind_.kind,
              EventTypeName(event.type));
  } else if (event.type == EventType::kDeleted) {
    Delete(key);
  } else {
    Put(key, std::move(event.object));
  }
  SetResourceVersion(std::move(rv));
}

void InformerBase::Run() {
  Backoff backoff(options_.backoff, options_.backoff_seed);
  bool need_list = true;
  bool just_listed = false;
  while (!cancel_.cancelled()) {
    if (need_list) {
      absl::Status listed = Relist();
      if (cancel_.cancelled()) return;
      if (!listed.ok()) {
        L().warn("{} informer: list failed: {}", kind_.kind, listed.message());
        Failure(listed);
        if (!Sleep(backoff)) return;
        continue;
      }
      need_list = false;
      just_listed = true;
    }
    {
      std::lock_guard lock(mu_);
      ++stats_.watches;
    }
    WatchResult r = api_.Watch(path_,
                               WatchOptions{.resource_version = ResourceVersion(),
                                            .allow_bookmarks = true,
                                            .timeout = options_.watch_timeout,
                                            .label_selector = options_.label_selector,
                                            .field_selector = options_.field_selector,
                                            .cancel = &cancel_},
                               [this](WatchEvent&& e) { OnEvent(std::move(e)); });
    const bool fresh = just_listed;
    just_listed = false;
    // A healthy watch delivered something (real servers send a bookmark about every minute).
    if (r.events > 0) backoff.Reset();
    switch (r.end) {
      case WatchEnd::kCancelled:
        return;
      case WatchEnd::kClosed:
        // Closed without a single event: watch again, but not in a tight loop should something
        // in between end every watch at once.
        if (r.events == 0 && !Sleep(backoff)) return;
        break;
      case WatchEnd::kGone: {
        {
          std::lock_guard lock(mu_);
          ++stats_.gone;
        }
        L().info("{} informer: {}; listing again", kind_.kind, r.status.message());
        need_list = true;
        // Gone straight after a list, with nothing in between: do not spin.
        if (fresh && r.events == 0 && !Sleep(backoff)) return;
        break;
      }
      case WatchEnd::kError:
      case WatchEnd::kBroken:
      case WatchEnd::kBadEvent:
        L().warn("{} informer: watch ended ({}): {}", kind_.kind, WatchEndName(r.end),
                 r.status.message());
        Failure(r.status);
        if (!Sleep(backoff)) return;
        break;
    }
  }
}

}  // namespace zm::kube
