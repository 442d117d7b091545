#pragma once
// Value matching of AuthorizationPolicy fields (policy-semantics §2.2-§2.4): string matches,
// path templates and request principals. Pure functions, no allocation on the match path.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace zm::authz {

// §2.2: "abc" exact, "abc*" prefix, "*abc" suffix, "*" presence (non-empty). A `*` anywhere
// else is literal, except in a glob (namespaces, where upstream turns every `*` into `.*`).
class StringMatcher {
 public:
  enum class Kind { kExact, kPrefix, kSuffix, kPresence, kAny, kGlob };

  // `ignore_case`: hosts. `glob`: namespaces. `any_for_star`: request headers, where `*` means
  // "present", also with an empty value (Envoy's present_match).
  static StringMatcher Parse(std::string_view written, bool ignore_case = false, bool glob = false,
                             bool any_for_star = false);

  bool Matches(std::string_view value) const;
  Kind kind() const { return kind_; }
  const std::string& value() const { return value_; }

 private:
  Kind kind_ = Kind::kExact;
  std::string value_;  // without the '*'; lower-cased when ignore_case
  bool ignore_case_ = false;
  std::vector<std::string> glob_parts_;  // kGlob: the text between the '*'s
};

// Whether `written` is a path template (contains "{*}" or "{**}").
bool IsPathTemplate(std::string_view written);

// §2.4 path templates: "{*}" is exactly one non-empty segment, "{**}" any remainder (possibly
// empty, spanning segments), the last operator; literal segments may follow it.
//   "/allow/admin/{**}" matches "/allow/admin/" but not "/allow/admin";
//   "/store/{**}/cart" matches "/store//cart" but not "/store/cart".
class PathTemplate {
 public:
  // Errors say what is wrong: "{**} must be the last operator", "a segment holding an operator
  // may not hold anything else", "'*' outside an operator", "not an RFC 3986 path character".
  static absl::StatusOr<PathTemplate> Parse(std::string_view written);
  bool Matches(std::string_view path) const;

 private:
  struct Token {
    enum Kind { kLiteral, kOne, kAny } kind;
    std::string text;  // kLiteral
  };
  std::vector<Token> tokens_;
};

// §2.3 request principal values, split at the last '/' into an issuer and a subject test.
class RequestPrincipalMatcher {
 public:
  static RequestPrincipalMatcher Parse(std::string_view written);
  // `issuer` and `subject` of the verified token (either may be empty).
  bool Matches(std::string_view issuer, std::string_view subject) const;

 private:
  enum class Test { kNonEmpty, kEquals, kPrefix, kSuffix };
  Test iss_test_ = Test::kEquals;
  std::string iss_;
  Test sub_test_ = Test::kEquals;
  std::string sub_;
};

// Lower-case ASCII copy (host and header names).
std::string AsciiLower(std::string_view s);

}  // namespace zm::authz
