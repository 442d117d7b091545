#pragma once
// The zmesh.io/status annotation (cluster mode, DESIGN §3): on each pod of this node in an
// enrolled namespace, "enrolled", "pending" (waiting for ztunnel, the CNI ADD or an IP) or
// "error: <why>"; removed again when the pod leaves the mesh (label gone, opt-out). Written by
// the agent of the pod's node only.
//
// DesiredStatuses is the pure decision; StatusWriter patches the API server on a thread of its
// own (a slow API server never blocks the control thread) with a JSON merge patch that names only
// this annotation (other writers' annotations are untouched). It patches only when the agent's
// value changes: a value already in place is not written again, and a value someone else wrote
// over ours is left alone until ours changes (no fight).

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "agent/enroller.h"
#include "agent/enrollment.h"
#include "common/kube/backoff.h"
#include "common/kube/client.h"
#include "common/kube/kube_source.h"

namespace zm::agent {

using kube::kStatusAnnotation;  // "zmesh.io/status"
inline constexpr std::string_view kStatusEnrolled = "enrolled";
inline constexpr std::string_view kStatusPending = "pending";

struct StatusTarget {
  std::string uid;
  std::string ns;
  std::string name;
  std::optional<std::string> value;  // nullopt: the annotation must not be there

  std::string key() const { return ns + "/" + name; }
  bool operator==(const StatusTarget&) const = default;
};

// One target per pod of this node whose status the agent has a say on: pods the decision
// enrolls, or keeps pending in the mesh, or refuses (error); nullopt for pods outside the mesh
// (so an earlier value is removed). Pods in a terminal phase or of an unknown namespace are left
// alone. `enroller` is Enroller::Status().
std::vector<StatusTarget> DesiredStatuses(const std::vector<EnrollmentDecision>& decisions,
                                          const std::vector<PodStatus>& enroller);

class StatusWriter {
 public:
  // What the API server has, as last seen by the pod informer: nullopt when the pod (with this
  // uid) is not in the cache; otherwise the annotation's value (nullopt inside: absent).
  using Observed =
      std::function<std::optional<std::optional<std::string>>(const StatusTarget& target)>;

  struct Options {
    kube::BackoffPolicy backoff{.initial = std::chrono::milliseconds(500),
                                .max = std::chrono::milliseconds(30'000)};
  };

  StatusWriter(kube::KubeApi& api, Observed observed, Options options);
  StatusWriter(kube::KubeApi& api, Observed observed)
      : StatusWriter(api, std::move(observed), Options{}) {}
  ~StatusWriter();  // Stop()
  StatusWriter(const StatusWriter&) = delete;
  StatusWriter& operator=(const StatusWriter&) = delete;

  void Start();
  void Stop();
  // The whole desired set, replacing the previous one. Thread-safe, never blocks on the API.
  void Post(std::vector<StatusTarget> desired);

  struct Stats {
    int64_t passes = 0;    // looks at a desired set
    int64_t patches = 0;   // successful
    int64_t failures = 0;  // failed patches (retried with backoff)
    std::string last_error;
  };
  Stats stats() const;

 private:
  void Run();
  // One pass over the desired set; false when a patch failed and the pass must be retried.
  bool Pass(const std::vector<StatusTarget>& desired);

  kube::KubeApi& api_;
  const Observed observed_;
  const Options options_;
  std::map<std::string, std::optional<std::string>> written_;  // by uid; writer thread only

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<std::vector<StatusTarget>> next_;  // guarded by mu_
  bool stop_ = false;                              // guarded by mu_
  Stats stats_;                                    // guarded by mu_
  std::thread thread_;
};

}  // namespace zm::agent
