#pragma once
// L4 authorization of inbound connections (DESIGN §5, §7; policy-semantics §2.9, §3.3): the
// decision for each new connection (PeerAuthentication for plaintext, then the
// AuthorizationPolicy engine, both through mesh::AuthorizeL4), the deny access-log line and
// counters, and the re-check of live connections whenever the mesh view changes (a connection
// that the new policy denies is closed).
//
// Admit decides and, when it allows, registers the connection under one lock; Recheck takes
// the same lock after every view update. So a connection is either admitted under the new view
// or re-checked against it: none slips between the two.
//
// Threads: Admit/Release run on workers, Recheck on the config thread; closers are called with
// the lock released and must hop to their connection's executor themselves.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/base/ip.h"
#include "common/mesh/authorization.h"
#include "ztunnel/metrics.h"
#include "ztunnel/proxy.h"

namespace zm::ztunnel {

class MeshState;

struct InboundConnection {
  uint64_t id = 0;                     // the connection (or stream) id of the access log
  std::shared_ptr<const PodInfo> pod;  // the destination pod (local)
  std::string peer;                    // verified SPIFFE id (spiffe://...); empty: plaintext
  Endpoint src;                        // the peer's address
  Endpoint dst;                        // the pod's address and the target port
  std::string_view dir = "inbound";    // "inbound" (15006) or "inbound-hbone" (15008)
};

class Authorizer {
 public:
  // Closes a live connection that policy now denies; `why` is for its log line. Called from
  // the config thread: dispatch to the connection's executor.
  using Closer = std::function<void(const std::string& why)>;

  struct Admission {
    bool allowed = false;
    FailureReason reason = FailureReason::kPolicyDenied;  // when not allowed
    std::string detail;                                   // words, when not allowed
    uint64_t handle = 0;  // when allowed: pass to Release when the connection ends
  };

  Authorizer(const MeshState& mesh, Metrics& metrics) : mesh_(mesh), metrics_(metrics) {}

  // The decision for `c`; a deny is counted and logged here (one access-log line naming the
  // policy, the rule and the hop). Fails closed without a mesh view or when the pod is not in
  // it.
  Admission Admit(const InboundConnection& c, Closer closer);
  void Release(uint64_t handle);
  // Re-evaluates every live connection against the current view; closes the denied ones.
  void Recheck();
  size_t live() const;

 private:
  struct Live {
    InboundConnection conn;
    Closer closer;
  };
  // Counts a refusal and writes the connection's access-log line.
  void Report(const InboundConnection& c, const mesh::L4Verdict& v, FailureReason reason,
              std::string_view result, std::string_view reason_prefix);
  // The verdict for `c` under the current view; nullopt view: fail closed.
  mesh::L4Verdict Decide(const InboundConnection& c, FailureReason* reason) const;

  const MeshState& mesh_;
  Metrics& metrics_;
  mutable std::mutex mu_;
  uint64_t next_handle_ = 1;
  std::map<uint64_t, Live> live_;
};

}  // namespace zm::ztunnel
