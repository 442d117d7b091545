#pragma once
// The seam between the ZDS protocol (ZdsClient) and the pod state (WorkloadManager), so that
// tests drive either side alone.

#include "common/zds/zds.h"

namespace zm::ztunnel {

class WorkloadHandler {
 public:
  virtual ~WorkloadHandler() = default;
  // A new ZDS connection said Hello: "named since Hello" starts over.
  virtual void OnSessionStart() = 0;
  // One request, one Ack (error empty = success; listeners: fds to send with it).
  virtual zds::Ack Handle(zds::Request request) = 0;
};

}  // namespace zm::ztunnel
