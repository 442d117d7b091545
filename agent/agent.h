#pragma once
// zmesh-agent's control loop, the same in local and cluster mode. Threads (ARCHITECTURE.md):
//  - control thread: Run(); owns the enroller, the datapath and the ZDS connection;
//  - object source thread (manifest watcher or API informers): posts every new snapshot;
//  - ZDS accept thread: posts every new ztunnel connection;
//  - CNI accept thread (cluster mode): posts every zmesh-cni request with its reply function;
//  - admin thread: serves /healthz/ready and /metrics from a published, immutable view.
// Only the control thread touches the maps and ztunnel, so there is nothing to lock there.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <variant>

#include "agent/cni_pods.h"
#include "agent/enroller.h"
#include "agent/enrollment.h"
#include "agent/pod_status.h"
#include "agent/zds_server.h"
#include "bpf/datapath.h"
#include "common/cni/protocol.h"
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
  std::string node_run_dir;  // the node lease (agent/node_lease.h)
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
  // Cluster mode: where the netns and addresses zmesh-cni reported are kept across restarts
  // (empty: memory only). See cni_pods.h.
  std::string cni_state_file;
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
  size_t cni_waiting = 0;  // zmesh-cni ADDs waiting for their pod's enrollment
  // Waypoint pods of this node (label gateway.networking.k8s.io/gateway-name) and the inode of
  // their network namespace: a process in that netns may obtain that pod's identity.
  struct WaypointPod {
    std::string pod;  // "ns/name"
    std::string ns;
    std::string service_account;
    uint64_t netns_inode = 0;
  };
  std::vector<WaypointPod> waypoint_pods;
};

// The local-mode CA's rule (DESIGN §5): only the ztunnel connected over ZDS may obtain
// certificates, and only for the identities of pods enrolled (or being enrolled: `wanted`) on
// this node.
// (The CA itself refuses identities of another trust domain.)
absl::Status AuthorizeCertificate(const AgentView& view, pid_t caller_pid,
                                  std::string_view identity_ns, std::string_view identity_sa);
// The same, and a waypoint (DESIGN §6): a process that is not the ztunnel but lives in the
// network namespace (`caller_netns_inode`, from /proc/<pid>/ns/net) of a waypoint pod of this
// node obtains that pod's own identity, and nothing else.
absl::Status AuthorizeCertificate(const AgentView& view, pid_t caller_pid,
                                  std::optional<uint64_t> caller_netns_inode,
                                  std::string_view identity_ns, std::string_view identity_sa);

class Agent {
 public:
  Agent(AgentOptions options, bpf::Datapath& datapath, ZdsServer& zds, PodNetns& netns);
  ~Agent();

  // Recovers pinned state against the manifests; then Run() until Stop().
  absl::Status Start(std::shared_ptr<const k8s::ManifestSnapshot> initial);
  void Run();
  void Stop();

  // Thread-safe posts from the object source and accept threads.
  void PostManifests(std::shared_ptr<const k8s::ManifestSnapshot> snapshot);
  void PostZtunnel(Fd conn);
  // A zmesh-cni request (cluster mode). `reply` is called once, on the control thread: an ADD
  // when its pod is enrolled, definitively not to be enrolled, refused, or its deadline passed
  // (timeout_ms); a DEL once the pod's sandbox is forgotten and the pod un-enrolled; a CHECK at
  // once.
  using CniReply = std::function<void(const cni::PodReply& reply)>;
  void PostCni(cni::PodRequest request, CniReply reply);

  // Readiness gates owned by other threads ("cni-installed"): pending until set false.
  // Thread-safe.
  void SetTaskPending(const std::string& task, bool pending);

  // Called on the control thread with every changed set of zmesh.io/status values for this
  // node's pods (cluster mode: the StatusWriter). Set before Start().
  void SetStatusListener(std::function<void(std::vector<StatusTarget>)> listener) {
    status_listener_ = std::move(listener);
  }

  std::shared_ptr<const AgentView> View() const;

  // Called on the control thread with every new mesh snapshot (the config stream publishes
  // it to ztunnel). Set before Start().
  void SetMeshListener(std::function<void(std::shared_ptr<const mesh::Snapshot>)> listener) {
    mesh_listener_ = std::move(listener);
  }
  // The mesh as of the last manifests (control thread, or before Run()).
  std::shared_ptr<const mesh::Snapshot> CurrentMesh() const { return mesh_; }

 private:
  struct CniCall {
    cni::PodRequest request;
    CniReply reply;
  };
  struct PendingAdd {
    CniCall call;
    std::chrono::steady_clock::time_point deadline;
    std::string why;  // what it waits for, for the answer at the deadline
  };
  using Event = std::variant<std::shared_ptr<const k8s::ManifestSnapshot>, Fd, CniCall>;
  std::vector<EnrollTarget> Desired(const k8s::ManifestSnapshot& snapshot);
  // The objects with the CNI-reported sandboxes laid over them, through Desired().
  void Recompute();
  void OnZtunnel(Fd conn);
  // Records an ADD/DEL, queues a CHECK; the answers come after the next reconcile.
  void OnCni(CniCall call);
  // Answers every CNI request that can be answered now.
  void AnswerCni();
  // The answer to an ADD or CHECK as things stand; nullopt while it must wait (`why` says for
  // what).
  std::optional<cni::PodReply> CniAnswer(const cni::PodRequest& request,
                                         const std::map<std::string, PodStatus>& pending,
                                         std::string& why) const;
  std::chrono::milliseconds NextWakeup() const;
  // Clears zm_config's previous ztunnel once that process has exited.
  void ForgetExitedPredecessor();
  void PostStatuses();
  void Publish();

  AgentOptions options_;
  std::function<void(std::shared_ptr<const mesh::Snapshot>)> mesh_listener_;
  std::shared_ptr<const mesh::Snapshot> mesh_;
  std::function<void(std::vector<StatusTarget>)> status_listener_;
  std::vector<StatusTarget> posted_statuses_;
  std::shared_ptr<const k8s::ManifestSnapshot> objects_;  // the source's latest
  CniPodStore cni_pods_;
  std::map<std::string, PendingAdd> cni_adds_;  // by namespace/name
  std::vector<CniCall> cni_answer_now_;         // DELs and CHECKs of this round
  std::vector<EnrollmentDecision> decisions_;   // this node's pods, as of the last Desired()
  std::map<std::string, size_t> decision_by_key_;
  bpf::Datapath& datapath_;
  ZdsServer& zds_;
  PodNetns& netns_;
  std::vector<AgentView::WaypointPod> waypoint_pods_;  // from the last Desired()
  Enroller enroller_;
  std::vector<EnrollTarget> desired_;
  std::set<std::string> logged_errors_;
  std::set<std::string> logged_warnings_;
  uint64_t reconciles_ = 0;
  pid_t ztunnel_pid_ = 0;
  // The ztunnel this one replaced while it still runs (draining, a surge upgrade): 0 when none.
  pid_t predecessor_pid_ = 0;
  size_t manifest_errors_ = 0;
  bool recovered_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;  // guarded by mu_
  bool stop_ = false;         // guarded by mu_
  mutable std::mutex view_mu_;
  std::shared_ptr<const AgentView> view_;  // guarded by view_mu_
  std::set<std::string> external_tasks_;   // guarded by view_mu_
};

// Whether process `pid` exists and has not exited (a zombie has).
bool ProcessRunning(pid_t pid);
// The id of the cgroup v2 that process `pid` is in (as bpf_get_current_cgroup_id() sees it).
absl::StatusOr<uint64_t> CgroupIdOfPid(pid_t pid);
// Where cgroup v2 is mounted (from /proc/self/mountinfo).
absl::StatusOr<std::string> Cgroup2Mount();

}  // namespace zm::agent
