#pragma once
// The CONNECT `:authority` of HBONE: `<ipv4>:<port>` or `[<ipv6>]:<port>`, nothing else
// (no host names, no bracketed IPv4, no v4-mapped IPv6, port 1..65535).

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/base/ip.h"

namespace zm::hbone {

absl::StatusOr<Endpoint> ParseAuthority(std::string_view authority);
// The inverse: "10.0.0.1:80", "[fd00::1]:80".
std::string FormatAuthority(const Endpoint& endpoint);

}  // namespace zm::hbone
