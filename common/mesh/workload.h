#pragma once
// The mesh model (DESIGN §2): what the agent, ztunnel and the CLI reason about, built from
// Kubernetes objects by one translation layer, for local mode (manifests) and cluster mode
// (the API watcher) alike.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/ip.h"
#include "common/k8s/manifest.h"
#include "common/k8s/manifest_store.h"
#include "common/mesh/peer_authentication.h"
#include "common/mesh/service.h"

namespace zm::mesh {

// Annotations a pod may carry.
inline constexpr std::string_view kNetnsAnnotation = "zmesh.io/netns";
inline constexpr std::string_view kExcludeOutboundPortsAnnotation =
    "zmesh.io/exclude-outbound-ports";
inline constexpr std::string_view kExcludeInboundPortsAnnotation = "zmesh.io/exclude-inbound-ports";

inline constexpr std::string_view kTrustDomain = "cluster.local";

// Enrollment labels (DESIGN §3): a namespace labelled zmesh.io/dataplane-mode=ambient is in the
// mesh; a pod labelled zmesh.io/dataplane-mode=none opts out.
inline constexpr std::string_view kDataplaneModeLabel = "zmesh.io/dataplane-mode";
inline constexpr std::string_view kDataplaneModeAmbient = "ambient";  // on a namespace
inline constexpr std::string_view kDataplaneModeNone = "none";        // on a pod: opt out

// Waypoints (DESIGN §6): a namespace or pod labelled zmesh.io/use-waypoint=<name> has its
// inbound requests go through the waypoint Service <name> of its namespace ("none" on a pod
// opts it out of its namespace's waypoint). A waypoint's own pods carry Istio's label
// gateway.networking.k8s.io/gateway-name and never use a waypoint themselves.
inline constexpr std::string_view kUseWaypointLabel = "zmesh.io/use-waypoint";
inline constexpr std::string_view kGatewayNameLabel = "gateway.networking.k8s.io/gateway-name";

// How a workload is reached (istio.workload.TunnelProtocol): kHbone when it is in the mesh
// (its ztunnel serves 15008 in its netns), kNone for plain TCP.
enum class TunnelProtocol { kNone, kHbone };

// A port a workload's containers declare (spec.containers[].ports[]).
struct WorkloadPort {
  std::string name;  // empty when unnamed
  uint16_t port = 0;
  std::string protocol = "TCP";
  auto operator<=>(const WorkloadPort&) const = default;
};

struct Workload {
  std::string uid;
  std::string name;
  std::string ns;
  std::string service_account;
  std::string node;
  std::string phase;  // the pod's status.phase, "" when unknown
  std::vector<IpAddr> ips;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::string netns;  // zmesh.io/netns: a path or an `ip netns` name; empty when absent
  std::vector<uint16_t> exclude_outbound_ports;  // sorted, unique
  std::vector<uint16_t> exclude_inbound_ports;   // sorted, unique
  std::vector<WorkloadPort> ports;               // declared container ports, in manifest order
  // Set by BuildSnapshot from the namespace and pod labels (InMesh); WorkloadFromPod leaves kNone.
  TunnelProtocol tunnel_protocol = TunnelProtocol::kNone;
  // "ns/name" of the waypoint Service its inbound traffic goes through; empty when none. Set by
  // BuildSnapshot from the pod's and namespace's zmesh.io/use-waypoint labels.
  std::string waypoint;

  // "spiffe://cluster.local/ns/<ns>/sa/<sa>"
  std::string identity() const;
  // "ns/name"
  std::string key() const { return ns + "/" + name; }
  // Succeeded or Failed: its containers are gone for good.
  bool terminal() const { return phase == "Succeeded" || phase == "Failed"; }
};

// The translation from a Pod. Errors name the pod and the field:
// `pod demo/client: annotation zmesh.io/exclude-inbound-ports: "80,x": "x" is not a port
// (1-65535)`.
absl::StatusOr<Workload> WorkloadFromPod(const k8s::Pod& pod);

// "80, 443,8080" -> {80, 443, 8080}; empty -> {}. Errors say which element is wrong.
absl::StatusOr<std::vector<uint16_t>> ParsePortList(std::string_view text);

struct Namespace {
  std::string name;
  std::map<std::string, std::string> labels;
};

// A pod that could not be translated: kept so enrollment can say why it is not enrolled.
struct RejectedPod {
  std::string uid;
  std::string name;
  std::string ns;
  std::string node;
  std::map<std::string, std::string> labels;
  std::string error;
};

// One immutable view of the mesh; readers share std::shared_ptr<const Snapshot>.
struct Snapshot {
  std::vector<Namespace> namespaces;  // sorted by name
  std::vector<Workload> workloads;    // sorted by ns/name
  std::vector<RejectedPod> rejected;  // sorted by ns/name
  std::vector<Service> services;      // sorted by ns/name
  // Sorted by ns, then oldest first (OlderPeerAuthentication). The root namespace is not part of
  // the snapshot: EffectiveMtlsMode takes it (--root-namespace).
  std::vector<PeerAuthentication> peer_authentications;
  // Policies that failed validation; their scope is STRICT (peer_authentication.h). Sorted by
  // ns/name.
  std::vector<RejectedPeerAuthentication> rejected_peer_authentications;
  // Istio AuthorizationPolicies as written (sorted by ns/name); the engine (common/authz)
  // compiles them per enforcement layer. Rejected ones fail closed (authz/policy.h).
  std::vector<authz::AuthorizationPolicy> authorization_policies;
  std::vector<authz::RejectedAuthorizationPolicy> rejected_authorization_policies;
  // RequestAuthentications as written (the waypoint's; not carried to ztunnel).
  std::vector<jwt::RequestAuthentication> request_authentications;
  std::vector<jwt::RejectedRequestAuthentication> rejected_request_authentications;
  // The agent's --default-policy (BuildSnapshot leaves kUpstream): the PeerAuthentication
  // default and the zero-trust implicit ALLOW, carried to ztunnel with the snapshot.
  DefaultPolicy default_policy = DefaultPolicy::kUpstream;
  std::vector<std::string> errors;  // source errors, then one per rejected pod
  // Legal but probably unintended: several namespace-wide PeerAuthentications in a namespace or
  // several selecting one workload (only the oldest counts), an address used twice.
  std::vector<std::string> warnings;

  const Namespace* FindNamespace(std::string_view name) const;
  const Workload* FindWorkload(std::string_view ns, std::string_view name) const;
  const Service* FindService(std::string_view ns, std::string_view name) const;
  // The running (non-terminal) workload with this IP; nullptr when none, or when several claim
  // it (ambiguous: a warning says so; identity must never be guessed from an address).
  const Workload* FindWorkloadByIp(const IpAddr& ip) const;
  // The Service with this VIP; nullptr when none or several (a warning says so).
  const Service* FindServiceByVip(const IpAddr& vip) const;
};

// Whether a pod with `pod_labels` in namespace `ns` is in the mesh: the namespace is labelled
// ambient and the pod did not opt out. (Placement, phase, netns and IP are enrollment's business.)
bool InMesh(const Snapshot& snapshot, std::string_view ns,
            const std::map<std::string, std::string>& pod_labels);

// "ns/name" of the waypoint Service a pod with `pod_labels` in namespace `ns` uses, or "".
std::string WaypointOf(const Snapshot& snapshot, std::string_view ns,
                       const std::map<std::string, std::string>& pod_labels);

// Where a destination's waypoint listens: one running endpoint of its waypoint Service with its
// address (<ip>:15008 is the HBONE port) and the identity it must prove. nullopt when the
// destination has no waypoint; an error when it has one that cannot be reached (no such Service,
// no running endpoint) — the caller must then refuse, never bypass the waypoint.
struct WaypointTarget {
  std::string service;  // "ns/name"
  const Workload* workload = nullptr;
  IpAddr ip;
};
absl::StatusOr<std::optional<WaypointTarget>> ResolveWaypoint(
    const Snapshot& snapshot, const Workload& destination,
    const std::function<size_t(size_t)>& pick);

// Translates a manifest snapshot (and, later, the cluster watcher's state): workloads, Services
// with their endpoints, PeerAuthentications (valid and rejected).
Snapshot BuildSnapshot(const k8s::ManifestSnapshot& objects);

// Whether `labels` ⊇ `selector` (exact key and value equality); an empty selector selects all.
bool SelectorMatches(const std::map<std::string, std::string>& selector,
                     const std::map<std::string, std::string>& labels);

}  // namespace zm::mesh
