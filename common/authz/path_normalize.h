#pragma once
// The request path as the waypoint hands it to AuthorizationPolicy and to the backend
// (policy-semantics §2.4, §9.6), like Envoy's HTTP connection manager before any filter runs.
//
// BASE (always):
//   - the path must start with '/'; bytes <= 0x20, 0x7f and '#' (a fragment) are refused;
//     bytes >= 0x80 are percent-encoded;
//   - every %XX must be two hex digits (a malformed escape is refused: an ambiguous path never
//     reaches policy); %00 is refused; %XX of an unreserved character (A-Z a-z 0-9 - . _ ~) is
//     decoded once; other escapes stay, hex upper-cased (%2f -> %2F);
//   - '\' becomes '/';
//   - dot segments are removed (RFC 3986 §5.2.4), so `/a/../admin` and `/a/%2e%2e/admin` are
//     `/admin`; `..` above the root stays at the root.
// MERGE_SLASHES: then runs of '/' become one ('//admin' -> '/admin').
// DECODE_AND_MERGE_SLASHES: first %2F and %5C (any case) are decoded, then BASE and
// MERGE_SLASHES.
// The query ('?' and after) is kept byte for byte and never normalized.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace zm::authz {

enum class PathNormalization { kBase, kMergeSlashes, kDecodeAndMergeSlashes };

// "BASE", "MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES" (the mesh option's spelling).
std::string_view PathNormalizationName(PathNormalization mode);
absl::StatusOr<PathNormalization> ParsePathNormalization(std::string_view name);

// The normalized origin-form target (path and the untouched query). InvalidArgument naming the
// problem for a request the proxy answers with 400.
absl::StatusOr<std::string> NormalizePath(std::string_view target, PathNormalization mode);

// The path without its query: what `paths` rules match.
std::string_view PathWithoutQuery(std::string_view target);

}  // namespace zm::authz
