#include "common/authz/match.h"

#include <algorithm>

#include "common/base/strings.h"

namespace zm::authz {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view lower_b) {
  if (a.size() != lower_b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower_b[i]) return false;
  }
  return true;
}

bool Eq(std::string_view a, std::string_view b, bool ignore_case) {
  return ignore_case ? EqualsIgnoreCase(a, b) : a == b;
}

// RFC 3986 pchar, without percent-encoding checks beyond the character set:
// unreserved / pct-encoded / sub-delims / ":" / "@".
bool IsPchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("-._~%!$&'()+,;=:@").find(c) != std::string_view::npos;
}

}  // namespace

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

StringMatcher StringMatcher::Parse(std::string_view written, bool ignore_case, bool glob,
                                   bool any_for_star) {
  StringMatcher m;
  m.ignore_case_ = ignore_case;
  std::string text = ignore_case ? AsciiLower(written) : std::string(written);
  if (text == "*") {
    m.kind_ = any_for_star ? Kind::kAny : Kind::kPresence;
    return m;
  }
  const size_t stars = static_cast<size_t>(std::count(text.begin(), text.end(), '*'));
  const bool inner =
      text.size() > 2 && text.substr(1, text.size() - 2).find('*') != std::string::npos;
  if (glob && (inner || stars > 1)) {
    // Upstream (namespaces at the sidecar/waypoint): every '*' is ".*".
    m.kind_ = Kind::kGlob;
    size_t start = 0;
    while (true) {
      size_t star = text.find('*', start);
      m.glob_parts_.push_back(
          text.substr(start, star == std::string::npos ? std::string::npos : star - start));
      if (star == std::string::npos) break;
      start = star + 1;
    }
    return m;
  }
  if (text.starts_with('*')) {
    m.kind_ = Kind::kSuffix;
    m.value_ = text.substr(1);
  } else if (text.ends_with('*')) {
    m.kind_ = Kind::kPrefix;
    m.value_ = text.substr(0, text.size() - 1);
  } else {
    m.kind_ = Kind::kExact;
    m.value_ = std::move(text);
  }
  return m;
}

bool StringMatcher::Matches(std::string_view v) const {
  switch (kind_) {
    case Kind::kAny:
      return true;
    case Kind::kPresence:
      return !v.empty();
    case Kind::kExact:
      return Eq(v, value_, ignore_case_);
    case Kind::kPrefix:
      return v.size() >= value_.size() && Eq(v.substr(0, value_.size()), value_, ignore_case_);
    case Kind::kSuffix:
      return v.size() >= value_.size() &&
             Eq(v.substr(v.size() - value_.size()), value_, ignore_case_);
    case Kind::kGlob: {
      // First part anchored at the start, last at the end, the middle ones in order.
      const std::string& first = glob_parts_.front();
      const std::string& last = glob_parts_.back();
      if (v.size() < first.size() + last.size()) return false;
      if (!Eq(v.substr(0, first.size()), first, ignore_case_)) return false;
      if (!Eq(v.substr(v.size() - last.size()), last, ignore_case_)) return false;
      std::string_view middle = v.substr(first.size(), v.size() - first.size() - last.size());
      for (size_t i = 1; i + 1 < glob_parts_.size(); ++i) {
        size_t at = middle.find(glob_parts_[i]);
        if (at == std::string_view::npos) return false;
        middle.remove_prefix(at + glob_parts_[i].size());
      }
      return true;
    }
  }
  return false;
}

bool IsPathTemplate(std::string_view written) {
  return written.find("{*}") != std::string_view::npos ||
         written.find("{**}") != std::string_view::npos;
}

absl::StatusOr<PathTemplate> PathTemplate::Parse(std::string_view written) {
  if (!written.starts_with('/')) {
    return absl::InvalidArgumentError("a path template must start with '/'");
  }
  PathTemplate t;
  bool seen_any = false;
  std::string literal;
  size_t pos = 1;
  literal = "/";
  while (pos <= written.size()) {
    size_t slash = written.find('/', pos);
    std::string_view segment =
        written.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    if (segment == "{*}" || segment == "{**}") {
      if (seen_any) return absl::InvalidArgumentError("{**} must be the last operator");
      if (!literal.empty()) t.tokens_.push_back(Token{Token::kLiteral, literal});
      literal.clear();
      if (segment == "{**}") {
        seen_any = true;
        t.tokens_.push_back(Token{Token::kAny, ""});
      } else {
        t.tokens_.push_back(Token{Token::kOne, ""});
      }
    } else {
      for (char c : segment) {
        if (c == '{' || c == '}') {
          return absl::InvalidArgumentError(StrCat(
              "a segment holding an operator may not hold anything else: \"", segment, "\""));
        }
        if (c == '*') {
          return absl::InvalidArgumentError(
              StrCat("'*' outside an operator in segment \"", segment, "\""));
        }
        if (!IsPchar(c)) {
          return absl::InvalidArgumentError(
              StrCat("not an RFC 3986 path character in segment \"", segment, "\": '", c, "'"));
        }
      }
      literal += segment;
    }
    if (slash == std::string_view::npos) break;
    literal += '/';
    pos = slash + 1;
  }
  if (!literal.empty()) t.tokens_.push_back(Token{Token::kLiteral, literal});
  return t;
}

bool PathTemplate::Matches(std::string_view path) const {
  size_t pos = 0;
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const Token& tok = tokens_[i];
    switch (tok.kind) {
      case Token::kLiteral:
        if (path.substr(pos, tok.text.size()) != tok.text) return false;
        pos += tok.text.size();
        break;
      case Token::kOne: {
        // One whole non-empty segment: up to the next '/' (the next token, if any, is a literal
        // starting with '/').
        size_t end = path.find('/', pos);
        if (end == std::string_view::npos) end = path.size();
        if (end == pos) return false;
        pos = end;
        break;
      }
      case Token::kAny: {
        // The last operator: what follows is literal and must end the path.
        std::string rest;
        for (size_t j = i + 1; j < tokens_.size(); ++j) rest += tokens_[j].text;
        return path.size() >= pos + rest.size() && path.ends_with(rest);
      }
    }
  }
  return pos == path.size();
}

RequestPrincipalMatcher RequestPrincipalMatcher::Parse(std::string_view written) {
  RequestPrincipalMatcher m;
  if (written == "*") {
    m.iss_test_ = m.sub_test_ = Test::kNonEmpty;
    return m;
  }
  const size_t slash = written.rfind('/');
  const bool has_slash = slash != std::string_view::npos;
  if (written.starts_with('*')) {
    if (has_slash) {
      std::string_view iss = written.substr(0, slash);
      if (iss == "*") {
        m.iss_test_ = Test::kNonEmpty;
      } else {
        m.iss_test_ = Test::kSuffix;
        m.iss_ = std::string(iss.substr(1));
      }
      m.sub_test_ = Test::kEquals;
      m.sub_ = std::string(written.substr(slash + 1));
    } else {
      m.iss_test_ = Test::kNonEmpty;
      m.sub_test_ = Test::kSuffix;
      m.sub_ = std::string(written.substr(1));
    }
  } else if (written.ends_with('*')) {
    if (has_slash) {
      m.iss_test_ = Test::kEquals;
      m.iss_ = std::string(written.substr(0, slash));
      std::string_view sub = written.substr(slash + 1);
      if (sub == "*") {
        m.sub_test_ = Test::kNonEmpty;
      } else {
        m.sub_test_ = Test::kPrefix;
        m.sub_ = std::string(sub.substr(0, sub.size() - 1));
      }
    } else {
      m.iss_test_ = Test::kPrefix;
      m.iss_ = std::string(written.substr(0, written.size() - 1));
      m.sub_test_ = Test::kNonEmpty;
    }
  } else if (has_slash) {
    m.iss_test_ = m.sub_test_ = Test::kEquals;
    m.iss_ = std::string(written.substr(0, slash));
    m.sub_ = std::string(written.substr(slash + 1));
  } else {
    // No '/': upstream builds an issuer-only exact match against "<value>" with an empty
    // subject, which a token with a subject never satisfies.
    m.iss_test_ = Test::kEquals;
    m.iss_ = std::string(written);
    m.sub_test_ = Test::kEquals;
  }
  return m;
}

bool RequestPrincipalMatcher::Matches(std::string_view issuer, std::string_view subject) const {
  auto test = [](Test t, std::string_view want, std::string_view v) {
    switch (t) {
      case Test::kNonEmpty:
        return !v.empty();
      case Test::kEquals:
        return v == want;
      case Test::kPrefix:
        return v.starts_with(want);
      case Test::kSuffix:
        return v.ends_with(want);
    }
    return false;
  };
  return test(iss_test_, iss_, issuer) && test(sub_test_, sub_, subject);
}

}  // namespace zm::authz
