#pragma once
// Where tokens are found in a request (policy-semantics §4.2, with §9.5's case-insensitive
// Bearer scheme), and taking them out again (forwardOriginalToken: false). Pure functions over
// a minimal request model: no HTTP library.

#include <string>
#include <string_view>
#include <vector>

namespace zm::jwt {

struct HeaderEntry {
  std::string name;
  std::string value;
};

// The parts of an HTTP request the JWT code reads and edits. Header names compare ASCII
// case-insensitively; repeated headers stay separate entries, in order.
struct RequestView {
  std::string method;
  std::string path;  // origin-form, query included ("/a/b?x=1")
  std::vector<HeaderEntry> headers;

  // Every value of header `name`, in order.
  std::vector<std::string_view> HeaderValues(std::string_view name) const;
  bool HasHeader(std::string_view name) const;
  // Removes every entry named `name`.
  void RemoveHeader(std::string_view name);
  // Replaces every entry named `name` with one carrying `value`.
  void SetHeader(std::string_view name, std::string value);
};

bool HeaderNameEquals(std::string_view a, std::string_view b);

// A `fromHeaders` entry.
struct FromHeader {
  std::string name;
  std::string prefix;  // e.g. "Bearer "; "" takes the whole value
  bool operator==(const FromHeader&) const = default;
};

// A rule's fromHeaders / fromParams / fromCookies.
struct TokenLocations {
  std::vector<FromHeader> headers;
  std::vector<std::string> params;
  std::vector<std::string> cookies;

  bool empty() const { return headers.empty() && params.empty() && cookies.empty(); }
  bool operator==(const TokenLocations&) const = default;
};

// One place a token is read from, normalized so that equal places compare equal: header names
// lower-cased, a Bearer prefix (any case, with or without its space) spelled "Bearer ".
struct Location {
  enum class Kind { kHeader, kParam, kCookie };
  Kind kind = Kind::kHeader;
  std::string name;
  std::string prefix;  // headers only

  static Location Header(std::string_view name, std::string_view prefix);
  static Location Param(std::string_view name);
  static Location Cookie(std::string_view name);
  // "header authorization (prefix \"Bearer \")", "query parameter access_token", ...
  std::string ToString() const;
  friend bool operator==(const Location&, const Location&) = default;
};

// The places a rule reads: its own, or when it sets none, `Authorization: Bearer <token>` and
// `?access_token=<token>`. Duplicates removed.
std::vector<Location> EffectiveLocations(const TokenLocations& locations);

struct ExtractedToken {
  Location location;
  std::string token;
};

// Tokens at `location`:
//  - header: each entry of the header yields at most one token. With a prefix, the first
//    occurrence of the prefix anywhere in the value (case-sensitive, except the Bearer scheme
//    which is matched case-insensitively) is followed by the token: leading characters that
//    are not base64url or '.' are skipped and the longest run of such characters is taken. No
//    prefix in the value: no token. Without a prefix the whole value is the token.
//  - query parameter: the first parameter of that (URL-decoded) name, URL-decoded.
//  - cookie: the first cookie of that name in the Cookie header(s), surrounding quotes removed.
// Empty tokens are no tokens.
std::vector<ExtractedToken> ExtractTokens(const RequestView& request, const Location& location);

// Takes a token's location out of the request: the header is removed; every query parameter
// of that name is removed from the path (the rest of the path kept byte for byte); cookies
// are left alone, as upstream does.
void RemoveTokenLocation(RequestView& request, const Location& location);

// %XX decoding; malformed escapes are kept as they are, '+' stays '+'.
std::string UrlDecode(std::string_view in);

}  // namespace zm::jwt
