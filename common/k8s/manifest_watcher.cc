#include "common/k8s/manifest_watcher.h"

#include "common/base/log.h"
#include "common/base/status.h"
#include "common/base/strings.h"

namespace zm::k8s {

absl::StatusOr<std::unique_ptr<ManifestWatcher>> ManifestWatcher::Start(std::string dir,
                                                                        Callback callback,
                                                                        Options options) {
  // The watch comes before the first read, so no change between the two is missed.
  ZM_ASSIGN_OR_RETURN(std::unique_ptr<DirWatcher> watcher,
                      DirWatcher::Watch(dir, "manifest directory", options));
  std::unique_ptr<ManifestWatcher> w(new ManifestWatcher(std::move(dir), std::move(callback)));
  ZM_RETURN_IF_ERROR(w->store_.Reload());
  w->current_ = std::make_shared<const ManifestSnapshot>(w->store_.Snapshot());
  w->reloads_ = 1;
  // The first call, on the caller's thread: the owner has the initial content when Start()
  // returns. Later calls come from the watcher thread, which does not run yet.
  w->callback_(w->current_);
  w->watcher_ = std::move(watcher);
  w->watcher_->Start([raw = w.get()] { raw->ReloadAndNotify(); });
  return w;
}

ManifestWatcher::ManifestWatcher(std::string dir, Callback callback)
    : dir_(std::move(dir)), callback_(std::move(callback)), store_(dir_) {}

ManifestWatcher::~ManifestWatcher() = default;

std::shared_ptr<const ManifestSnapshot> ManifestWatcher::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

uint64_t ManifestWatcher::reloads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reloads_;
}

void ManifestWatcher::ReloadAndNotify() {
  if (absl::Status s = store_.Reload(); !s.ok()) {
    Log("k8s").error("manifest directory {}: {} (keeping the previous content)", dir_,
                     std::string(s.message()));
    return;
  }
  auto snap = std::make_shared<const ManifestSnapshot>(store_.Snapshot());
  Log("k8s").info("manifest directory {}: {} namespaces, {} pods, {} errors", dir_,
                  snap->namespaces.size(), snap->pods.size(), snap->errors.size());
  for (const std::string& e : snap->errors) Log("k8s").warn("{}", e);
  {
    std::lock_guard<std::mutex> lock(mu_);
    current_ = snap;
    ++reloads_;
  }
  callback_(std::move(snap));
}

}  // namespace zm::k8s
