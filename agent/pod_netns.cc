#include "agent/pod_netns.h"

#include "agent/inpod_routing.h"
#include "common/base/netns.h"

namespace zm::agent {

absl::StatusOr<Fd> RealPodNetns::Open(const std::string& netns) { return OpenNetns(netns); }
absl::StatusOr<uint64_t> RealPodNetns::Cookie(int netns_fd) { return NetnsCookie(netns_fd); }
absl::Status RealPodNetns::InstallRouting(int netns_fd) {
  return InstallDeliveryRouting(netns_fd);
}

}  // namespace zm::agent
