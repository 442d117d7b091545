#include "agent/cni_pods.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/base/file.h"
#include "common/base/ip.h"
#include "common/base/status.h"
#include "common/base/strings.h"
#include "common/k8s/manifest.h"
#include "common/mesh/workload.h"

namespace zm::agent {
namespace {

using nlohmann::json;

// The recorded sandbox belongs to this pod object.
bool Matches(const CniPod& c, const k8s::Pod& p) { return c.uid.empty() || c.uid == p.uid; }

}  // namespace

absl::Status CniPodStore::Load(std::chrono::steady_clock::time_point now) {
  pods_.clear();
  if (path_.empty()) return absl::OkStatus();
  auto text = k8s::ReadManifestBytes(path_);
  if (!text.ok()) return absl::IsNotFound(text.status()) ? absl::OkStatus() : text.status();
  json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  auto list = j.is_object() ? j.find("pods") : j.end();
  if (list == j.end() || !list->is_array()) {
    return absl::DataLossError(StrCat(path_, ": not a {\"pods\": [...]} object"));
  }
  for (size_t i = 0; i < list->size(); ++i) {
    const json& e = (*list)[i];
    auto str = [&](const char* key) {
      auto it = e.is_object() ? e.find(key) : e.end();
      return it != e.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    CniPod p{.ns = str("namespace"),
             .name = str("name"),
             .uid = str("uid"),
             .container_id = str("container_id"),
             .netns = str("netns"),
             .recorded = now};
    if (auto ips = e.is_object() ? e.find("ips") : e.end(); ips != e.end() && ips->is_array()) {
      for (const json& ip : *ips) {
        if (ip.is_string()) p.ips.push_back(ip.get<std::string>());
      }
    }
    if (p.ns.empty() || p.name.empty() || p.netns.empty()) {
      return absl::DataLossError(
          StrCat(path_, ": pods[", i, "]: namespace, name and netns are required"));
    }
    pods_[p.key()] = std::move(p);
  }
  return absl::OkStatus();
}

absl::Status CniPodStore::Save() const {
  if (path_.empty()) return absl::OkStatus();
  // The state directory may not exist yet (the CA creates it only when it makes the root).
  std::error_code ec;
  if (auto dir = std::filesystem::path(path_).parent_path(); !dir.empty()) {
    std::filesystem::create_directories(dir, ec);
    if (ec) return absl::InternalError(StrCat("mkdir ", dir.string(), ": ", ec.message()));
  }
  json list = json::array();
  for (const auto& [key, p] : pods_) {
    list.push_back({{"namespace", p.ns},
                    {"name", p.name},
                    {"uid", p.uid},
                    {"container_id", p.container_id},
                    {"netns", p.netns},
                    {"ips", p.ips}});
  }
  return WriteFileAtomically(path_, json({{"pods", list}}).dump(1) + "\n", 0600);
}

absl::Status CniPodStore::Put(CniPod pod) {
  auto it = pods_.find(pod.key());
  if (it != pods_.end() && it->second == pod) return absl::OkStatus();
  const std::string key = pod.key();
  pods_[key] = std::move(pod);
  return Save();
}

absl::StatusOr<bool> CniPodStore::Remove(const std::string& key, const std::string& container_id) {
  auto it = pods_.find(key);
  if (it == pods_.end()) return false;
  if (!container_id.empty() && it->second.container_id != container_id) return false;
  pods_.erase(it);
  ZM_RETURN_IF_ERROR(Save());
  return true;
}

absl::StatusOr<std::vector<std::string>> CniPodStore::Gc(const k8s::ManifestSnapshot& objects,
                                                         const std::set<std::string>& keep,
                                                         std::chrono::steady_clock::time_point now,
                                                         std::chrono::seconds grace) {
  std::vector<std::string> gone;
  for (auto it = pods_.begin(); it != pods_.end();) {
    const CniPod& c = it->second;
    const k8s::Pod* pod = objects.FindPod(c.ns, c.name);
    if ((pod != nullptr && Matches(c, *pod)) || keep.contains(it->first) ||
        now - c.recorded < grace) {
      ++it;
      continue;
    }
    gone.push_back(it->first);
    it = pods_.erase(it);
  }
  if (!gone.empty()) ZM_RETURN_IF_ERROR(Save());
  return gone;
}

k8s::ManifestSnapshot WithCniPods(const k8s::ManifestSnapshot& objects,
                                  const std::map<std::string, CniPod>& pods) {
  k8s::ManifestSnapshot out = objects;
  if (pods.empty()) return out;
  for (k8s::Pod& p : out.pods) {
    auto it = pods.find(p.key());
    if (it == pods.end() || !Matches(it->second, p)) continue;
    const CniPod& c = it->second;
    p.annotations[std::string(mesh::kNetnsAnnotation)] = c.netns;
    if (!c.ips.empty()) p.pod_ips = c.ips;
  }
  return out;
}

}  // namespace zm::agent
