#pragma once
// `zmeshctl explain` (DESIGN §9): which policy and rule decide a connection, at which hop,
// evaluated offline from manifests with the same code the data path runs
// (mesh::AuthorizeL4). The interface is stable: scripts depend on it.
//
//   zmeshctl explain --manifests PATH [--manifests PATH ...] [--root-namespace NS]
//       [--trust-domain TD] --to NAMESPACE/POD --port N
//       [--from-principal PRINCIPAL | --plaintext] [--from-ip IP] [--layer l4|l7]
//       [--via-waypoint NAME] [--method M] [--path P] [--host H] [--header NAME=VALUE ...]
//       [--jwt TOKEN] [--now UNIX_SECONDS] [--jwks ISSUER_OR_URI=FILE ...]
//       [--default-policy upstream|zero-trust] [-o table|json]
//
// `-o json` prints one object: {"decision": "allow"|"deny", "status": <int|null>,
// "hop": "ztunnel"|"waypoint", "policy": "<ns>/<name>"|null, "rule": <int|null>,
// "reason": "<words>"}. Exit status 0 whatever the decision; 2 on bad input (the error on
// stderr).
//
// --layer l7 (mesh::AuthorizeL7, the waypoint's code): the waypoint is --via-waypoint NAME (or
// NAMESPACE/NAME), else the destination pod's, else its namespace's `zmesh.io/use-waypoint`
// (exit 2 when none). The request is --method (GET), --path (/), --host, --header, --jwt (sent
// as `Authorization: Bearer`), checked at time --now (default: now). `jwksUri` key sets are
// not fetched: --jwks gives one from a file, by URI or issuer; without it a token for such a
// rule fails and the reason says so. "status" is the waypoint's answer: 200, 400 (malformed
// request), 401 (token), 403 (audience, or policy: `RBAC: access denied`). When the waypoint
// allows, the destination's ztunnel is evaluated next with the waypoint's identity
// (cluster.local/ns/<waypoint ns>/sa/<waypoint name>) as the source; if it refuses, "hop" is
// "ztunnel" and "status" 503 (the waypoint cannot connect upstream).

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
  std::vector<std::string> jwks_files;  // --jwks ISSUER_OR_URI=FILE (l7: jwksUri key sets)
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
// principal, IP or port, no waypoint for --layer l7, bad --now / --jwks, conflicting flags.
absl::StatusOr<ExplainResult> Explain(const ExplainOptions& options);

nlohmann::ordered_json ExplainJson(const ExplainResult& r);
std::string RenderExplain(const ExplainResult& r);

}  // namespace zm::cli
