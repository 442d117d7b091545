#include "common/authz/path_normalize.h"

#include <vector>

#include "common/base/strings.h"

namespace zm::authz {
namespace {

constexpr char kHex[] = "0123456789ABCDEF";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

absl::Status Bad(std::string_view what) {
  return absl::InvalidArgumentError(StrCat("request path: ", what));
}

// Percent-escapes checked and canonicalized; unreserved ones (and with `decode_slashes` %2F
// and %5C) decoded; '\' -> '/'.
absl::StatusOr<std::string> Canonicalize(std::string_view path, bool decode_slashes) {
  std::string out;
  out.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    const auto c = static_cast<unsigned char>(path[i]);
    if (c <= 0x20 || c == 0x7f) return Bad(StrCat("control character or space at offset ", i));
    if (c == '#') return Bad("a fragment ('#') is not allowed in a request");
    if (c >= 0x80) {
      out += {'%', kHex[c >> 4], kHex[c & 15]};
      continue;
    }
    if (c == '\\') {
      out += '/';
      continue;
    }
    if (c != '%') {
      out += static_cast<char>(c);
      continue;
    }
    if (i + 2 >= path.size()) {
      return Bad(StrCat("truncated percent-escape at offset ", i));
    }
    const int hi = HexValue(path[i + 1]), lo = HexValue(path[i + 2]);
    if (hi < 0 || lo < 0) return Bad(StrCat("malformed percent-escape at offset ", i));
    const auto decoded = static_cast<unsigned char>(hi * 16 + lo);
    i += 2;
    if (decoded == 0) return Bad("%00 (an encoded NUL) is not allowed");
    if (IsUnreserved(decoded)) {
      out += static_cast<char>(decoded);
    } else if (decode_slashes && (decoded == '/' || decoded == '\\')) {
      out += '/';
    } else {
      out += {'%', kHex[decoded >> 4], kHex[decoded & 15]};
    }
  }
  return out;
}

// RFC 3986 §5.2.4 over an absolute path: "." segments dropped, ".." drops the previous one.
std::string RemoveDotSegments(std::string_view path) {
  std::vector<std::string_view> segments;
  size_t start = 1;  // after the leading '/'
  bool trailing_slash = false;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view seg = path.substr(start, end - start);
    const bool last = end == path.size();
    if (seg == ".") {
      trailing_slash = last;
    } else if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
      trailing_slash = last;
    } else {
      segments.push_back(seg);
      trailing_slash = false;
    }
    start = end + 1;
  }
  std::string out;
  for (std::string_view seg : segments) out += StrCat("/", seg);
  if (out.empty() || trailing_slash) out += '/';
  return out;
}

std::string MergeSlashes(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  for (char c : path) {
    if (c == '/' && !out.empty() && out.back() == '/') continue;
    out += c;
  }
  return out;
}

}  // namespace

std::string_view PathNormalizationName(PathNormalization mode) {
  switch (mode) {
    case PathNormalization::kBase:
      return "BASE";
    case PathNormalization::kMergeSlashes:
      return "MERGE_SLASHES";
    case PathNormalization::kDecodeAndMergeSlashes:
      return "DECODE_AND_MERGE_SLASHES";
  }
  return "BASE";
}

absl::StatusOr<PathNormalization> ParsePathNormalization(std::string_view name) {
  for (auto mode : {PathNormalization::kBase, PathNormalization::kMergeSlashes,
                    PathNormalization::kDecodeAndMergeSlashes}) {
    if (name == PathNormalizationName(mode)) return mode;
  }
  return absl::InvalidArgumentError(StrCat("path normalization \"", name,
                                           "\": want BASE, MERGE_SLASHES or "
                                           "DECODE_AND_MERGE_SLASHES"));
}

std::string_view PathWithoutQuery(std::string_view target) {
  return target.substr(0, target.find('?'));
}

absl::StatusOr<std::string> NormalizePath(std::string_view target, PathNormalization mode) {
  const size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q);
  if (path.empty() || path.front() != '/') {
    return Bad(StrCat("\"", path.substr(0, 64), "\" does not start with '/'"));
  }
  for (size_t i = 0; i < query.size(); ++i) {
    const auto c = static_cast<unsigned char>(query[i]);
    if (c <= 0x20 || c == 0x7f) return Bad("control character or space in the query");
    if (c == '#') return Bad("a fragment ('#') is not allowed in a request");
  }
  auto canonical = Canonicalize(path, mode == PathNormalization::kDecodeAndMergeSlashes);
  if (!canonical.ok()) return canonical.status();
  std::string out = RemoveDotSegments(*canonical);
  if (mode != PathNormalization::kBase) out = MergeSlashes(out);
  out += query;
  return out;
}

}  // namespace zm::authz
