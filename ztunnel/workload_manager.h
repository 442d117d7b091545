#pragma once
// Pod state of ztunnel: which pods it serves and their listeners (DESIGN-ebpf.md
// "Lifecycle"). Runs on the control thread; listeners are created in the pod netns on a
// helper thread and then handed to one worker's io_context.
//
// Semantics, idempotent by pod uid and netns inode:
//   Add, new uid          -> create listeners; Ack carries a dup of the inbound listener.
//   Add, same uid + inode -> nothing changes; Ack again with the listener fd.
//   Add, same uid, other inode -> replace the pod (old listeners shut down).
//   Keep                  -> still wanted (matters only before SnapshotSent).
//   Del                   -> listeners shut down (connections in flight finish); Ack.
//   SnapshotSent          -> drop every pod not named by Add/Keep since the Hello; Ack.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "ztunnel/metrics.h"
#include "ztunnel/proxy.h"
#include "ztunnel/workers.h"
#include "ztunnel/workload_handler.h"

namespace zm::ztunnel {

class WorkloadManager : public WorkloadHandler {
 public:
  static constexpr const char* kSnapshotTask = "zds-snapshot";

  // `listener_mark`: SO_MARK of the listeners (0 for none).
  WorkloadManager(Workers& workers, Proxy& proxy, Metrics& metrics, Readiness& readiness,
                  uint32_t listener_mark = kMarkZtunnel);
  ~WorkloadManager() override;

  void OnSessionStart() override;
  zds::Ack Handle(zds::Request request) override;

  // Closes every pod's listeners without shutting the sockets down: an agent holding dups
  // can hand them to the next ztunnel (DESIGN-ebpf.md "ztunnel restarts").
  void CloseAll();

  std::vector<std::string> Uids() const;

 private:
  struct Pod {
    std::shared_ptr<const PodInfo> info;
    uint64_t inode = 0;
    size_t worker = 0;
    std::shared_ptr<PodListeners> listeners;
    Fd inbound;  // control-side dup of the inbound listener, for Acks
  };

  zds::Ack Add(zds::AddWorkload add);
  zds::Ack Ack(const Pod& pod, const std::string& what);
  void Remove(const std::string& uid, bool shutdown_sockets);
  void Snapshot();

  Workers& workers_;
  Proxy& proxy_;
  Metrics& metrics_;
  Readiness& readiness_;
  uint32_t listener_mark_;
  mutable std::mutex mu_;  // guards pods_ for readers on other threads (Uids)
  std::map<std::string, Pod> pods_;
  std::set<std::string> named_since_hello_;
  bool snapshot_seen_ = false;
};

}  // namespace zm::ztunnel
