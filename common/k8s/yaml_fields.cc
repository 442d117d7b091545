#include "common/k8s/yaml_fields.h"

#include <algorithm>
#include <charconv>

#include "common/base/strings.h"

namespace zm::k8s::yaml {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z'); }

// RFC 1123 label: namespaces.
bool IsDnsLabel(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  if (!IsLowerAlnum(s.front()) || !IsLowerAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return IsLowerAlnum(c) || c == '-'; });
}

// RFC 1123 subdomain: pods, service accounts, nodes.
bool IsDnsSubdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    std::string_view part = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (part.empty() || !IsLowerAlnum(part.front()) || !IsLowerAlnum(part.back())) return false;
    if (!std::all_of(part.begin(), part.end(),
                     [](char c) { return IsLowerAlnum(c) || c == '-'; })) {
      return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// The name part of a label key, or a label value when non-empty.
bool IsLabelName(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  if (!IsAlnum(s.front()) || !IsAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsAlnum(c) || c == '-' || c == '_' || c == '.'; });
}

// "[prefix/]name", the syntax of label and annotation keys.
bool IsQualifiedName(std::string_view s) {
  size_t slash = s.find('/');
  if (slash == std::string_view::npos) return IsLabelName(s);
  return IsDnsSubdomain(s.substr(0, slash)) && IsLabelName(s.substr(slash + 1));
}

std::string Quote(std::string_view s) { return StrCat("\"", s, "\""); }

// RFC 1035 label: Service names.
bool IsDns1035Label(std::string_view s) {
  return IsDnsLabel(s) && s.front() >= 'a' && s.front() <= 'z';
}

// IANA_SVC_NAME (RFC 6335): container port names and named targetPorts. At most 15 lowercase
// alphanumerics and '-', at least one letter, no '-' at either end and no "--".
bool IsIanaSvcName(std::string_view s) {
  if (s.empty() || s.size() > 15 || s.front() == '-' || s.back() == '-') return false;
  if (s.find("--") != std::string_view::npos) return false;
  if (!std::all_of(s.begin(), s.end(), [](char c) { return IsLowerAlnum(c) || c == '-'; })) {
    return false;
  }
  return std::any_of(s.begin(), s.end(), [](char c) { return c >= 'a' && c <= 'z'; });
}

// A plain decimal number (no sign, no spaces); nullopt otherwise or beyond `max`.
std::optional<uint64_t> ParseDecimal(std::string_view s, uint64_t max) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v > max) return std::nullopt;
  return v;
}

// A port 1-65535 written as a decimal number.
std::optional<uint16_t> ParsePort(std::string_view s) {
  auto v = ParseDecimal(s, 65535);
  if (!v || *v == 0) return std::nullopt;
  return static_cast<uint16_t>(*v);
}

// A quoted YAML scalar ('80' or "80", and every JSON string) is a string even when it reads
// like a number: Kubernetes' IntOrString makes `targetPort: "8080"` a port *name*.
bool IsQuoted(const YAML::Node& node) { return node.Tag() == "!"; }

// RFC 3339 as Kubernetes writes metav1.Time ("2026-07-01T12:00:00Z", also with fractional
// seconds and a numeric offset). Nanoseconds since the epoch, nullopt when malformed.
std::optional<int64_t> ParseRfc3339(std::string_view s) {
  auto digits = [&s](size_t pos, size_t n) -> std::optional<int64_t> {
    if (pos + n > s.size()) return std::nullopt;
    int64_t v = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return std::nullopt;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  auto at = [&s](size_t pos, char c) { return pos < s.size() && s[pos] == c; };
  auto year = digits(0, 4), month = digits(5, 2), day = digits(8, 2);
  auto hour = digits(11, 2), minute = digits(14, 2), second = digits(17, 2);
  if (!year || !month || !day || !hour || !minute || !second || !at(4, '-') || !at(7, '-') ||
      !(at(10, 'T') || at(10, 't')) || !at(13, ':') || !at(16, ':')) {
    return std::nullopt;
  }
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (*year % 4 == 0 && *year % 100 != 0) || *year % 400 == 0;
  if (*month < 1 || *month > 12 || *day < 1 || *day > kDays[*month - 1] ||
      (*month == 2 && *day == 29 && !leap) || *hour > 23 || *minute > 59 || *second > 60) {
    return std::nullopt;
  }
  size_t pos = 19;
  int64_t nanos = 0;
  if (at(pos, '.')) {
    size_t start = ++pos;
    int64_t scale = 100000000;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      nanos += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }
  int64_t offset = 0;
  if (at(pos, 'Z') || at(pos, 'z')) {
    ++pos;
  } else if (at(pos, '+') || at(pos, '-')) {
    auto oh = digits(pos + 1, 2), om = digits(pos + 4, 2);
    if (!oh || !om || !at(pos + 3, ':') || *oh > 23 || *om > 59) return std::nullopt;
    offset = (at(pos, '+') ? 1 : -1) * (*oh * 3600 + *om * 60);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  // Days from 1970-01-01 (H. Hinnant's days_from_civil).
  int64_t y = *year - (*month <= 2 ? 1 : 0);
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (*month + (*month > 2 ? -3 : 9)) + 2) / 5 + *day - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = era * 146097 + doe - 719468;
  int64_t secs = days * 86400 + *hour * 3600 + *minute * 60 + *second - offset;
  return secs * 1000000000 + nanos;
}

// A scalar field as a string. Absent or null: `fallback`. Anything else: an error.
std::string ScalarField(const YAML::Node& parent, const char* key, std::string_view field,
                        ObjectContext& ctx, std::string_view fallback) {
  if (!parent.IsMap()) return std::string(fallback);
  const YAML::Node node = parent[key];
  if (!node.IsDefined() || node.IsNull()) return std::string(fallback);
  if (!node.IsScalar()) {
    ctx.Error(field, "not a string");
    return std::string(fallback);
  }
  return node.Scalar();
}

// A mapping field (absent or null: an empty node); anything else is an error.
YAML::Node MapField(const YAML::Node& parent, const char* key, std::string_view field,
                    ObjectContext& ctx) {
  if (!parent.IsMap()) return YAML::Node();
  const YAML::Node node = parent[key];
  if (!node.IsDefined() || node.IsNull()) return YAML::Node();
  if (!node.IsMap()) {
    ctx.Error(field, "not a mapping");
    return YAML::Node();
  }
  return node;
}

// A map of strings (labels, annotations, selectors) already looked up as `map`; `field` names it
// in errors. Label keys and, with `is_labels`, label values are validated.
StringMap ReadStringMap(const YAML::Node& map, std::string_view field, bool is_labels,
                        ObjectContext& ctx) {
  StringMap out;
  if (!map.IsMap()) return out;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) {
      ctx.Error(field, "a key is not a string");
      continue;
    }
    const std::string& k = kv.first.Scalar();
    const std::string entry = StrCat(field, "[", Quote(k), "]");
    if (!IsQualifiedName(k)) {
      ctx.Error(entry, "not a valid key ([prefix/]name, name: alphanumerics, '-', '_', '.')");
      continue;
    }
    std::string value;
    if (kv.second.IsScalar()) {
      value = kv.second.Scalar();
    } else if (!kv.second.IsNull()) {
      ctx.Error(entry, "value is not a string");
      continue;
    }
    if (is_labels && !value.empty() && !IsLabelName(value)) {
      ctx.Error(entry, StrCat("not a valid label value: ", Quote(value)));
      continue;
    }
    out[k] = std::move(value);
  }
  return out;
}

StringMap StringMapField(const YAML::Node& metadata, const char* key, bool is_labels,
                         ObjectContext& ctx) {
  const std::string field = StrCat("metadata.", key);
  return ReadStringMap(MapField(metadata, key, field, ctx), field, is_labels, ctx);
}

// Every key of `map` must be one of `known`; `prefix` ("spec.mtls") names the map in errors.
void CheckKnownFields(const YAML::Node& map, std::string_view prefix,
                      std::initializer_list<std::string_view> known, ObjectContext& ctx) {
  if (!map.IsMap()) return;
  for (const auto& kv : map) {
    std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string("(not a string)");
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string list;
    for (std::string_view k : known) list += StrCat(list.empty() ? "" : ", ", k);
    ctx.Error(prefix.empty() ? key : StrCat(prefix, ".", key),
              StrCat("unknown field (known: ", list, ")"));
  }
}

// Reads metadata; names the object in `ctx` as soon as its name is known.
Metadata ReadMetadata(const YAML::Node& doc, std::string_view kind, bool namespaced,
                      ObjectContext& ctx) {
  Metadata m;
  const YAML::Node meta = doc["metadata"];
  if (!meta.IsDefined() || meta.IsNull()) {
    ctx.Error("metadata", "missing");
    return m;
  }
  if (!meta.IsMap()) {
    ctx.Error("metadata", "not a mapping");
    return m;
  }
  m.name = ScalarField(meta, "name", "metadata.name", ctx);
  if (namespaced) m.namespace_name = ScalarField(meta, "namespace", "metadata.namespace", ctx);
  // kubectl's default for a manifest without a namespace.
  if (namespaced && m.namespace_name.empty()) m.namespace_name = "default";
  if (!m.name.empty()) ctx.Name(kind, namespaced ? StrCat(m.namespace_name, "/", m.name) : m.name);
  if (m.name.empty()) {
    ctx.Error("metadata.name", "missing");
  } else if (namespaced ? !IsDnsSubdomain(m.name) : !IsDnsLabel(m.name)) {
    ctx.Error("metadata.name",
              StrCat("not a valid ", namespaced ? "DNS-1123 subdomain" : "DNS-1123 label", ": ",
                     Quote(m.name)));
  }
  if (namespaced && !IsDnsLabel(m.namespace_name)) {
    ctx.Error("metadata.namespace",
              StrCat("not a valid DNS-1123 label: ", Quote(m.namespace_name)));
  }
  m.uid = ScalarField(meta, "uid", "metadata.uid", ctx);
  m.labels = StringMapField(meta, "labels", /*is_labels=*/true, ctx);
  m.annotations = StringMapField(meta, "annotations", /*is_labels=*/false, ctx);
  return m;
}

// A list field: absent or null is an empty (undefined) node, anything but a list an error.
YAML::Node ListField(const YAML::Node& parent, const char* key, std::string_view field,
                     ObjectContext& ctx) {
  if (!parent.IsMap()) return YAML::Node();
  const YAML::Node node = parent[key];
  if (!node.IsDefined() || node.IsNull()) return YAML::Node();
  if (!node.IsSequence()) {
    ctx.Error(field, "not a list");
    return YAML::Node();
  }
  return node;
}

}  // namespace zm::k8s::yaml
