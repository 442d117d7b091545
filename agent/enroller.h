#pragma once
// The enroller keeps the capture layer and ztunnel in step with the pods that should be
// enrolled on this node, in the order DESIGN-ebpf "Enroll" makes a contract:
//   netns fd -> cookie -> ztunnel Add (ack + listener) -> zm_listeners -> in-pod routing ->
//   zm_pod_ip, zm_pod_name, zm_ports_excl -> zm_netns (outbound on) -> sk_lookup (inbound on)
// and the reverse to un-enroll, so no connection is ever redirected to a port nobody
// listens on. Un-enrolling leaves the in-pod delivery routing in place: connections
// ztunnel delivered before still need it for their replies, and it matches only packets
// carrying ztunnel's delivery mark (`zmesh-agent uninstall --manifests` removes it).
// It runs on the agent's control thread only.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/ztunnel_link.h"
#include "bpf/datapath.h"
#include "common/base/fd.h"
#include "common/base/ip.h"

namespace zm::agent {

// What the enroller needs to know of a pod (built from the mesh model by the agent).
struct EnrollTarget {
  WorkloadRef ref;
  std::string netns;  // path or `ip netns` name
  std::vector<IpAddr> ips;
  std::vector<uint16_t> exclude_outbound_ports;
  std::vector<uint16_t> exclude_inbound_ports;
  bool operator==(const EnrollTarget& o) const;
};

// Seam over the pod's network namespace: opening it and writing its delivery routing.
class PodNetns {
 public:
  virtual ~PodNetns() = default;
  virtual absl::StatusOr<Fd> Open(const std::string& netns) = 0;
  virtual absl::StatusOr<uint64_t> Cookie(int netns_fd) = 0;
  virtual absl::Status InstallRouting(int netns_fd) = 0;
};

// One pod's enrollment as the agent sees it, for logs, readiness and the CLI.
struct PodStatus {
  std::string uid;
  std::string pod;  // namespace/name
  std::string ns;
  std::string service_account;
  bool enrolled = false;
  std::string error;     // why it is pending, if it is
  bool waiting = false;  // pending only because no ztunnel is connected yet (not an error)
};

class Enroller {
 public:
  Enroller(bpf::Datapath& datapath, ZtunnelLink& ztunnel, PodNetns& netns)
      : datapath_(datapath), ztunnel_(ztunnel), netns_(netns) {}

  // After a (re)start: takes over the pods the pinned maps already capture and that are
  // still wanted, un-enrolls the rest and garbage-collects orphaned entries. Traffic of
  // adopted pods is never interrupted.
  absl::Status Recover(const std::vector<EnrollTarget>& desired);

  // Brings the node to `desired`: un-enrolls what is gone or changed, enrolls what is new.
  // A pod that cannot be enrolled now (no ztunnel, an error) stays pending and is retried
  // by the next call.
  void Reconcile(const std::vector<EnrollTarget>& desired);

  // A ztunnel (re)connected: re-sends every enrolled pod (refreshing the listeners in
  // zm_listeners), then SnapshotSent, then enrolls the pending pods.
  void OnZtunnelConnected();

  // Un-enrolls everything (uninstall path).
  void UnenrollAll();

  std::vector<PodStatus> Status() const;
  // The target a pod is enrolled with; nullptr when it is not enrolled.
  const EnrollTarget* EnrolledTarget(const std::string& uid) const;
  size_t enrolled_count() const { return enrolled_.size(); }
  bool has_pending() const { return !pending_.empty(); }
  bool snapshot_sent() const { return snapshot_sent_; }
  void OnZtunnelDisconnected() { snapshot_sent_ = false; }

 private:
  struct Enrolled {
    EnrollTarget target;
    Fd netns;  // invalid when the netns is already gone
    uint64_t cookie = 0;
    uint32_t pod_index = 0;
  };

  absl::Status Enroll(const EnrollTarget& target);
  absl::Status SendToZtunnel(Enrolled& pod);
  void Unenroll(Enrolled& pod);
  uint32_t AllocateIndex();

  bpf::Datapath& datapath_;
  ZtunnelLink& ztunnel_;
  PodNetns& netns_;
  std::map<std::string, Enrolled> enrolled_;     // by uid
  std::map<std::string, PodStatus> pending_;     // by uid
  std::vector<EnrollTarget> desired_;
  std::set<uint32_t> used_indexes_;
  bool snapshot_sent_ = false;
};

}  // namespace zm::agent
