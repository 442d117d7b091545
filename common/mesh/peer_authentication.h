#pragma once
// PeerAuthentication in the mesh model and its effective mode for a workload and a port
// (policy-semantics §3.2, §8.7, §9.3). The one implementation of §3.2; the node tunnel, the
// agent and `zmeshctl explain` all ask it.
//
// Resolution for workload W (namespace N) and workload port P, root namespace R:
//   mesh      = the oldest PA in R without a selector (or with empty matchLabels)
//   namespace = the oldest PA in N (N != R) without a selector
//   workload  = the oldest PA in N (N != R) whose matchLabels ⊆ W.labels
//               (a PA in R with a selector is ignored entirely, also for workloads in R)
//   mode = the default (PERMISSIVE upstream, STRICT with --default-policy=zero-trust); then
//   mesh, namespace, workload in turn override it unless UNSET; then, if the workload PA lists P
//   in portLevelMtls with a mode other than UNSET, that mode (also under a STRICT parent with the
//   workload's own mode UNSET, §9.3). Port keys are workload (container / target) ports, never
//   Service ports.
//   "Oldest": earliest metadata.creationTimestamp, then name (Istio sorts configs by creation
//   time, then name). A PA without creationTimestamp (usual in hand-written local manifests)
//   counts as older than every timestamped one, as Istio's file config source sees it (zero time).
//
// Rejected PeerAuthentications (failed validation) never weaken enforcement (§9.8; §9 says
// nothing specific to PeerAuthentication, so zmesh's choice is): every workload in a rejected
// PA's scope is STRICT on every port, whatever else applies. Its scope is read as for a valid one:
// in R without a selector or with one that could not be read: every workload; in N without a
// selector, or with a selector that could not be read: every workload of N; in N with a selector:
// the workloads it selects; in R with a (readable) selector: nothing, as a valid one would be
// ignored there.
//
// Enforcement at the node tunnel (§3.3): STRICT rejects plaintext; PERMISSIVE and DISABLE
// both accept it (PlaintextAllowed); tunnelled mTLS is always accepted.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zm::mesh {

struct Snapshot;
struct Workload;

// zmesh's default for --root-namespace (DESIGN §7; upstream Istio's is istio-system).
inline constexpr std::string_view kDefaultRootNamespace = "zmesh-system";

enum class MtlsMode { kStrict, kPermissive, kDisable };

// "STRICT", "PERMISSIVE", "DISABLE".
std::string_view MtlsModeName(MtlsMode mode);

// Whether the node tunnel accepts a plaintext (non-tunnelled) inbound connection (§3.3).
inline bool PlaintextAllowed(MtlsMode mode) { return mode != MtlsMode::kStrict; }

// What applies when no policy sets a mode: upstream's PERMISSIVE, or STRICT under
// `--default-policy=zero-trust` (DESIGN §7, NIST AP-SR-3). Explicit policies still override it.
enum class DefaultPolicy { kUpstream, kZeroTrust };

struct PeerAuthentication {
  std::string name;
  std::string ns;
  std::map<std::string, std::string> selector;  // empty: namespace-wide (mesh-wide in the root ns)
  std::optional<MtlsMode> mode;                 // nullopt: UNSET (inherit)
  std::map<uint16_t, std::optional<MtlsMode>> port_level;  // workload port -> mode (nullopt: UNSET)
  std::optional<int64_t> creation_time_ns;                 // nullopt: no creationTimestamp (oldest)
  std::string source;

  // "ns/name"
  std::string key() const { return ns + "/" + name; }
};

// A PeerAuthentication that failed validation: its scope is STRICT (see above).
struct RejectedPeerAuthentication {
  std::string name;  // as written; may be empty
  std::string ns;
  // nullopt: the selector could not be read (scope: the whole namespace). Empty: namespace-wide.
  std::optional<std::map<std::string, std::string>> selector;
  std::string source;
  std::string error;  // the first validation error

  std::string key() const { return ns + "/" + (name.empty() ? "(unnamed)" : name); }
};

// Which rule decided a workload port's mode.
enum class MtlsLevel {
  kDefault,    // no policy set a mode
  kMesh,       // the mesh-wide PA (root namespace, no selector)
  kNamespace,  // the namespace-wide PA
  kWorkload,   // the workload PA's spec.mtls.mode
  kPort,       // the workload PA's portLevelMtls entry for the port
  kRejected,   // a rejected PA covers the workload: fail closed
};

// "default", "mesh", "namespace", "workload", "port", "rejected".
std::string_view MtlsLevelName(MtlsLevel level);

struct MtlsDecision {
  MtlsMode mode = MtlsMode::kPermissive;
  MtlsLevel level = MtlsLevel::kDefault;
  std::string policy;  // "ns/name" of the deciding PA; empty for kDefault
  // The PAs that took part, mesh to workload ("ns/name"), and why others were passed over;
  // one line each, for `zmeshctl explain`.
  std::vector<std::string> trace;
};

// The effective mode for `workload` on its port `port` (a container / target port).
MtlsMode EffectiveMtlsMode(const Snapshot& snapshot, const Workload& workload, uint16_t port,
                           std::string_view root_namespace,
                           DefaultPolicy default_policy = DefaultPolicy::kUpstream);

// The same, with which policy decided and a trace.
MtlsDecision ExplainMtlsMode(const Snapshot& snapshot, const Workload& workload, uint16_t port,
                             std::string_view root_namespace,
                             DefaultPolicy default_policy = DefaultPolicy::kUpstream);

// Ordering of PAs at one level: oldest first (no timestamp first), then by name.
bool OlderPeerAuthentication(const PeerAuthentication& a, const PeerAuthentication& b);

}  // namespace zm::mesh
