#include "ztunnel/sockets.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "common/base/status.h"
#include "common/base/strings.h"

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

namespace zm::ztunnel {
namespace {

int SocketFamily(int fd) {
  int domain = 0;
  socklen_t len = sizeof(domain);
  if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return AF_UNSPEC;
  return domain;
}

absl::Status SetInt(int fd, int level, int opt, int value, std::string_view what,
                    std::string_view object) {
  if (::setsockopt(fd, level, opt, &value, sizeof(value)) != 0) {
    return ErrnoError(StrCat("setsockopt(", what, ")"), object);
  }
  return absl::OkStatus();
}

bool IsCapturePort(uint16_t port) {
  return port == kPortOutbound || port == kPortInbound || port == kPortHbone;
}

}  // namespace

absl::StatusOr<Fd> CreateListener(const Endpoint& addr, const ListenerOptions& opts) {
  const bool v6 = !addr.ip.is_v4();
  const std::string name = addr.ToString();
  Fd fd(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoError("socket", name);
  ZM_RETURN_IF_ERROR(SetInt(fd.get(), SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT", name));
  ZM_RETURN_IF_ERROR(SetInt(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR", name));
  if (opts.mark != 0) {
    ZM_RETURN_IF_ERROR(
        SetInt(fd.get(), SOL_SOCKET, SO_MARK, static_cast<int>(opts.mark), "SO_MARK", name));
  }
  if (v6) {
    ZM_RETURN_IF_ERROR(
        SetInt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, opts.v6only ? 1 : 0, "IPV6_V6ONLY", name));
  }
  sockaddr_storage ss{};
  socklen_t len = addr.ToSockaddr(&ss);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) return ErrnoError("bind", name);
  if (::listen(fd.get(), opts.backlog) != 0) return ErrnoError("listen", name);
  return fd;
}

absl::StatusOr<Endpoint> OriginalDst(int fd) {
  sockaddr_storage ss{};
  if (SocketFamily(fd) == AF_INET6) {
    socklen_t len = sizeof(sockaddr_in6);
    if (::getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &ss, &len) == 0 &&
        ss.ss_family == AF_INET6) {
      return Endpoint::FromSockaddr(ss);
    }
    ss = {};
  }
  socklen_t len = sizeof(sockaddr_in);
  if (::getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &ss, &len) != 0) {
    return ErrnoError("getsockopt(SO_ORIGINAL_DST)", "accepted socket");
  }
  if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) {
    return absl::NotFoundError("SO_ORIGINAL_DST returned no address");
  }
  return Endpoint::FromSockaddr(ss);
}

absl::StatusOr<Endpoint> LocalEndpoint(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return ErrnoError("getsockname", "socket");
  }
  return Endpoint::FromSockaddr(ss);
}

absl::StatusOr<Endpoint> PeerEndpoint(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return ErrnoError("getpeername", "socket");
  }
  return Endpoint::FromSockaddr(ss);
}

bool OutboundLoopGuard(const Endpoint& dst) {
  return (dst.ip.is_loopback() || dst.ip.is_unspecified()) && IsCapturePort(dst.port);
}

bool InboundLoopGuard(const Endpoint& dst) { return IsCapturePort(dst.port); }

void SetLingerZero(int fd) {
  linger l{.l_onoff = 1, .l_linger = 0};
  (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

absl::StatusOr<Fd> CreateUpstreamSocket(const Endpoint& dst, const UpstreamOptions& opts) {
  const bool v6 = !dst.ip.is_v4();
  const std::string name = StrCat("upstream to ", dst.ToString());
  Fd fd(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoError("socket", name);
  if (opts.mark != 0) {
    ZM_RETURN_IF_ERROR(
        SetInt(fd.get(), SOL_SOCKET, SO_MARK, static_cast<int>(opts.mark), "SO_MARK", name));
  }
  ZM_RETURN_IF_ERROR(SetInt(fd.get(), IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY", name));
  if (opts.transparent) {
    if (v6) {
      ZM_RETURN_IF_ERROR(SetInt(fd.get(), SOL_IPV6, IPV6_TRANSPARENT, 1, "IPV6_TRANSPARENT", name));
    } else {
      ZM_RETURN_IF_ERROR(SetInt(fd.get(), SOL_IP, IP_TRANSPARENT, 1, "IP_TRANSPARENT", name));
    }
    Endpoint local{.ip = opts.bind_ip, .port = 0};
    if (local.ip.is_v4() != dst.ip.is_v4()) {
      return absl::InvalidArgumentError(StrCat("client ", local.ip.ToString(), " and destination ",
                                               dst.ToString(), " are of different families"));
    }
    // The port is picked at connect() time against the whole 4-tuple: without this, bind()
    // with port 0 searches for a port free for *every* destination and, with thousands of
    // delivery sockets in TIME_WAIT from one client address, that search dominated the cost
    // of a new inbound connection (inet_bhash2_conflict, ~7x fewer connections per second).
    ZM_RETURN_IF_ERROR(
        SetInt(fd.get(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1, "IP_BIND_ADDRESS_NO_PORT", name));
    sockaddr_storage ss{};
    socklen_t len = local.ToSockaddr(&ss);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
      return ErrnoError("bind", StrCat(name, " from ", local.ip.ToString()));
    }
  }
  return fd;
}

}  // namespace zm::ztunnel
