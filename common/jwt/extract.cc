#include "common/jwt/extract.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "common/base/strings.h"

namespace zm::jwt {
namespace {

constexpr std::string_view kBearer = "Bearer ";

// Debian's Abseil has its own string_view.
absl::string_view A(std::string_view s) { return absl::string_view(s.data(), s.size()); }

bool IsBearerPrefix(std::string_view prefix) {
  return absl::EqualsIgnoreCase(A(prefix), "bearer ") ||
         absl::EqualsIgnoreCase(A(prefix), "bearer");
}

bool IsTokenChar(char c) { return absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.'; }

// Position of the first occurrence of `needle` in `hay`, ignoring ASCII case.
size_t FindIgnoreCase(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return std::string_view::npos;
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    if (absl::EqualsIgnoreCase(A(hay.substr(i, needle.size())), A(needle))) return i;
  }
  return std::string_view::npos;
}

// The token in a header value after a prefix, as Envoy's extractor takes it.
std::string_view TokenAfterPrefix(std::string_view value, std::string_view prefix) {
  size_t at = IsBearerPrefix(prefix) ? FindIgnoreCase(value, prefix) : value.find(prefix);
  if (at == std::string_view::npos) return {};
  std::string_view rest = value.substr(at + prefix.size());
  auto begin = std::find_if(rest.begin(), rest.end(), IsTokenChar);
  auto end = std::find_if_not(begin, rest.end(), IsTokenChar);
  return std::string_view(begin, end);
}

// The query of an origin-form path: after the first '?', before any '#'.
struct QuerySpan {
  size_t begin = std::string::npos;  // first byte after '?'
  size_t end = std::string::npos;
};
QuerySpan FindQuery(std::string_view path) {
  size_t q = path.find('?');
  if (q == std::string_view::npos) return {};
  size_t hash = path.find('#', q + 1);
  return {q + 1, hash == std::string_view::npos ? path.size() : hash};
}

// Splits "name=value" (no '=' => value "").
std::pair<std::string_view, std::string_view> SplitPair(std::string_view part, char sep) {
  size_t eq = part.find(sep);
  if (eq == std::string_view::npos) return {part, {}};
  return {part.substr(0, eq), part.substr(eq + 1)};
}

template <typename F>
void ForEachQueryParam(std::string_view query, F&& f) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    f(query.substr(pos, amp - pos));
    pos = amp + 1;
  }
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool HeaderNameEquals(std::string_view a, std::string_view b) {
  return absl::EqualsIgnoreCase(A(a), A(b));
}

std::vector<std::string_view> RequestView::HeaderValues(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& h : headers) {
    if (HeaderNameEquals(h.name, name)) out.push_back(h.value);
  }
  return out;
}

bool RequestView::HasHeader(std::string_view name) const {
  return std::any_of(headers.begin(), headers.end(),
                     [&](const HeaderEntry& h) { return HeaderNameEquals(h.name, name); });
}

void RequestView::RemoveHeader(std::string_view name) {
  std::erase_if(headers, [&](const HeaderEntry& h) { return HeaderNameEquals(h.name, name); });
}

void RequestView::SetHeader(std::string_view name, std::string value) {
  RemoveHeader(name);
  headers.push_back({std::string(name), std::move(value)});
}

Location Location::Header(std::string_view name, std::string_view prefix) {
  Location l;
  l.kind = Kind::kHeader;
  l.name = absl::AsciiStrToLower(A(name));
  l.prefix = IsBearerPrefix(prefix) ? std::string(kBearer) : std::string(prefix);
  return l;
}

Location Location::Param(std::string_view name) {
  Location l;
  l.kind = Kind::kParam;
  l.name = std::string(name);
  return l;
}

Location Location::Cookie(std::string_view name) {
  Location l;
  l.kind = Kind::kCookie;
  l.name = std::string(name);
  return l;
}

std::string Location::ToString() const {
  switch (kind) {
    case Kind::kHeader:
      return prefix.empty() ? StrCat("header ", name)
                            : StrCat("header ", name, " (prefix \"", prefix, "\")");
    case Kind::kParam:
      return StrCat("query parameter ", name);
    case Kind::kCookie:
      return StrCat("cookie ", name);
  }
  return name;
}

std::vector<Location> EffectiveLocations(const TokenLocations& locations) {
  std::vector<Location> out;
  auto add = [&](Location l) {
    if (std::find(out.begin(), out.end(), l) == out.end()) out.push_back(std::move(l));
  };
  if (locations.empty()) {
    add(Location::Header("Authorization", kBearer));
    add(Location::Param("access_token"));
    return out;
  }
  for (const auto& h : locations.headers) add(Location::Header(h.name, h.prefix));
  for (const auto& p : locations.params) add(Location::Param(p));
  for (const auto& c : locations.cookies) add(Location::Cookie(c));
  return out;
}

std::vector<ExtractedToken> ExtractTokens(const RequestView& request, const Location& location) {
  std::vector<ExtractedToken> out;
  auto add = [&](std::string_view token) {
    if (!token.empty()) out.push_back({location, std::string(token)});
  };
  switch (location.kind) {
    case Location::Kind::kHeader:
      for (std::string_view value : request.HeaderValues(location.name)) {
        add(location.prefix.empty() ? value : TokenAfterPrefix(value, location.prefix));
      }
      break;
    case Location::Kind::kParam: {
      QuerySpan q = FindQuery(request.path);
      if (q.begin == std::string::npos) break;
      bool found = false;
      ForEachQueryParam(std::string_view(request.path).substr(q.begin, q.end - q.begin),
                        [&](std::string_view part) {
                          if (found) return;
                          auto [name, value] = SplitPair(part, '=');
                          if (UrlDecode(name) != location.name) return;
                          found = true;
                          add(UrlDecode(value));
                        });
      break;
    }
    case Location::Kind::kCookie:
      for (std::string_view header : request.HeaderValues("cookie")) {
        size_t pos = 0;
        while (pos <= header.size()) {
          size_t semi = header.find(';', pos);
          if (semi == std::string_view::npos) semi = header.size();
          auto [name, value] = SplitPair(TrimOws(header.substr(pos, semi - pos)), '=');
          if (name == location.name) {
            if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
              value = value.substr(1, value.size() - 2);
            }
            add(value);
            return out;  // first cookie of that name wins, even if empty
          }
          pos = semi + 1;
        }
      }
      break;
  }
  return out;
}

void RemoveTokenLocation(RequestView& request, const Location& location) {
  switch (location.kind) {
    case Location::Kind::kHeader:
      request.RemoveHeader(location.name);
      return;
    case Location::Kind::kParam: {
      QuerySpan q = FindQuery(request.path);
      if (q.begin == std::string::npos) return;
      std::string_view path = request.path;
      std::string kept;
      ForEachQueryParam(path.substr(q.begin, q.end - q.begin), [&](std::string_view part) {
        if (UrlDecode(SplitPair(part, '=').first) == location.name) return;
        if (!kept.empty()) kept += '&';
        kept += part;
      });
      // "/p?" with nothing left becomes "/p".
      std::string rebuilt(path.substr(0, kept.empty() ? q.begin - 1 : q.begin));
      rebuilt += kept;
      rebuilt += path.substr(q.end);
      request.path = std::move(rebuilt);
      return;
    }
    case Location::Kind::kCookie:
      return;
  }
}

std::string UrlDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size()) {
      int hi = HexValue(in[i + 1]);
      int lo = HexValue(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(in[i]);
  }
  return out;
}

}  // namespace zm::jwt
