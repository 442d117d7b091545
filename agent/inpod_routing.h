#pragma once
// Source-IP preservation inside a pod's netns (DESIGN-ebpf "Source-IP preservation"):
// ztunnel delivers to the app from the client's IP with mark ZM_MARK_DELIVERY, and the
// app's replies must come back to ztunnel instead of leaving the pod. The agent writes, over
// rtnetlink by hand (no `ip`, no library):
//   sysctl net.ipv4.tcp_fwmark_accept=1
//   ip rule add pref 32764 fwmark 0x538/0xfff lookup 1337
//   ip route add local 0.0.0.0/0 dev lo table 1337
// and, when IPv6 is enabled on the pod's lo, the same rule and `local ::/0 dev lo` route
// for IPv6 (tcp_fwmark_accept covers both families).
//
// Everything runs on a helper thread that has entered the pod netns (RunInNetns): the
// netlink socket and the /proc/sys file are then the pod's, never the host's.

#include <cstdint>

#include "absl/status/statusor.h"
#include "zmesh/abi.h"

namespace zm::agent {

inline constexpr uint32_t kDeliveryMark = ZM_MARK_DELIVERY;
inline constexpr uint32_t kDeliveryMarkMask = 0xfff;
inline constexpr uint32_t kDeliveryRouteTable = ZM_DELIVERY_ROUTE_TABLE;
// An explicit priority (just above the main table's 32766, as Istio uses): a rule added
// without one gets a kernel-chosen priority that differs on every add, so a second add would
// duplicate it instead of failing with EEXIST.
inline constexpr uint32_t kDeliveryRulePriority = 32764;

// Idempotent: the rule is created exclusively (EEXIST is success), the route is created or
// replaced (so a conflicting route for the same prefix in table 1337 is corrected). Errors
// name the netlink request: "RTM_NEWRULE(inet pref 32764 fwmark 0x538/0xfff lookup 1337):
// EPERM (Operation not permitted)", plus the kernel's extended ack text when it gives one.
absl::Status InstallDeliveryRouting(int netns_fd);

// Removes what Install wrote and sets tcp_fwmark_accept back to 0. Entries already gone
// are fine.
absl::Status RemoveDeliveryRouting(int netns_fd);

// True when the sysctl is 1 and the rule and the route are present (for IPv6 too when it
// is enabled in the netns). For `zmeshctl check`.
absl::StatusOr<bool> DeliveryRoutingInstalled(int netns_fd);

}  // namespace zm::agent
