#include "common/base/ip.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "common/base/strings.h"

namespace zm {

absl::StatusOr<IpAddr> IpAddr::Parse(std::string_view text) {
  std::string s(text);
  in_addr v4{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) return FromV4(v4.s_addr);
  in6_addr v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    IpAddr a;
    std::memcpy(a.bytes.data(), &v6, 16);
    return a;
  }
  return absl::InvalidArgumentError(StrCat("not an IP address: \"", text, "\""));
}

IpAddr IpAddr::FromV4(uint32_t net_order) {
  IpAddr a;
  a.bytes[10] = 0xff;
  a.bytes[11] = 0xff;
  std::memcpy(&a.bytes[12], &net_order, 4);
  return a;
}

IpAddr IpAddr::FromV6(const uint8_t (&b)[16]) {
  IpAddr a;
  std::memcpy(a.bytes.data(), b, 16);
  return a;
}

IpAddr IpAddr::FromSockaddr(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) {
    return FromV4(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr);
  }
  IpAddr a;
  std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, 16);
  return a;
}

bool IpAddr::is_v4() const {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(bytes.data(), kPrefix, 12) == 0;
}

bool IpAddr::is_loopback() const {
  if (is_v4()) return bytes[12] == 127;
  static constexpr uint8_t kLoop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return std::memcmp(bytes.data(), kLoop, 16) == 0;
}

bool IpAddr::is_unspecified() const {
  if (is_v4()) return v4_net_order() == 0;
  for (uint8_t b : bytes)
    if (b) return false;
  return true;
}

uint32_t IpAddr::v4_net_order() const {
  uint32_t v;
  std::memcpy(&v, &bytes[12], 4);
  return v;
}

std::string IpAddr::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  if (is_v4()) {
    in_addr v4{.s_addr = v4_net_order()};
    inet_ntop(AF_INET, &v4, buf, sizeof(buf));
  } else {
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof(buf));
  }
  return buf;
}

absl::StatusOr<Endpoint> Endpoint::FromSockaddr(const sockaddr_storage& ss) {
  Endpoint e;
  if (ss.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
    e.ip = IpAddr::FromV4(sin->sin_addr.s_addr);
    e.port = ntohs(sin->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    e.ip = IpAddr::FromSockaddr(reinterpret_cast<const sockaddr*>(sin6));
    e.port = ntohs(sin6->sin6_port);
  } else {
    return absl::InvalidArgumentError(StrCat("unexpected address family ", ss.ss_family));
  }
  return e;
}

socklen_t Endpoint::ToSockaddr(sockaddr_storage* ss) const {
  if (!ip.is_v4()) return ToSockaddr6(ss);
  std::memset(ss, 0, sizeof(*ss));
  auto* sin = reinterpret_cast<sockaddr_in*>(ss);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(port);
  sin->sin_addr.s_addr = ip.v4_net_order();
  return sizeof(sockaddr_in);
}

socklen_t Endpoint::ToSockaddr6(sockaddr_storage* ss) const {
  std::memset(ss, 0, sizeof(*ss));
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(ss);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  std::memcpy(&sin6->sin6_addr, ip.bytes.data(), 16);
  return sizeof(sockaddr_in6);
}

absl::StatusOr<Endpoint> Endpoint::Parse(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 >= text.size()) {
    return absl::InvalidArgumentError(StrCat("want HOST:PORT, got '", text, "'"));
  }
  std::string_view host = text.substr(0, colon);
  std::string_view port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  uint32_t port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9' || port > 65535) {
      return absl::InvalidArgumentError(StrCat("bad port in '", text, "'"));
    }
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port > 65535) return absl::InvalidArgumentError(StrCat("bad port in '", text, "'"));
  auto ip = IpAddr::Parse(host);
  if (!ip.ok()) return absl::InvalidArgumentError(StrCat("bad address in '", text, "'"));
  return Endpoint{.ip = *ip, .port = static_cast<uint16_t>(port)};
}

std::string Endpoint::ToString() const {
  if (ip.is_v4()) return StrCat(ip.ToString(), ":", port);
  return StrCat("[", ip.ToString(), "]:", port);
}

absl::StatusOr<Cidr> Cidr::Parse(std::string_view text) {
  auto bad = [&] {
    return absl::InvalidArgumentError(StrCat("not an IP address or CIDR: \"", text, "\""));
  };
  size_t slash = text.find('/');
  auto ip = IpAddr::Parse(text.substr(0, slash));
  if (!ip.ok()) return bad();
  const int family_bits = ip->is_v4() ? 32 : 128;
  int len = family_bits;
  if (slash != std::string_view::npos) {
    std::string_view digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3) return bad();
    len = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return bad();
      len = len * 10 + (c - '0');
    }
    if (len > family_bits) return bad();
  }
  Cidr out;
  out.prefix_len = len;
  out.addr = *ip;
  // Mask in the 16-byte (v4-mapped) form: an IPv4 prefix starts after the 96 mapped bits.
  const int bits = ip->is_v4() ? 96 + len : len;
  for (int i = 0; i < 16; ++i) {
    int keep = std::clamp(bits - i * 8, 0, 8);
    out.addr.bytes[i] &= static_cast<uint8_t>(keep == 0 ? 0 : 0xff << (8 - keep));
  }
  return out;
}

bool Cidr::Contains(const IpAddr& ip) const {
  if (ip.is_v4() != addr.is_v4()) return false;
  const int bits = addr.is_v4() ? 96 + prefix_len : prefix_len;
  for (int i = 0; i < 16; ++i) {
    int keep = std::clamp(bits - i * 8, 0, 8);
    if (keep == 0) return true;
    uint8_t mask = static_cast<uint8_t>(0xff << (8 - keep));
    if ((ip.bytes[i] & mask) != addr.bytes[i]) return false;
  }
  return true;
}

std::string Cidr::ToString() const { return StrCat(addr.ToString(), "/", prefix_len); }

}  // namespace zm
