#pragma once
// The agent's side of ZDS, as the enroller sees it: a seam so the enrollment order can be
// tested with a fake ztunnel. The real one is ZdsServer (agent/zds_server.h).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/fd.h"

namespace zm::agent {

struct WorkloadRef {
  std::string uid;
  std::string name;
  std::string ns;
  std::string service_account;
};

class ZtunnelLink {
 public:
  virtual ~ZtunnelLink() = default;
  virtual bool Connected() const = 0;
  // AddWorkload + the netns fd; waits for the Ack. Returns ztunnel's inbound listener(s).
  virtual absl::StatusOr<std::vector<Fd>> Add(const WorkloadRef& workload, int netns_fd) = 0;
  virtual absl::Status Del(const std::string& uid) = 0;
  virtual absl::Status SnapshotSent() = 0;
};

}  // namespace zm::agent
