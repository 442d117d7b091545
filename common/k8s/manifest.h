#pragma once
// Kubernetes objects read from ordinary YAML manifests (local mode, DESIGN §2), as plain
// structs. Only the fields the mesh needs are kept; the same structs are filled by the
// cluster-mode watcher later, so everything downstream (common/mesh) sees one shape.
//
// Parsing is per object: one bad object is an error naming the file, the document, the
// object and the field, and the good objects of the same file are kept. Only a file that
// cannot be read or is not YAML at all fails as a whole.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/authz/policy.h"
#include "common/jwt/policy.h"

namespace zm::k8s {

using StringMap = std::map<std::string, std::string>;

struct Namespace {
  std::string name;
  StringMap labels;
  StringMap annotations;
  std::string source;  // "ns.yaml:doc1" (list items: "ns.yaml:doc1/items[0]")

  bool operator==(const Namespace&) const = default;
};

// spec.containers[].ports[] of a Pod: what a Service's named targetPort resolves against.
struct ContainerPort {
  std::string name;              // IANA service name, empty when unnamed
  uint16_t port = 0;             // containerPort, 1-65535
  std::string protocol = "TCP";  // TCP, UDP or SCTP

  bool operator==(const ContainerPort&) const = default;
};

struct Pod {
  std::string uid;  // metadata.uid, or derived from namespace/name (DerivedUid)
  std::string name;
  std::string namespace_name;  // metadata.namespace, "default" when absent
  StringMap labels;
  StringMap annotations;
  std::string service_account = "default";  // spec.serviceAccountName
  std::string node_name;                    // spec.nodeName, empty when unscheduled
  std::string phase;  // status.phase: "", Pending, Running, Succeeded, Failed, Unknown
  std::vector<std::string>
      pod_ips;  // status.podIP then status.podIPs[].ip, validated, deduplicated
  std::string source;
  std::vector<ContainerPort> container_ports;  // every container's, in manifest order

  // "demo/client"
  std::string key() const { return namespace_name + "/" + name; }
  bool operator==(const Pod&) const = default;
};

// One entry of a v1 Service's spec.ports.
struct ServicePort {
  std::string name;              // required (DNS-1123 label) when the Service has several ports
  uint16_t port = 0;             // the Service port
  uint16_t target_port = 0;      // numeric targetPort (defaults to `port`); 0 when named
  std::string target_port_name;  // named targetPort (an IANA service name), else empty
  std::string protocol = "TCP";  // TCP, UDP or SCTP
  std::string app_protocol;      // spec.ports[].appProtocol, as written

  bool operator==(const ServicePort&) const = default;
};

// A v1 Service. Only what the mesh needs: which pods it selects and its addresses and ports.
struct Service {
  std::string name;
  std::string namespace_name;  // "default" when absent
  StringMap labels;
  StringMap annotations;
  std::string type = "ClusterIP";  // ClusterIP, NodePort, LoadBalancer or ExternalName
  StringMap selector;              // spec.selector; empty: no endpoints are derived
  std::string cluster_ip;          // spec.clusterIP as written: "", "None" (headless) or an address
  std::vector<std::string> cluster_ips;  // spec.clusterIP then spec.clusterIPs, validated,
                                         // deduplicated; never "None"
  std::vector<ServicePort> ports;
  std::string source;

  std::string key() const { return namespace_name + "/" + name; }
  bool headless() const { return cluster_ip == "None"; }
  bool operator==(const Service&) const = default;
};

// spec.mtls.mode and spec.portLevelMtls[].mode of a PeerAuthentication.
enum class PeerAuthenticationMode { kUnset, kDisable, kPermissive, kStrict };

// "UNSET", "DISABLE", "PERMISSIVE", "STRICT".
std::string_view PeerAuthenticationModeName(PeerAuthenticationMode mode);

// A security.istio.io/v1 (or v1beta1, the same schema) PeerAuthentication that passed
// validation (policy-semantics §3.1).
struct PeerAuthentication {
  std::string name;
  std::string namespace_name;  // "default" when absent
  std::string api_version;     // as written: security.istio.io/v1 or security.istio.io/v1beta1
  StringMap labels;
  StringMap annotations;
  // metadata.creationTimestamp in nanoseconds since the epoch; nullopt when absent (hand-written
  // local manifests): such a policy counts as the oldest (see common/mesh/peer_authentication.h).
  std::optional<int64_t> creation_time_ns;
  StringMap
      selector;  // spec.selector.matchLabels; empty: namespace-wide (mesh-wide in the root ns)
  PeerAuthenticationMode mode = PeerAuthenticationMode::kUnset;
  std::map<uint16_t, PeerAuthenticationMode> port_level_mtls;  // only with a non-empty selector
  std::string source;

  std::string key() const { return namespace_name + "/" + name; }
  bool operator==(const PeerAuthentication&) const = default;
};

// A PeerAuthentication that failed validation. It is not dropped: a policy that fails to load
// must never weaken enforcement (policy-semantics §9.8), so the mesh model makes every workload in
// its scope STRICT. The scope is what could be read: the namespace (kubectl's "default" when the
// manifest has none) and the selector.
struct RejectedPeerAuthentication {
  std::string name;  // may be empty or invalid (then the error says so)
  std::string namespace_name;
  // spec.selector.matchLabels when it could be read (empty: namespace-wide); nullopt when the
  // selector itself is broken, which widens the scope to the whole namespace.
  std::optional<StringMap> selector;
  std::string source;
  std::vector<std::string> errors;  // the same texts as in ParsedFile::errors

  std::string key() const { return namespace_name + "/" + name; }
  bool operator==(const RejectedPeerAuthentication&) const = default;
};

// What one file holds. `errors` are per object and read like
// `pods.yaml: document 2 (Pod demo/client): status.podIP: not an IP address: "10.1"`.
struct ParsedFile {
  std::vector<Namespace> namespaces;
  std::vector<Pod> pods;
  std::vector<Service> services;
  std::vector<PeerAuthentication> peer_authentications;
  std::vector<RejectedPeerAuthentication> rejected_peer_authentications;
  std::vector<authz::AuthorizationPolicy> authorization_policies;
  std::vector<authz::RejectedAuthorizationPolicy> rejected_authorization_policies;
  std::vector<jwt::RequestAuthentication> request_authentications;
  std::vector<jwt::RejectedRequestAuthentication> rejected_request_authentications;
  std::vector<std::string> errors;

  // Whether anything at all was read (a file's last good content is worth keeping).
  bool HasObjects() const {
    return !namespaces.empty() || !pods.empty() || !services.empty() ||
           !peer_authentications.empty() || !rejected_peer_authentications.empty() ||
           !authorization_policies.empty() || !rejected_authorization_policies.empty() ||
           !request_authentications.empty() || !rejected_request_authentications.empty();
  }
};

// Parses YAML text (one or more documents; `kind: List` is unrolled). `file_name` is used
// in sources and errors as given. Not YAML at all: InvalidArgument naming the file, the line
// and the column ("pods.yaml: line 3, column 5: YAML error: ..."). Read: v1 Namespace, Pod and
// Service, security.istio.io/v1 and v1beta1 PeerAuthentication (a PeerAuthentication of another
// security.istio.io version is rejected, not skipped); every other kind is skipped.
absl::StatusOr<ParsedFile> ParseManifest(std::string_view content, std::string_view file_name);

// Parses one object that is already on its own, such as one the API server sent (cluster mode,
// common/kube): its JSON text is YAML, so both modes share this one translation. The object is
// read exactly as a document of a manifest file (a `kind: List` is skipped, not unrolled), but
// sources are `source` as given and errors read "<source> (Pod demo/client): status.podIP: ...".
// Not YAML at all, or empty: InvalidArgument naming `source`.
absl::StatusOr<ParsedFile> ParseObject(std::string_view text, std::string_view source);

// Largest manifest file read (a guard against pointing the agent at the wrong file).
inline constexpr size_t kMaxManifestBytes = 16 * 1024 * 1024;

// The bytes of one file (open/read errors name the path).
absl::StatusOr<std::string> ReadManifestBytes(const std::string& path);

// Reads and parses one file; sources and errors name `path` as given.
absl::StatusOr<ParsedFile> ParseManifestFile(const std::string& path);

// The uid of a pod whose manifest has none: local manifests are usually written by hand and
// omit metadata.uid, so one is derived from namespace/name. It is stable across reloads and
// agent restarts (a pod recreated under the same name keeps it, which local mode accepts).
std::string DerivedUid(std::string_view namespace_name, std::string_view name);

}  // namespace zm::k8s
