#include "agent/enrollment.h"

#include <algorithm>

#include "common/base/strings.h"

namespace zm::agent {
namespace {

const std::string* FindLabel(const std::map<std::string, std::string>& labels,
                             std::string_view key) {
  auto it = labels.find(std::string(key));
  return it == labels.end() ? nullptr : &it->second;
}

// The checks common to workloads and rejected pods: node, namespace, opt-out.
bool DecideByPlacement(const mesh::Snapshot& snap, std::string_view node, std::string_view pod_node,
                       const std::map<std::string, std::string>& pod_labels,
                       EnrollmentDecision& d) {
  auto fail = [&d](EnrollReason reason, std::string detail) {
    d.reason = reason;
    d.detail = std::move(detail);
    return false;
  };
  if (pod_node.empty() || pod_node != node) {
    return fail(EnrollReason::kNotOnThisNode,
                pod_node.empty() ? StrCat("pod is not scheduled (spec.nodeName unset); this is node ",
                                          node)
                                 : StrCat("pod runs on node ", pod_node, ", this is node ", node));
  }
  const mesh::Namespace* ns = snap.FindNamespace(d.ns);
  if (ns == nullptr) {
    return fail(EnrollReason::kNamespaceNotFound, StrCat("namespace ", d.ns, " is not defined"));
  }
  const std::string* mode = FindLabel(ns->labels, kDataplaneModeLabel);
  if (mode == nullptr) {
    return fail(EnrollReason::kNamespaceNotLabelled,
                StrCat("namespace ", d.ns, " is not labelled ", kDataplaneModeLabel, "=",
                       kDataplaneModeAmbient));
  }
  if (*mode != kDataplaneModeAmbient) {
    return fail(EnrollReason::kNamespaceModeNotAmbient,
                StrCat("namespace ", d.ns, " has ", kDataplaneModeLabel, "=", *mode, ", not ",
                       kDataplaneModeAmbient));
  }
  const std::string* pod_mode = FindLabel(pod_labels, kDataplaneModeLabel);
  if (pod_mode != nullptr && *pod_mode == kDataplaneModeNone) {
    return fail(EnrollReason::kPodOptedOut,
                StrCat("pod is labelled ", kDataplaneModeLabel, "=", kDataplaneModeNone));
  }
  return true;
}

EnrollmentDecision DecideWorkload(const mesh::Snapshot& snap, std::string_view node,
                                  const mesh::Workload& w) {
  EnrollmentDecision d{.uid = w.uid, .ns = w.ns, .name = w.name, .workload = w};
  if (!DecideByPlacement(snap, node, w.node, w.labels, d)) return d;
  if (w.terminal()) {
    d.reason = EnrollReason::kTerminalPhase;
    d.detail = StrCat("pod phase is ", w.phase);
  } else if (w.netns.empty()) {
    d.reason = EnrollReason::kNoNetns;
    d.detail = StrCat("pod has no ", mesh::kNetnsAnnotation, " annotation");
  } else if (w.ips.empty()) {
    d.reason = EnrollReason::kNoIp;
    d.detail = "pod has no IP (status.podIP)";
  } else {
    d.enrolled = true;
    d.reason = EnrollReason::kEnrolled;
    d.detail = StrCat("enrolled as ", w.identity());
  }
  return d;
}

EnrollmentDecision DecideRejected(const mesh::Snapshot& snap, std::string_view node,
                                  const mesh::RejectedPod& p) {
  EnrollmentDecision d{.uid = p.uid, .ns = p.ns, .name = p.name};
  if (!DecideByPlacement(snap, node, p.node, p.labels, d)) return d;
  d.reason = EnrollReason::kInvalidPod;
  d.detail = p.error;
  return d;
}

}  // namespace

std::string_view EnrollReasonName(EnrollReason reason) {
  switch (reason) {
    case EnrollReason::kEnrolled: return "enrolled";
    case EnrollReason::kNotOnThisNode: return "not-on-this-node";
    case EnrollReason::kNamespaceNotFound: return "namespace-not-found";
    case EnrollReason::kNamespaceNotLabelled: return "namespace-not-labelled";
    case EnrollReason::kNamespaceModeNotAmbient: return "namespace-mode-not-ambient";
    case EnrollReason::kPodOptedOut: return "pod-opted-out";
    case EnrollReason::kTerminalPhase: return "terminal-phase";
    case EnrollReason::kInvalidPod: return "invalid-pod";
    case EnrollReason::kNoNetns: return "no-netns";
    case EnrollReason::kNoIp: return "no-ip";
  }
  return "unknown";
}

std::vector<EnrollmentDecision> DecideEnrollment(const mesh::Snapshot& snapshot,
                                                 std::string_view node) {
  std::vector<EnrollmentDecision> out;
  for (const mesh::Workload& w : snapshot.workloads) {
    if (!w.node.empty() && w.node == node) out.push_back(DecideWorkload(snapshot, node, w));
  }
  for (const mesh::RejectedPod& p : snapshot.rejected) {
    if (!p.node.empty() && p.node == node) out.push_back(DecideRejected(snapshot, node, p));
  }
  std::sort(out.begin(), out.end(), [](const EnrollmentDecision& a, const EnrollmentDecision& b) {
    return std::tie(a.ns, a.name) < std::tie(b.ns, b.name);
  });
  return out;
}

std::optional<EnrollmentDecision> ExplainEnrollment(const mesh::Snapshot& snapshot,
                                                    std::string_view node, std::string_view ns,
                                                    std::string_view name) {
  for (const mesh::Workload& w : snapshot.workloads) {
    if (w.ns == ns && w.name == name) return DecideWorkload(snapshot, node, w);
  }
  for (const mesh::RejectedPod& p : snapshot.rejected) {
    if (p.ns == ns && p.name == name) return DecideRejected(snapshot, node, p);
  }
  return std::nullopt;
}

}  // namespace zm::agent
