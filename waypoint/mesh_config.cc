#include "waypoint/mesh_config.h"

#include <algorithm>
#include <filesystem>

#include "common/base/log.h"
#include "common/base/strings.h"

namespace zm::waypoint {

MeshConfig::MeshConfig(std::string root_namespace, mesh::WaypointRef self,
                       mesh::JwksProvider jwks, const Clock& clock)
    : root_namespace_(std::move(root_namespace)),
      self_(std::move(self)),
      jwks_(std::move(jwks)),
      clock_(clock) {}

void MeshConfig::Update(std::shared_ptr<const mesh::Snapshot> snapshot) {
  std::lock_guard update(update_mu_);
  auto view = std::make_shared<View>();
  view->policies = mesh::L7Policies::Build(*snapshot, root_namespace_, self_, jwks_, clock_);
  view->snapshot = std::move(snapshot);
  std::vector<std::string> warnings = view->policies->warnings();
  if (warnings != last_warnings_) {
    for (const std::string& w : warnings) Log("config").warn("{}", w);
    last_warnings_ = std::move(warnings);
  }
  std::lock_guard lock(mu_);
  view->generation = view_ ? view_->generation + 1 : 1;
  Log("config").info(
      "mesh version {}: {} workloads, {} services, {} authorization policies ({} rejected), {} "
      "request authentications ({} rejected)",
      view->generation, view->snapshot->workloads.size(), view->snapshot->services.size(),
      view->snapshot->authorization_policies.size(),
      view->snapshot->rejected_authorization_policies.size(),
      view->snapshot->request_authentications.size(),
      view->snapshot->rejected_request_authentications.size());
  view_ = std::move(view);
}

std::shared_ptr<const MeshConfig::View> MeshConfig::Current() const {
  std::lock_guard lock(mu_);
  return view_;
}

ManifestPoller::ManifestPoller(std::string dir, std::chrono::milliseconds period,
                               OnChange on_change)
    : store_(std::move(dir)), period_(period), on_change_(std::move(on_change)) {}

ManifestPoller::~ManifestPoller() { Stop(); }

std::string ManifestPoller::Fingerprint() const {
  std::vector<std::string> entries;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(store_.dir(), ec)) {
    std::error_code fec;
    auto size = e.file_size(fec);
    auto mtime = e.last_write_time(fec).time_since_epoch().count();
    entries.push_back(StrCat(e.path().filename().string(), ":", fec ? 0 : size, ":", mtime));
  }
  std::sort(entries.begin(), entries.end());
  std::string out = ec ? StrCat("error:", ec.message()) : "";
  for (const std::string& e : entries) out += e + "\n";
  return out;
}

void ManifestPoller::Poll() {
  std::string fp = Fingerprint();
  if (fp == last_fingerprint_) return;
  if (absl::Status st = store_.Reload(); !st.ok()) {
    Log("config").error("manifests {}: {}; keeping the previous configuration", store_.dir(),
                        st.message());
    return;
  }
  last_fingerprint_ = std::move(fp);
  mesh::Snapshot snap = mesh::BuildSnapshot(store_.Snapshot());
  for (const std::string& e : snap.errors) Log("config").error("manifests: {}", e);
  on_change_(std::make_shared<const mesh::Snapshot>(std::move(snap)));
}

absl::Status ManifestPoller::Start() {
  if (absl::Status st = store_.Reload(); !st.ok()) return st;
  Poll();
  if (last_fingerprint_.empty()) {
    // An empty directory is a valid (empty) mesh.
    on_change_(std::make_shared<const mesh::Snapshot>(mesh::BuildSnapshot(store_.Snapshot())));
  }
  thread_ = std::thread([this] {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, period_, [this] { return stop_; })) {
      lock.unlock();
      Poll();
      lock.lock();
    }
  });
  return absl::OkStatus();
}

void ManifestPoller::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace zm::waypoint
