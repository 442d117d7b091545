#pragma once
// `zmeshctl explain` (DESIGN §9): which policy and rule decide a connection, at which hop,
// evaluated offline from manifests with the same code the data path runs
// (mesh::AuthorizeL4). The interface is stable: scripts depend on it.
//
//   zmeshctl explain --manifests PATH [--manifests PATH ...] [--root-namespace NS]
//       [--trust-domain TD] --to NAMESPACE/POD --port N
//       [--from-principal PRINCIPAL | --plaintext] [--from-ip IP] [--layer l4|l7]
//       [--via-waypoint NAME] [--method M] [--path P] [--host H] [--header NAME=VALUE ...]
//       [--jwt TOKEN] [--now UNIX_SECONDS] [--default-policy upstream|zero-trust]
//       [-o table|json]
//
// `-o json` prints one object: {"decision": "allow"|"deny", "status": <int|null>,
// "hop": "ztunnel"|"waypoint", "policy": "<ns>/<name>"|null, "rule": <int|null>,
// "reason": "<words>"}. Exit status 0 whatever the decision; 2 on bad input (the error on
// stderr).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace zm::cli {

struct ExplainOptions {
  std::vector<std::string> manifests;
  std::string root_namespace = "zmesh-system";
  std::string trust_domain = "cluster.local";
  std::string to;  // "namespace/pod"
  int port = 0;
  std::optional<std::string> from_principal;  // as written in policies (scheme optional)
  bool plaintext = false;
  std::optional<std::string> from_ip;
  std::string layer = "l4";
  std::optional<std::string> via_waypoint;
  // L7 request attributes (the waypoint's; at L4 they are not visible and noted as such).
  std::optional<std::string> method, path, host, jwt, now;
  std::vector<std::string> headers;  // NAME=VALUE
  std::string default_policy = "upstream";
};

struct ExplainResult {
  bool allowed = true;
  std::optional<int> status;  // HTTP status at the waypoint; null at L4
  std::string hop = "ztunnel";
  std::optional<std::string> policy;
  std::optional<int> rule;
  std::string reason;
  // For the table: how the hop got there, and what the manifests warn about.
  std::vector<std::string> trace;
  std::vector<std::string> warnings;
};

// InvalidArgument (exit 2) for bad input: unreadable manifests, an unknown pod, a malformed
// principal, IP or port, `--layer l7` (no waypoint yet), conflicting flags.
absl::StatusOr<ExplainResult> Explain(const ExplainOptions& options);

nlohmann::ordered_json ExplainJson(const ExplainResult& r);
std::string RenderExplain(const ExplainResult& r);

}  // namespace zm::cli
