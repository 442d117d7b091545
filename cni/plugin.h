#pragma once
// zmesh-cni, the chained CNI plugin (CNI spec 1.0; DESIGN §3 "no bypass window"): the runtime
// calls it last in the pod network's plugin list, after the plugins that created the interface.
//
//   ADD    asks the node agent to enroll the pod and returns only once it is enrolled (ztunnel
//          acked, maps written) or not to be enrolled; any failure or timeout fails the ADD, so
//          the kubelet retries and the pod never runs unprotected. Its result is prevResult,
//          unchanged.
//   DEL    asks the agent to un-enroll the pod; always succeeds (a pod must stay deletable when
//          the agent is down; the agent garbage-collects what a missed DEL leaves).
//   CHECK  asks the agent whether the pod is as it should be.
//   VERSION prints the supported versions.
//
// Pods are named by CNI_ARGS (K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_UID); a call without
// them is not for a Kubernetes pod and passes straight through. The plugin's options in the
// network configuration: "agent_socket" (required; the agent writes it when it installs the
// plugin) and "timeout_seconds" (default 30).
//
// Errors are CNI error objects on stdout with a non-zero exit: codes 1 (incompatible version),
// 4 (environment), 6 (undecodable configuration), 7 (invalid configuration), 11 (try again later:
// the agent is unreachable, still enrolling, or timed out) and 100 (the agent refused the pod).

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/cni/protocol.h"

namespace zm::cni {

inline constexpr int kDefaultTimeoutSeconds = 30;

// CNI error codes (spec "Error codes").
enum ErrorCode : int {
  kIncompatibleVersion = 1,
  kUnsupportedField = 2,
  kInvalidEnvironment = 4,
  kDecodingFailure = 6,
  kInvalidConfig = 7,
  kTryAgainLater = 11,
  kPodRefused = 100,  // plugin-specific: the agent will not enroll this pod
};

// The CNI_* environment of one call.
struct Environment {
  std::string command;       // CNI_COMMAND
  std::string container_id;  // CNI_CONTAINERID
  std::string netns;         // CNI_NETNS
  std::string ifname;        // CNI_IFNAME
  std::string args;          // CNI_ARGS
  std::string path;          // CNI_PATH

  // Reads the process environment.
  static Environment FromProcess();
};

// K8S_POD_* of CNI_ARGS ("IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=web-0;...").
struct PodArgs {
  std::string pod_namespace;
  std::string pod_name;
  std::string pod_uid;
  std::string infra_container_id;
};
absl::StatusOr<PodArgs> ParsePodArgs(std::string_view cni_args);

// The network configuration the runtime writes on stdin.
struct NetConf {
  std::string cni_version;
  std::string name;
  std::string type;
  std::string agent_socket;
  int timeout_seconds = kDefaultTimeoutSeconds;
  std::optional<nlohmann::json> prev_result;
};
// Errors carry the CNI code as their payload (ErrorCodeOf).
absl::StatusOr<NetConf> ParseNetConf(std::string_view stdin_text);

// The addresses of a result's "ips" entries, without their prefix length.
absl::StatusOr<std::vector<std::string>> ResultAddresses(const nlohmann::json& result);

// What the plugin process does: its stdout and exit status.
struct Outcome {
  int exit_code = 0;
  std::string stdout_text;
  std::string stderr_text;  // warnings (the runtime logs them)
};

// The seam to the agent (CallAgent in production).
using AgentCall = std::function<absl::StatusOr<PodReply>(
    const std::string& socket_path, const PodRequest& request, std::chrono::milliseconds timeout)>;

// Runs one CNI call.
Outcome Execute(const Environment& env, std::string_view stdin_text, const AgentCall& agent);

// A CNI error object: {"cniVersion": ..., "code": ..., "msg": ..., "details": ...}.
std::string ErrorJson(std::string_view cni_version, int code, std::string_view msg,
                      std::string_view details = "");

}  // namespace zm::cni
