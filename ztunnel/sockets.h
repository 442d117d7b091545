#pragma once
// Socket helpers of the ztunnel data path: listener creation, the original destination of a
// captured connection, the loop guard, and resets. Plain syscalls, no event loop.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/base/fd.h"
#include "common/base/ip.h"
#include "zmesh/abi.h"

namespace zm::ztunnel {

// The one definition lives in bpf/include/zmesh/abi.h, shared with the eBPF programs.
inline constexpr uint16_t kPortOutbound = ZM_PORT_OUTBOUND;
inline constexpr uint16_t kPortInbound = ZM_PORT_INBOUND;
inline constexpr uint16_t kPortHbone = ZM_PORT_HBONE;
inline constexpr uint32_t kMarkZtunnel = ZM_MARK_ZTUNNEL;
inline constexpr uint32_t kMarkDelivery = ZM_MARK_DELIVERY;
static_assert(kPortOutbound == 15001 && kPortInbound == 15006 && kPortHbone == 15008);

struct ListenerOptions {
  uint32_t mark = kMarkZtunnel;  // 0: no SO_MARK
  bool v6only = false;           // only for AF_INET6 addresses
  int backlog = 1024;
};

// A non-blocking, CLOEXEC listening TCP socket bound to `addr` in the calling thread's
// netns, with SO_REUSEPORT (old and new ztunnel overlap during upgrades) and SO_MARK.
// `addr` of family v6 ("::", "::1") makes an AF_INET6 socket, a v4 address an AF_INET one.
absl::StatusOr<Fd> CreateListener(const Endpoint& addr, const ListenerOptions& opts);

// getsockopt(SO_ORIGINAL_DST): for an AF_INET6 socket SOL_IPV6 first, then SOL_IP.
// In production an eBPF getsockopt program answers it (DESIGN-ebpf.md "Outbound").
absl::StatusOr<Endpoint> OriginalDst(int fd);
absl::StatusOr<Endpoint> LocalEndpoint(int fd);  // getsockname
absl::StatusOr<Endpoint> PeerEndpoint(int fd);   // getpeername
// For logs: the endpoint, or "-" when unknown.
inline std::string EndpointText(const absl::StatusOr<Endpoint>& e) {
  return e.ok() ? e->ToString() : "-";
}

// Loop guard (DESIGN §5): a destination that is one of ztunnel's own capture ports must not
// be proxied. Outbound refuses loopback:15001/15006/15008; inbound refuses those ports on
// any address.
bool OutboundLoopGuard(const Endpoint& dst);
bool InboundLoopGuard(const Endpoint& dst);

// SO_LINGER {1, 0}: the next close() sends a RST instead of a FIN.
void SetLingerZero(int fd);

// A non-blocking TCP socket of dst's family for an upstream connection, created in the
// calling thread's netns. With `transparent`, IP_TRANSPARENT/IPV6_TRANSPARENT is set and the
// socket is bound to `bind_ip` port 0 (delivery from the client's address).
struct UpstreamOptions {
  uint32_t mark = kMarkZtunnel;  // 0: no SO_MARK
  bool transparent = false;
  IpAddr bind_ip;
};
absl::StatusOr<Fd> CreateUpstreamSocket(const Endpoint& dst, const UpstreamOptions& opts);

}  // namespace zm::ztunnel

namespace zm::ztunnel {
}  // namespace zm::ztunnel
