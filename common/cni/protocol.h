#pragma once
// The CNI plugin's question to the node agent, and the answer (DESIGN §3 "no bypass window").
// `zmesh-cni` connects to the agent's Unix socket (SOCK_STREAM, 0600), writes one request as a
// line of JSON and waits for one answer line; one request per connection:
//
//   {"cmd":"add","container_id":"c1","netns":"/var/run/netns/cni-1","ifname":"eth0",
//    "namespace":"demo","name":"web-0","uid":"4f1c...","ips":["10.1.0.7"],"timeout_ms":30000}
//   {"ok":true,"state":"enrolled"}
//   {"ok":false,"error":"demo/web-0: waiting for ztunnel to connect","retry":true}
//
// ADD is answered once the pod is enrolled (ztunnel acked, maps written) or definitively not to be
// enrolled (state "not-in-mesh"); DEL once the pod is un-enrolled ("removed"); CHECK at once with
// the pod's state. Used by cni/ (the plugin) and agent/ (the server).

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace zm::cni {

// The plugin's `type` in a network configuration, and the name of its binary.
inline constexpr std::string_view kPluginType = "zmesh-cni";
// The CNI versions the plugin speaks (the result format is the same in all of them).
inline constexpr std::string_view kSupportedVersions[] = {"0.3.0", "0.3.1", "0.4.0", "1.0.0"};
bool SupportedVersion(std::string_view cni_version);

enum class Command { kAdd, kDel, kCheck };
std::string_view CommandName(Command command);  // "add", "del", "check"

// Answer states.
inline constexpr std::string_view kStateEnrolled = "enrolled";
inline constexpr std::string_view kStateNotInMesh = "not-in-mesh";
inline constexpr std::string_view kStateRemoved = "removed";

struct PodRequest {
  Command command = Command::kAdd;
  std::string container_id;      // CNI_CONTAINERID
  std::string netns;             // CNI_NETNS (may be empty on DEL)
  std::string ifname;            // CNI_IFNAME
  std::string pod_namespace;     // CNI_ARGS K8S_POD_NAMESPACE
  std::string pod_name;          // CNI_ARGS K8S_POD_NAME
  std::string pod_uid;           // CNI_ARGS K8S_POD_UID; empty when the runtime does not pass it
  std::vector<std::string> ips;  // the previous result's addresses, without the prefix length
  int64_t timeout_ms = 0;        // how long the plugin waits for the answer

  std::string key() const { return pod_namespace + "/" + pod_name; }
  bool operator==(const PodRequest&) const = default;
};

struct PodReply {
  bool ok = false;
  std::string state;   // when ok
  std::string error;   // when not ok: one sentence naming the pod
  bool retry = false;  // not ok for now (the kubelet should try again): CNI error code 11

  bool operator==(const PodReply&) const = default;
};

// Lines of JSON, '\n'-terminated. Decoding errors say which field is wrong.
std::string EncodeRequest(const PodRequest& request);
absl::StatusOr<PodRequest> DecodeRequest(std::string_view line);
std::string EncodeReply(const PodReply& reply);
absl::StatusOr<PodReply> DecodeReply(std::string_view line);

// The longest line either side accepts.
inline constexpr size_t kMaxLineBytes = 64 * 1024;

// Reads one '\n'-terminated line (without the '\n') from a stream socket before `deadline`.
// DeadlineExceeded when it does not come in time; errors name `what`.
absl::StatusOr<std::string> ReadLine(int fd, std::chrono::steady_clock::time_point deadline,
                                     std::string_view what);
// Writes all of `data` (MSG_NOSIGNAL: a peer gone is an error, not a SIGPIPE).
absl::Status WriteAll(int fd, std::string_view data, std::string_view what);

// The plugin's side: connects to the agent at `socket_path`, sends `request` and waits up to
// `timeout` for the answer. Unavailable when the agent cannot be reached.
absl::StatusOr<PodReply> CallAgent(const std::string& socket_path, const PodRequest& request,
                                   std::chrono::milliseconds timeout);

}  // namespace zm::cni
