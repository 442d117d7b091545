#pragma once
// Cluster mode's parts around the Agent (DESIGN §2, §3): the API client and its informers (the
// object source), the zmesh.io/status writer, the CNI socket zmesh-cni asks, and the plugin's
// installation into the node's CNI directories (kept in place while the configuration directory
// changes; removed only by `zmesh-agent uninstall`).
//
// main() connects it and waits for every informer to sync before it even takes the node lease
// (a surge upgrade: the old agent stands down only once the new one can act at once), hands the
// Agent the objects with Follow(), attaches it after Agent::Start() and stops it after
// Agent::Run() returns. The Agent must outlive it.

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "agent/agent.h"
#include "agent/cni_install.h"
#include "agent/cni_server.h"
#include "agent/pod_status.h"
#include "common/k8s/dir_watcher.h"
#include "common/kube/client.h"
#include "common/kube/config.h"
#include "common/kube/kube_source.h"

namespace zm::agent {

struct ClusterOptions {
  kube::Config kube;
  std::string cni_socket;  // where zmesh-cni asks the agent (0600)
  CniInstallOptions cni;   // its agent_socket is cni_socket
};

class ClusterMode {
 public:
  // Creates the API client and starts the informers. Their snapshots go nowhere until Follow().
  static absl::StatusOr<std::unique_ptr<ClusterMode>> Connect(ClusterOptions options);
  ~ClusterMode();  // Stop()
  ClusterMode(const ClusterMode&) = delete;
  ClusterMode& operator=(const ClusterMode&) = delete;

  // Blocks until every informer has synced (true), logging which kinds are still missing every
  // 10 s; false as soon as `stopping()` says so.
  bool WaitForSync(const std::function<bool()>& stopping);
  // The objects now; every later snapshot goes to `sink` (none is lost in between) until Stop().
  std::shared_ptr<const k8s::ManifestSnapshot> Follow(k8s::ObjectSource::Callback sink);

  // After Agent::Start(), before Agent::Run(): status writer, CNI plugin installation (readiness
  // task "cni-installed" until it is chained) and the CNI socket.
  absl::Status Attach(Agent& agent);
  // Closes the CNI socket, stops the configuration watcher, the status writer and the
  // informers. Idempotent.
  void Stop();

 private:
  explicit ClusterMode(ClusterOptions options) : options_(std::move(options)) {}
  void Install(Agent& agent);

  void Deliver(std::shared_ptr<const k8s::ManifestSnapshot> snapshot);

  ClusterOptions options_;
  std::mutex sink_mu_;  // guards sink_; held while a snapshot is delivered
  k8s::ObjectSource::Callback sink_;
  std::unique_ptr<kube::KubeClient> client_;
  std::unique_ptr<kube::KubeSource> source_;
  std::unique_ptr<StatusWriter> status_;
  std::unique_ptr<CniServer> cni_server_;
  std::thread cni_thread_;
  std::unique_ptr<k8s::DirWatcher> conf_watcher_;
};

}  // namespace zm::agent
