#pragma once
// zmesh-agent's control loop (local mode). Threads (ARCHITECTURE.md):
//  - control thread: Run(); owns the enroller, the datapath and the ZDS connection;
//  - manifest watcher thread: posts every new manifest snapshot;
//  - ZDS accept thread: posts every new ztunnel connection;
//  - admin thread: serves /healthz/ready and /metrics from a published, immutable view.
// Only the control thread touches the maps and ztunnel, so there is nothing to lock there.

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <variant>

#include "agent/enroller.h"
#include "agent/zds_server.h"
#include "bpf/datapath.h"
#include "common/k8s/manifest_store.h"
#include "common/mesh/workload.h"

namespace zm::agent {

struct AgentOptions {
  std::string node;
  std::string manifests;
  std::string cgroup_root;
  std::string pin_dir;
  std::string zds_socket;
  std::string admin_addr;
  // The local-mode CA (DESIGN §5).
  std::string ca_cert;
  std::string ca_key;
  std::string ca_socket;
  std::string trust_domain = "cluster.local";
  std::string config_socket;  // the config stream to ztunnel
  // --default-policy: zero-trust makes mTLS STRICT by default and admits only same-namespace
  // traffic unless a policy allows more (DESIGN §7); carried to ztunnel with the mesh.
  mesh::DefaultPolicy default_policy = mesh::DefaultPolicy::kUpstream;
  // Only for the agent's warnings about how ztunnel reads the policies (ztunnel has its own
  // --root-namespace).
  std::string root_namespace = std::string(mesh::kDefaultRootNamespace);
};

// What the admin thread shows; rebuilt by the control thread after every change.
struct AgentView {
  bool ready = false;
  std::vector<std::string> pending_tasks;
  std::vector<PodStatus> pods;
  size_t manifest_errors = 0;
  uint64_t reconciles = 0;
  bool ztunnel_connected = false;
  pid_t ztunnel_pid = 0;  // of the ztunnel connected over ZDS, 0 when none
  // Pods this node enrolls from the current manifests (placed here, in the mesh, with a netns
  // and an IP): published before each reconcile, because ztunnel asks for a pod's certificate
  // as soon as it gets the pod's ZDS Add, before the agent has recorded the enrollment.
  std::vector<WorkloadRef> wanted;
};

// The local-mode CA's rule (DESIGN §5): only the ztunnel connected over ZDS may obtain
// certificates, and only for the identities of pods enrolled (or being enrolled: `wanted`) on
// this node.
// (The CA itself refuses identities of another trust domain.)
absl::Status AuthorizeCertificate(const AgentView& view, pid_t caller_pid,
                                  std::string_view identity_ns, std::string_view identity_sa);

class Agent {
 public:
  Agent(AgentOptions options, bpf::Datapath& datapath, ZdsServer& zds, PodNetns& netns);
  ~Agent();

  // Recovers pinned state against the manifests; then Run() until Stop().
  absl::Status Start(std::shared_ptr<const k8s::ManifestSnapshot> initial);
  void Run();
  void Stop();

  // Thread-safe posts from the watcher and accept threads.
  void PostManifests(std::shared_ptr<const k8s::ManifestSnapshot> snapshot);
  void PostZtunnel(Fd conn);

  std::shared_ptr<const AgentView> View() const;

  // Called on the control thread with every new mesh snapshot (the config stream publishes
  // it to ztunnel). Set before Start().
  void SetMeshListener(std::function<void(std::shared_ptr<const mesh::Snapshot>)> listener) {
    mesh_listener_ = std::move(listener);
  }
  // The mesh as of the last manifests (control thread, or before Run()).
  std::shared_ptr<const mesh::Snapshot> CurrentMesh() const { return mesh_; }

 private:
  using Event = std::variant<std::shared_ptr<const k8s::ManifestSnapshot>, Fd>;
  std::vector<EnrollTarget> Desired(const k8s::ManifestSnapshot& snapshot);
  void OnZtunnel(Fd conn);
  void Publish();

  AgentOptions options_;
  std::function<void(std::shared_ptr<const mesh::Snapshot>)> mesh_listener_;
  std::shared_ptr<const mesh::Snapshot> mesh_;
  bpf::Datapath& datapath_;
  ZdsServer& zds_;
  Enroller enroller_;
  std::vector<EnrollTarget> desired_;
  std::set<std::string> logged_errors_;
  std::set<std::string> logged_warnings_;
  uint64_t reconciles_ = 0;
  pid_t ztunnel_pid_ = 0;
  size_t manifest_errors_ = 0;
  bool recovered_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;  // guarded by mu_
  bool stop_ = false;         // guarded by mu_
  mutable std::mutex view_mu_;
  std::shared_ptr<const AgentView> view_;  // guarded by view_mu_
};

// The id of the cgroup v2 that process `pid` is in (as bpf_get_current_cgroup_id() sees it).
absl::StatusOr<uint64_t> CgroupIdOfPid(pid_t pid);
// Where cgroup v2 is mounted (from /proc/self/mountinfo).
absl::StatusOr<std::string> Cgroup2Mount();

}  // namespace zm::agent
