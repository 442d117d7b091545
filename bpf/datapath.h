#pragma once
// The agent's handle on the capture layer: the pinned maps and links of one node.
// `Datapath` is the seam the enrollment logic is tested through (tests/testutil has a fake);
// `PinnedDatapath` (bpf/pinned_datapath.h) is the real one, on libbpf and the kernel.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/ip.h"
#include "zmesh/abi.h"

namespace zm::bpf {

class Datapath {
 public:
  virtual ~Datapath() = default;

  virtual absl::Status WriteConfig(const zm_config& config) = 0;
  // zm_config[0] as pinned (all zero on a fresh install).
  virtual absl::StatusOr<zm_config> ReadConfig() = 0;

  // zm_listeners (SOCKHASH): ztunnel's in-pod listener for {pod ip, role}.
  virtual absl::Status PutListener(const IpAddr& pod_ip, uint32_t role, int listener_fd) = 0;
  virtual absl::Status DeleteListener(const IpAddr& pod_ip, uint32_t role) = 0;

  // zm_pod_ip
  virtual absl::Status PutPodIp(const IpAddr& ip, const zm_pod_ip_val& value) = 0;
  virtual absl::Status DeletePodIp(const IpAddr& ip) = 0;
  virtual absl::StatusOr<std::map<IpAddr, zm_pod_ip_val>> ListPodIps() = 0;

  // zm_pod_name: "namespace/name/uid"
  virtual absl::Status PutPodName(uint32_t pod_index, std::string_view name) = 0;
  virtual absl::Status DeletePodName(uint32_t pod_index) = 0;
  virtual absl::StatusOr<std::map<uint32_t, std::string>> ListPodNames() = 0;

  // zm_ports_excl
  virtual absl::Status PutExcludedPort(const zm_port_key& key) = 0;
  virtual absl::Status DeleteExcludedPorts(uint32_t pod_index) = 0;

  // zm_netns: writing an entry turns outbound capture on for that netns.
  virtual absl::Status PutNetns(uint64_t cookie, const zm_netns_val& value) = 0;
  virtual absl::Status DeleteNetns(uint64_t cookie) = 0;
  virtual absl::StatusOr<std::map<uint64_t, zm_netns_val>> ListNetns() = 0;

  // The per-pod sk_lookup link (pinned as links/sk_lookup_<cookie>): turns inbound on.
  // Attaching again for a cookie that has a link updates it in place.
  virtual absl::Status AttachSkLookup(uint64_t cookie, int netns_fd) = 0;
  virtual absl::Status DetachSkLookup(uint64_t cookie) = 0;
  virtual absl::StatusOr<std::vector<uint64_t>> ListSkLookupLinks() = 0;
};

}  // namespace zm::bpf
