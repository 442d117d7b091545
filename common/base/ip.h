#pragma once
// IP addresses as the capture layer stores them: 16 bytes, IPv4 v4-mapped.

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace zm {

struct IpAddr {
  std::array<uint8_t, 16> bytes{};

  static absl::StatusOr<IpAddr> Parse(std::string_view text);
  static IpAddr FromV4(uint32_t net_order);
  static IpAddr FromV6(const uint8_t (&b)[16]);
  // From a sockaddr_in / sockaddr_in6 (v4-mapped v6 addresses stay v4-mapped: is_v4()).
  static IpAddr FromSockaddr(const sockaddr* sa);

  bool is_v4() const;
  bool is_loopback() const;
  bool is_unspecified() const;
  uint32_t v4_net_order() const;  // only when is_v4()
  std::string ToString() const;   // "198.18.1.2" or "fd00::1"
  auto operator<=>(const IpAddr&) const = default;
};

// An address and a port, as sockets see them.
struct Endpoint {
  IpAddr ip;
  uint16_t port = 0;  // host order

  // "127.0.0.1:15020", "[::1]:15000"
  static absl::StatusOr<Endpoint> Parse(std::string_view text);
  static absl::StatusOr<Endpoint> FromSockaddr(const sockaddr_storage& ss);
  // sockaddr_in for IPv4, sockaddr_in6 otherwise; returns the length used.
  socklen_t ToSockaddr(sockaddr_storage* ss) const;
  // A v6 sockaddr (v4-mapped for IPv4), for dual-stack sockets.
  socklen_t ToSockaddr6(sockaddr_storage* ss) const;
  std::string ToString() const;  // "198.18.1.2:80", "[fd00::1]:80"
  auto operator<=>(const Endpoint&) const = default;
};

// An address block: "10.0.0.0/8", "fd00::/64", or a single address ("198.18.1.2" = /32,
// "fd00::1" = /128). IPv4 blocks contain only IPv4 addresses, IPv6 blocks only IPv6 ones.
struct Cidr {
  IpAddr addr;         // masked to the prefix
  int prefix_len = 0;  // 0-32 for IPv4, 0-128 for IPv6

  // Errors quote the text: `not an IP address or CIDR: "10.0.0/8"`. Host bits set after the
  // prefix are accepted and masked, as Envoy does ("10.1.2.3/8" = 10.0.0.0/8).
  static absl::StatusOr<Cidr> Parse(std::string_view text);
  bool Contains(const IpAddr& ip) const;
  std::string ToString() const;  // "10.0.0.0/8"
  auto operator<=>(const Cidr&) const = default;
};

}  // namespace zm
