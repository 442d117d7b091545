#pragma once
// Base64url (RFC 4648 §5) as JWS writes it: no padding, no line breaks.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace zm::jwt {

// Strict decoding: only [A-Za-z0-9_-]; no '=' padding, whitespace or '+'/'/'; a length that is
// not 1 mod 4; and zero bits after the last byte, so every byte string has exactly one accepted
// spelling. InvalidArgument naming the offending offset otherwise. An empty input decodes to "".
absl::StatusOr<std::string> Base64UrlDecode(std::string_view in);

// Unpadded base64url of `bytes`.
std::string Base64UrlEncode(std::string_view bytes);

}  // namespace zm::jwt
