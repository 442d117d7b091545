#pragma once
// The real PodNetns: opens pod namespaces and writes their delivery routing over netlink.

#include "agent/enroller.h"

namespace zm::agent {

class RealPodNetns : public PodNetns {
 public:
  absl::StatusOr<Fd> Open(const std::string& netns) override;
  absl::StatusOr<uint64_t> Cookie(int netns_fd) override;
  absl::Status InstallRouting(int netns_fd) override;
};

}  // namespace zm::agent
