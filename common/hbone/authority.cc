#include "common/hbone/authority.h"

#include "common/base/strings.h"

namespace zm::hbone {

absl::StatusOr<Endpoint> ParseAuthority(std::string_view authority) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(StrCat("bad :authority '", authority, "': ", why));
  };
  size_t colon = authority.rfind(':');
  if (colon == std::string_view::npos) return bad("no port");
  std::string_view host = authority.substr(0, colon);
  std::string_view port_text = authority.substr(colon + 1);
  if (port_text.empty() || port_text.size() > 5) return bad("bad port");
  uint32_t port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9') return bad("bad port");
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port == 0 || port > 65535) return bad("port out of range");
  bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) host = host.substr(1, host.size() - 2);
  if (host.empty()) return bad("no address");
  bool has_colon = host.find(':') != std::string_view::npos;
  if (bracketed != has_colon) return bad("IPv6 must be bracketed, IPv4 must not");
  auto ip = IpAddr::Parse(host);
  if (!ip.ok()) return bad("not an IP address");
  if (bracketed && ip->is_v4()) return bad("v4-mapped IPv6");
  return Endpoint{.ip = *ip, .port = static_cast<uint16_t>(port)};
}

std::string FormatAuthority(const Endpoint& endpoint) { return endpoint.ToString(); }

}  // namespace zm::hbone
