#pragma once
// The node tunnel's decision for one inbound connection (DESIGN §7, policy-semantics §2.9,
// §3.3): PeerAuthentication first (plaintext to a STRICT port is refused before any
// AuthorizationPolicy is looked at), then the L4 AuthorizationPolicy engine. ztunnel's data
// path and `zmeshctl explain --layer l4` both call AuthorizeL4, so they cannot disagree.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/authz/engine.h"
#include "common/base/ip.h"
#include "common/mesh/peer_authentication.h"
#include "common/mesh/workload.h"

namespace zm::mesh {

// The snapshot's policies compiled for the node tunnel (zero-trust default from
// snapshot.default_policy).
std::shared_ptr<const authz::PolicySet> BuildL4PolicySet(const Snapshot& snapshot,
                                                         std::string_view root_namespace);

// Whether `principal` (without "spiffe://") is the identity of a running endpoint of the
// waypoint `destination` uses. The destination's ztunnel allows it implicitly (DESIGN §6).
bool IsWaypointOf(const Snapshot& snapshot, const Workload& destination,
                  std::string_view principal);

struct L4Request {
  // The peer's verified SPIFFE id without "spiffe://"; nullopt for plaintext.
  std::optional<std::string> principal;
  std::optional<IpAddr> source_ip;
  std::optional<IpAddr> destination_ip;
  uint16_t port = 0;      // the workload (target) port
  bool tunneled = false;  // arrived over HBONE (mTLS); false: plaintext on 15006
};

struct L4Verdict {
  bool allowed = true;
  enum class DecidedBy { kPeerAuthentication, kAuthorizationPolicy };
  DecidedBy decided_by = DecidedBy::kAuthorizationPolicy;
  std::string policy;       // "ns/name" of the deciding PeerAuthentication or policy; may be empty
  std::optional<int> rule;  // AuthorizationPolicy rule index
  std::string reason;       // words
  std::vector<std::string> dry_run;
  std::vector<std::string> trace;  // PeerAuthentication and policy lines (want_trace)
};

L4Verdict AuthorizeL4(const Snapshot& snapshot, const authz::PolicySet& policies,
                      const Workload& destination, const L4Request& request,
                      std::string_view root_namespace, bool want_trace = false);

// The same with the destination's applicable policies already looked up
// (PolicySet::ForWorkload; ztunnel caches them per workload and view).
L4Verdict AuthorizeL4(const Snapshot& snapshot, const authz::PolicySet& policies,
                      std::span<const authz::CompiledPolicy* const> applicable,
                      const Workload& destination, const L4Request& request,
                      std::string_view root_namespace, bool want_trace = false);

}  // namespace zm::mesh
