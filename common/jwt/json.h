#pragma once
// JSON for tokens and key sets: nlohmann/json without exceptions, stricter than its defaults.

#include <nlohmann/json.hpp>
#include <string_view>

#include "absl/status/statusor.h"

namespace zm::jwt {

// Deepest nesting of objects/arrays accepted (claims are shallow; this bounds recursion in
// everything that later walks the value).
inline constexpr int kMaxJsonDepth = 32;

// Parses `text` as one JSON value: RFC 8259 syntax, valid UTF-8, no comments, at most
// kMaxJsonDepth levels, and no member name twice in one object (RFC 7515 §4 lets a JWS parser
// reject duplicate header names; we do so for the payload and JWKS too, so no two readers of
// a token can see different claims). InvalidArgument with the parser's reason otherwise.
absl::StatusOr<nlohmann::json> ParseJson(std::string_view text);

}  // namespace zm::jwt
