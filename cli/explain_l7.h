#pragma once
// `zmeshctl explain --layer l7` (cli internal): the request at the waypoint through
// mesh::AuthorizeL7, then, when the waypoint lets it through, the destination's node tunnel at
// L4 seeing the waypoint's identity as the source (DESIGN §9).

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "cli/explain.h"
#include "common/authz/engine.h"
#include "common/base/clock.h"
#include "common/base/ip.h"
#include "common/mesh/workload.h"

namespace zm::cli {

// The l7 flags, checked before anything is evaluated (bad ones exit 2).
struct L7Inputs {
  std::string waypoint_ns, waypoint_name;
  std::string waypoint_source;  // how the waypoint was found, for the trace
  std::unique_ptr<FakeClock> now;  // --now; nullptr: the wall clock
  std::map<std::string, std::string> jwks;  // --jwks issuer or URI -> the file's JSON
};

absl::StatusOr<L7Inputs> ReadL7Inputs(const ExplainOptions& o, const mesh::Snapshot& snapshot,
                                      const mesh::Workload& destination);

void ExplainL7(const ExplainOptions& o, const mesh::Snapshot& snapshot,
               const authz::PolicySet& l4_policies, const mesh::Workload& destination,
               std::optional<std::string> principal, std::optional<IpAddr> from_ip,
               const L7Inputs& in, ExplainResult& r);

}  // namespace zm::cli
