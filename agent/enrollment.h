#pragma once
// The enrollment decision (DESIGN §3), pure: which pods of this node are enrolled and, for
// every one that is not, why — so logs, `zmeshctl` and the pod status can say it.
//
// A namespace labelled zmesh.io/dataplane-mode=ambient enrolls its pods; a pod labelled
// zmesh.io/dataplane-mode=none opts out. A pod also needs what capture cannot do without:
// a running phase, a netns to enter, an IP.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/mesh/workload.h"

namespace zm::agent {

using mesh::kDataplaneModeAmbient;
using mesh::kDataplaneModeLabel;
using mesh::kDataplaneModeNone;

// Why a pod is (not) enrolled. Checked in this order; the first that applies wins.
enum class EnrollReason {
  kEnrolled,
  kNotOnThisNode,           // spec.nodeName is another node or unset
  kNamespaceNotFound,       // no Namespace object for the pod's namespace
  kNamespaceNotLabelled,    // namespace without zmesh.io/dataplane-mode
  kNamespaceModeNotAmbient, // namespace label set to something other than "ambient"
  kPodOptedOut,             // pod labelled zmesh.io/dataplane-mode=none
  kTerminalPhase,           // status.phase Succeeded or Failed
  kInvalidPod,              // the pod failed translation (bad annotation, ...): see detail
  kNoNetns,                 // no zmesh.io/netns annotation (local mode)
  kNoIp,                    // no status.podIP yet
};

// "enrolled", "not-on-this-node", "namespace-not-labelled", ...: stable names for logs,
// metrics and `-o json`.
std::string_view EnrollReasonName(EnrollReason reason);

struct EnrollmentDecision {
  std::string uid;
  std::string ns;
  std::string name;
  bool enrolled = false;
  EnrollReason reason = EnrollReason::kEnrolled;
  std::string detail;  // one human sentence: "namespace demo is not labelled zmesh.io/..."
  std::optional<mesh::Workload> workload;  // absent only for kInvalidPod

  std::string key() const { return ns + "/" + name; }
};

// One decision per pod of `node` (workloads and rejected pods), sorted by namespace/name.
// Pods of other nodes are left out.
std::vector<EnrollmentDecision> DecideEnrollment(const mesh::Snapshot& snapshot,
                                                 std::string_view node);

// The decision for one pod wherever it runs (for `zmeshctl explain`): kNotOnThisNode when
// it is not on `node`; std::nullopt when the snapshot has no such pod.
std::optional<EnrollmentDecision> ExplainEnrollment(const mesh::Snapshot& snapshot,
                                                    std::string_view node, std::string_view ns,
                                                    std::string_view name);

}  // namespace zm::agent
