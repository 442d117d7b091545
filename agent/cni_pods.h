#pragma once
// What the container runtime told the agent about its pods through zmesh-cni (cluster mode): the
// network namespace and addresses of each pod sandbox on this node. The API server knows neither
// the netns, nor the IP until the kubelet writes status.podIP after the ADD returned, so the
// agent keeps them here and lays them over the objects before the one translation runs
// (WithCniPods): the pod then carries its netns (as the zmesh.io/netns annotation local mode
// uses) and its addresses, and enrollment decides exactly as for any other pod.
//
// Kept in a file under the agent's state directory, so pods enrolled through their CNI ADD are
// adopted again when the agent restarts instead of being un-enrolled for want of a netns.
// Control thread only.

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/k8s/manifest_store.h"

namespace zm::agent {

struct CniPod {
  std::string ns;
  std::string name;
  std::string uid;  // empty when the runtime did not pass K8S_POD_UID
  std::string container_id;
  std::string netns;
  std::vector<std::string> ips;
  std::chrono::steady_clock::time_point recorded{};  // not persisted: a load counts as now

  std::string key() const { return ns + "/" + name; }
  bool operator==(const CniPod& o) const {
    return ns == o.ns && name == o.name && uid == o.uid && container_id == o.container_id &&
           netns == o.netns && ips == o.ips;
  }
};

class CniPodStore {
 public:
  // `path` empty: kept in memory only.
  explicit CniPodStore(std::string path) : path_(std::move(path)) {}

  // Reads the file; a missing file is an empty store. Errors name the file and the entry.
  absl::Status Load(std::chrono::steady_clock::time_point now);
  // Records a pod's sandbox (replacing an earlier one of the same pod) and saves.
  absl::Status Put(CniPod pod);
  // Forgets the pod's sandbox `container_id` (empty: whichever) and saves; false when it held
  // another sandbox or nothing.
  absl::StatusOr<bool> Remove(const std::string& key, const std::string& container_id);
  // Forgets pods the objects no longer have (or have with another uid), once they were recorded
  // at least `grace` ago (a brand-new pod may not have reached the informer yet), except `keep`.
  // Saves when something went; returns the keys removed.
  absl::StatusOr<std::vector<std::string>> Gc(const k8s::ManifestSnapshot& objects,
                                              const std::set<std::string>& keep,
                                              std::chrono::steady_clock::time_point now,
                                              std::chrono::seconds grace);

  const std::map<std::string, CniPod>& pods() const { return pods_; }  // by namespace/name

 private:
  absl::Status Save() const;

  std::string path_;
  std::map<std::string, CniPod> pods_;
};

// `objects` with every recorded sandbox laid over its pod (same namespace/name, and the same uid
// when one was recorded): the zmesh.io/netns annotation set to the sandbox's netns, and the
// addresses of the CNI result as the pod's IPs. Pods without a record are unchanged.
k8s::ManifestSnapshot WithCniPods(const k8s::ManifestSnapshot& objects,
                                  const std::map<std::string, CniPod>& pods);

}  // namespace zm::agent
