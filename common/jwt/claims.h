#pragma once
// JWT claims as AuthorizationPolicy reads them (policy-semantics §2.5) and as
// outputClaimToHeaders writes them (§4.6).

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace zm::jwt {

// "[a][b]" (the part after `request.auth.claims` in a `when` key) -> {"a", "b"}. A '.' inside a
// bracket is part of the name. InvalidArgument for anything else ("", "a", "[a", "[]", "[a]b").
absl::StatusOr<std::vector<std::string>> ParseClaimPath(std::string_view brackets);

// The values a claim offers to matching, or nullopt when it is absent: the path descends JSON
// objects; a string is one value, or several when it is a top-level claim named `scope`,
// `permission` or one of `space_delimited_claims` (split on whitespace, empty pieces dropped);
// a list yields its string elements; numbers, booleans, null and objects are absent.
std::optional<std::vector<std::string>> ClaimValues(
    const nlohmann::json& claims, const std::vector<std::string>& path,
    const std::vector<std::string>& space_delimited_claims = {});

// The header value outputClaimToHeaders writes for `claim` (nested with '.': "a.b"): strings
// as they are, integral numbers as integers, other numbers in shortest form, booleans as
// true/false. nullopt (header not written) when absent, for lists, objects and null, and for
// strings holding characters a header value cannot carry (CR, LF, NUL, other controls but TAB).
std::optional<std::string> ClaimHeaderValue(const nlohmann::json& claims, std::string_view claim);

}  // namespace zm::jwt
