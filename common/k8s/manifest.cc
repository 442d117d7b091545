#include "common/k8s/manifest.h"

#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <set>
#include <tuple>

#include "common/base/fd.h"
#include "common/base/ip.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/base/strings.h"

namespace zm::k8s {
namespace {

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

constexpr std::string_view kBadPortName =
    "not a valid port name (IANA service name: at most 15 lowercase alphanumerics and '-', at "
    "least one letter): ";

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

// Where an object sits, for sources and error texts. Document 0 is a single object that
// is not part of a file (ParseObject): its source is `file` as given.
class ObjectContext {
 public:
  ObjectContext(std::string_view file, int document, int item)
      : file_(file), document_(document), item_(item) {}

  void Name(std::string_view kind, std::string_view display) {
    object_ = StrCat(kind, " ", display);
  }
  void Error(std::string_view field, std::string_view message) {
    std::string where = file_;
    if (document_ > 0) where += StrCat(": document ", document_);
    if (item_ >= 0) where += StrCat(", items[", item_, "]");
    if (!object_.empty()) where += StrCat(" (", object_, ")");
    errors_.push_back(StrCat(where, ": ", field, ": ", message));
  }
  std::string Source() const {
    if (document_ == 0) return file_;
    std::string s = StrCat(file_, ":doc", document_);
    if (item_ >= 0) s += StrCat("/items[", item_, "]");
    return s;
  }
  bool failed() const { return !errors_.empty(); }
  std::vector<std::string>& errors() { return errors_; }

 private:
  std::string file_;
  int document_;
  int item_;
  std::string object_;
  std::vector<std::string> errors_;
};

// A scalar field as a string. Absent or null: `fallback`. Anything else: an error.
std::string ScalarField(const YAML::Node& parent, const char* key, std::string_view field,
                        ObjectContext& ctx, std::string_view fallback = "") {
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

struct Metadata {
  std::string name;
  std::string namespace_name;
  std::string uid;
  StringMap labels;
  StringMap annotations;
};

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

// "TCP" when absent; TCP, UDP or SCTP otherwise.
std::string ProtocolField(const YAML::Node& parent, std::string_view field, ObjectContext& ctx) {
  std::string protocol = ScalarField(parent, "protocol", field, ctx, "TCP");
  if (protocol != "TCP" && protocol != "UDP" && protocol != "SCTP") {
    ctx.Error(field, StrCat("not a protocol (TCP, UDP, SCTP): ", Quote(protocol)));
  }
  return protocol;
}

// A required port number field.
std::optional<uint16_t> PortField(const YAML::Node& parent, const char* key, std::string_view field,
                                  ObjectContext& ctx) {
  const YAML::Node node = parent.IsMap() ? parent[key] : YAML::Node();
  if (!node.IsDefined() || node.IsNull()) {
    ctx.Error(field, "missing");
    return std::nullopt;
  }
  auto port = node.IsScalar() && !IsQuoted(node) ? ParsePort(node.Scalar()) : std::nullopt;
  if (!port) {
    ctx.Error(field, StrCat("not a port (1-65535): ",
                            Quote(node.IsScalar() ? node.Scalar() : "(not a number)")));
  }
  return port;
}

// spec.containers[].ports[]: what named targetPorts of Services resolve against.
void ReadContainerPorts(const YAML::Node& spec, Pod& pod, ObjectContext& ctx) {
  YAML::Node containers = ListField(spec, "containers", "spec.containers", ctx);
  std::set<std::string> names;
  for (size_t i = 0; i < containers.size(); ++i) {
    const std::string cfield = StrCat("spec.containers[", i, "]");
    if (!containers[i].IsMap()) {
      ctx.Error(cfield, "not a mapping");
      continue;
    }
    YAML::Node ports = ListField(containers[i], "ports", StrCat(cfield, ".ports"), ctx);
    for (size_t j = 0; j < ports.size(); ++j) {
      const std::string field = StrCat(cfield, ".ports[", j, "]");
      if (!ports[j].IsMap()) {
        ctx.Error(field, "not a mapping");
        continue;
      }
      ContainerPort cp;
      cp.name = ScalarField(ports[j], "name", StrCat(field, ".name"), ctx);
      if (!cp.name.empty() && !IsIanaSvcName(cp.name)) {
        ctx.Error(StrCat(field, ".name"), StrCat(kBadPortName, Quote(cp.name)));
      } else if (!cp.name.empty() && !names.insert(cp.name).second) {
        ctx.Error(StrCat(field, ".name"), StrCat("duplicate port name ", Quote(cp.name)));
      }
      auto port = PortField(ports[j], "containerPort", StrCat(field, ".containerPort"), ctx);
      cp.protocol = ProtocolField(ports[j], StrCat(field, ".protocol"), ctx);
      if (port) {
        cp.port = *port;
        pod.container_ports.push_back(std::move(cp));
      }
    }
  }
}

void AddIp(Pod& pod, const std::string& text, std::string_view field, ObjectContext& ctx) {
  auto ip = IpAddr::Parse(text);
  if (!ip.ok()) {
    ctx.Error(field, std::string(ip.status().message()));
    return;
  }
  // Deduplicate by address, not text ("fd00::1" and "fd00:0::1" are one address).
  for (const std::string& have : pod.pod_ips) {
    if (*IpAddr::Parse(have) == *ip) return;
  }
  pod.pod_ips.push_back(text);
}

void ParsePod(const YAML::Node& doc, ObjectContext& ctx, ParsedFile& out) {
  Pod pod;
  Metadata m = ReadMetadata(doc, "Pod", /*namespaced=*/true, ctx);
  pod.name = m.name;
  pod.namespace_name = m.namespace_name;
  pod.uid = m.uid.empty() ? DerivedUid(m.namespace_name, m.name) : m.uid;
  pod.labels = std::move(m.labels);
  pod.annotations = std::move(m.annotations);

  YAML::Node spec = MapField(doc, "spec", "spec", ctx);
  std::string sa = ScalarField(spec, "serviceAccountName", "spec.serviceAccountName", ctx);
  // The deprecated alias, still accepted by the API server.
  if (sa.empty()) sa = ScalarField(spec, "serviceAccount", "spec.serviceAccount", ctx);
  if (!sa.empty()) {
    if (!IsDnsSubdomain(sa)) {
      ctx.Error("spec.serviceAccountName", StrCat("not a valid DNS-1123 subdomain: ", Quote(sa)));
    }
    pod.service_account = sa;
  }
  pod.node_name = ScalarField(spec, "nodeName", "spec.nodeName", ctx);
  if (!pod.node_name.empty() && !IsDnsSubdomain(pod.node_name)) {
    ctx.Error("spec.nodeName", StrCat("not a valid DNS-1123 subdomain: ", Quote(pod.node_name)));
  }

  ReadContainerPorts(spec, pod, ctx);

  YAML::Node status = MapField(doc, "status", "status", ctx);
  pod.phase = ScalarField(status, "phase", "status.phase", ctx);
  static constexpr std::string_view kPhases[] = {"Pending", "Running", "Succeeded", "Failed",
                                                 "Unknown"};
  if (!pod.phase.empty() &&
      std::find(std::begin(kPhases), std::end(kPhases), pod.phase) == std::end(kPhases)) {
    ctx.Error("status.phase", StrCat("not a pod phase (Pending, Running, Succeeded, Failed, "
                                     "Unknown): ",
                                     Quote(pod.phase)));
  }
  std::string pod_ip = ScalarField(status, "podIP", "status.podIP", ctx);
  if (!pod_ip.empty()) AddIp(pod, pod_ip, "status.podIP", ctx);
  if (status.IsMap()) {
    const YAML::Node ips = status["podIPs"];
    if (ips.IsDefined() && !ips.IsNull()) {
      if (!ips.IsSequence()) {
        ctx.Error("status.podIPs", "not a list");
      } else {
        for (size_t i = 0; i < ips.size(); ++i) {
          const std::string field = StrCat("status.podIPs[", i, "].ip");
          std::string ip = ScalarField(ips[i], "ip", field, ctx);
          if (!ips[i].IsMap()) {
            ctx.Error(StrCat("status.podIPs[", i, "]"), "not a mapping");
          } else if (ip.empty()) {
            ctx.Error(field, "missing");
          } else {
            AddIp(pod, ip, field, ctx);
          }
        }
      }
    }
  }
  pod.source = ctx.Source();
  if (!ctx.failed()) out.pods.push_back(std::move(pod));
}

void ParseService(const YAML::Node& doc, ObjectContext& ctx, ParsedFile& out) {
  Service svc;
  Metadata m = ReadMetadata(doc, "Service", /*namespaced=*/true, ctx);
  svc.name = m.name;
  svc.namespace_name = m.namespace_name;
  svc.labels = std::move(m.labels);
  svc.annotations = std::move(m.annotations);
  // Service names are stricter than other objects' (they become DNS labels).
  if (IsDnsSubdomain(svc.name) && !IsDns1035Label(svc.name)) {
    ctx.Error("metadata.name", StrCat("not a valid DNS-1035 label: ", Quote(svc.name)));
  }

  YAML::Node spec = MapField(doc, "spec", "spec", ctx);
  svc.type = ScalarField(spec, "type", "spec.type", ctx, "ClusterIP");
  static constexpr std::string_view kTypes[] = {"ClusterIP", "NodePort", "LoadBalancer",
                                                "ExternalName"};
  if (std::find(std::begin(kTypes), std::end(kTypes), svc.type) == std::end(kTypes)) {
    ctx.Error("spec.type", StrCat("not a Service type (ClusterIP, NodePort, LoadBalancer, "
                                  "ExternalName): ",
                                  Quote(svc.type)));
  }
  svc.selector = ReadStringMap(MapField(spec, "selector", "spec.selector", ctx), "spec.selector",
                               /*is_labels=*/true, ctx);

  // spec.clusterIP and spec.clusterIPs: the VIPs. "None" makes the Service headless.
  std::vector<IpAddr> vips;
  auto add_vip = [&](const std::string& text, std::string_view field) {
    auto ip = IpAddr::Parse(text);
    if (!ip.ok()) {
      ctx.Error(field, std::string(ip.status().message()));
      return;
    }
    if (std::find(vips.begin(), vips.end(), *ip) != vips.end()) return;
    vips.push_back(*ip);
    svc.cluster_ips.push_back(text);
  };
  svc.cluster_ip = ScalarField(spec, "clusterIP", "spec.clusterIP", ctx);
  if (!svc.cluster_ip.empty() && !svc.headless()) add_vip(svc.cluster_ip, "spec.clusterIP");
  YAML::Node ips = ListField(spec, "clusterIPs", "spec.clusterIPs", ctx);
  if (ips.size() > 2) ctx.Error("spec.clusterIPs", "at most two addresses (one per IP family)");
  for (size_t i = 0; i < ips.size() && i < 2; ++i) {
    const std::string field = StrCat("spec.clusterIPs[", i, "]");
    if (!ips[i].IsScalar()) {
      ctx.Error(field, "not a string");
      continue;
    }
    const std::string& text = ips[i].Scalar();
    if (i == 0 && !svc.cluster_ip.empty() && text != svc.cluster_ip) {
      ctx.Error(field,
                StrCat("must match spec.clusterIP ", Quote(svc.cluster_ip), ": ", Quote(text)));
      continue;
    }
    if (text == "None") {
      if (i != 0 || ips.size() != 1) ctx.Error(field, "\"None\" must be the only entry");
      if (svc.cluster_ip.empty()) svc.cluster_ip = "None";
      continue;
    }
    if (i == 0 && svc.cluster_ip.empty()) svc.cluster_ip = text;
    add_vip(text, field);
  }
  if (vips.size() == 2 && vips[0].is_v4() == vips[1].is_v4()) {
    ctx.Error("spec.clusterIPs", "two addresses of the same IP family");
  }
  if (svc.type == "ExternalName" && !vips.empty()) {
    ctx.Error("spec.clusterIP", "must be empty for type ExternalName");
  }

  YAML::Node ports = ListField(spec, "ports", "spec.ports", ctx);
  std::set<std::string> names;
  std::set<std::pair<uint16_t, std::string>> seen;
  for (size_t i = 0; i < ports.size(); ++i) {
    const std::string field = StrCat("spec.ports[", i, "]");
    const YAML::Node p = ports[i];
    if (!p.IsMap()) {
      ctx.Error(field, "not a mapping");
      continue;
    }
    ServicePort sp;
    sp.name = ScalarField(p, "name", StrCat(field, ".name"), ctx);
    if (sp.name.empty() && ports.size() > 1) {
      ctx.Error(StrCat(field, ".name"), "missing (required when the Service has several ports)");
    } else if (!sp.name.empty() && !IsDnsLabel(sp.name)) {
      ctx.Error(StrCat(field, ".name"), StrCat("not a valid DNS-1123 label: ", Quote(sp.name)));
    } else if (!sp.name.empty() && !names.insert(sp.name).second) {
      ctx.Error(StrCat(field, ".name"), StrCat("duplicate port name ", Quote(sp.name)));
    }
    auto port = PortField(p, "port", StrCat(field, ".port"), ctx);
    sp.protocol = ProtocolField(p, StrCat(field, ".protocol"), ctx);
    sp.app_protocol = ScalarField(p, "appProtocol", StrCat(field, ".appProtocol"), ctx);
    if (!port) continue;
    sp.port = *port;
    if (!seen.emplace(sp.port, sp.protocol).second) {
      ctx.Error(StrCat(field, ".port"), StrCat("duplicate port ", sp.port, "/", sp.protocol));
    }
    // targetPort: an int or a name (IntOrString); absent means the same as port.
    const YAML::Node target = p["targetPort"];
    if (!target.IsDefined() || target.IsNull()) {
      sp.target_port = sp.port;
    } else if (!target.IsScalar()) {
      ctx.Error(StrCat(field, ".targetPort"), "not a port number or a port name");
    } else if (auto n = IsQuoted(target) ? std::nullopt : ParsePort(target.Scalar())) {
      sp.target_port = *n;
    } else if (!IsQuoted(target) && ParseDecimal(target.Scalar(), UINT64_MAX / 10)) {
      ctx.Error(StrCat(field, ".targetPort"),
                StrCat("not a port (1-65535): ", Quote(target.Scalar())));
    } else if (!IsIanaSvcName(target.Scalar())) {
      ctx.Error(StrCat(field, ".targetPort"), StrCat(kBadPortName, Quote(target.Scalar())));
    } else {
      sp.target_port_name = target.Scalar();
    }
    svc.ports.push_back(std::move(sp));
  }
  svc.source = ctx.Source();
  if (!ctx.failed()) out.services.push_back(std::move(svc));
}

constexpr char kIstioSecurityGroup[] = "security.istio.io/";

// "UNSET" (and absent or null) ... "STRICT"; anything else is an error and reads as STRICT so
// that the object is rejected anyway.
PeerAuthenticationMode ReadMode(const YAML::Node& parent, std::string_view field,
                                ObjectContext& ctx) {
  std::string text = ScalarField(parent, "mode", field, ctx);
  for (auto mode : {PeerAuthenticationMode::kUnset, PeerAuthenticationMode::kDisable,
                    PeerAuthenticationMode::kPermissive, PeerAuthenticationMode::kStrict}) {
    if (text == PeerAuthenticationModeName(mode)) return mode;
  }
  if (!text.empty()) {
    // Case matters: the CRD schema's enum and Istio's proto parsing are case-sensitive.
    ctx.Error(field, StrCat("unknown mode ", Quote(text), " (UNSET, DISABLE, PERMISSIVE, STRICT)"));
  }
  return text.empty() ? PeerAuthenticationMode::kUnset : PeerAuthenticationMode::kStrict;
}

// security.istio.io/v1 and v1beta1 PeerAuthentication (policy-semantics §1.1, §3.1).
//
// Unknown fields anywhere in the object are errors naming the field, so that a typo
// (`mltls`, `portLevelMTLS`, `matchLabel`) never silently turns into a weaker policy. Istio
// rejects them too: its validating webhook unmarshals the spec strictly and denies the object
// with `unknown field "..."` (istio/istio#15054). Top-level keys other than apiVersion, kind,
// metadata, spec and status are rejected as well (`sepc:` would otherwise read as an empty spec).
void ParsePeerAuthentication(const YAML::Node& doc, const std::string& api_version,
                             ObjectContext& ctx, ParsedFile& out) {
  PeerAuthentication pa;
  pa.api_version = api_version;
  Metadata m = ReadMetadata(doc, "PeerAuthentication", /*namespaced=*/true, ctx);
  pa.name = m.name;
  // Without metadata kubectl would still put the object in "default": that is its scope.
  pa.namespace_name = m.namespace_name.empty() ? "default" : m.namespace_name;
  pa.labels = std::move(m.labels);
  pa.annotations = std::move(m.annotations);
  if (api_version != "security.istio.io/v1" && api_version != "security.istio.io/v1beta1") {
    ctx.Error("apiVersion", StrCat("unsupported version ", Quote(api_version),
                                   " (security.istio.io/v1, security.istio.io/v1beta1)"));
  }
  CheckKnownFields(doc, "", {"apiVersion", "kind", "metadata", "spec", "status"}, ctx);
  const YAML::Node meta = doc["metadata"];
  std::string created;
  if (meta.IsDefined() && meta.IsMap()) {
    created = ScalarField(meta, "creationTimestamp", "metadata.creationTimestamp", ctx);
  }
  if (!created.empty()) {
    pa.creation_time_ns = ParseRfc3339(created);
    if (!pa.creation_time_ns) {
      ctx.Error("metadata.creationTimestamp", StrCat("not an RFC 3339 time: ", Quote(created)));
    }
  }

  YAML::Node spec = MapField(doc, "spec", "spec", ctx);
  if (spec.IsMap()) {
    for (const auto& kv : spec) {
      const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "(not a string)";
      if (key == "targetRef" || key == "targetRefs") {
        ctx.Error(StrCat("spec.", key),
                  "not supported on PeerAuthentication (Istio has no "
                  "targetRefs for it; use spec.selector)");
      } else if (key != "selector" && key != "mtls" && key != "portLevelMtls") {
        ctx.Error(StrCat("spec.", key), "unknown field (known: selector, mtls, portLevelMtls)");
      }
    }
  }

  // The selector: if it cannot be read, the rejected policy's scope is the whole namespace.
  const size_t errors_before_selector = ctx.errors().size();
  YAML::Node selector = MapField(spec, "selector", "spec.selector", ctx);
  CheckKnownFields(selector, "spec.selector", {"matchLabels"}, ctx);
  pa.selector = ReadStringMap(MapField(selector, "matchLabels", "spec.selector.matchLabels", ctx),
                              "spec.selector.matchLabels", /*is_labels=*/true, ctx);
  const bool selector_ok = ctx.errors().size() == errors_before_selector;

  YAML::Node mtls = MapField(spec, "mtls", "spec.mtls", ctx);
  CheckKnownFields(mtls, "spec.mtls", {"mode"}, ctx);
  pa.mode = ReadMode(mtls, "spec.mtls.mode", ctx);

  const YAML::Node port_level = spec.IsMap() ? spec["portLevelMtls"] : YAML::Node();
  if (port_level.IsDefined() && !port_level.IsNull()) {
    if (!port_level.IsMap()) {
      ctx.Error("spec.portLevelMtls", "not a mapping");
    } else if (port_level.size() == 0) {
      ctx.Error("spec.portLevelMtls", "empty (leave it out, or list at least one port)");
    } else if (pa.selector.empty() && selector_ok) {
      // policy-semantics §3.1; Istio's validation says the same.
      ctx.Error("spec.portLevelMtls",
                "needs a non-empty spec.selector.matchLabels (port-level mTLS is not allowed on "
                "a namespace-wide or mesh-wide PeerAuthentication)");
    } else {
      for (const auto& kv : port_level) {
        const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "(not a string)";
        const std::string field = StrCat("spec.portLevelMtls[", Quote(key), "]");
        auto port = ParsePort(key);
        if (!port) {
          ctx.Error(field, "not a port number (1-65535)");
          continue;
        }
        if (!kv.second.IsNull() && !kv.second.IsMap()) {
          ctx.Error(field, "not a mapping");
          continue;
        }
        CheckKnownFields(kv.second, field, {"mode"}, ctx);
        PeerAuthenticationMode mode = ReadMode(kv.second, StrCat(field, ".mode"), ctx);
        if (!pa.port_level_mtls.emplace(*port, mode).second) {
          ctx.Error(field, StrCat("port ", *port, " listed twice"));
        }
      }
    }
  }

  pa.source = ctx.Source();
  if (!ctx.failed()) {
    out.peer_authentications.push_back(std::move(pa));
    return;
  }
  RejectedPeerAuthentication r{.name = pa.name,
                               .namespace_name = pa.namespace_name,
                               .selector = std::nullopt,
                               .source = pa.source,
                               .errors = ctx.errors()};
  if (selector_ok) r.selector = std::move(pa.selector);
  out.rejected_peer_authentications.push_back(std::move(r));
}

void ParseNamespace(const YAML::Node& doc, ObjectContext& ctx, ParsedFile& out) {
  Metadata m = ReadMetadata(doc, "Namespace", /*namespaced=*/false, ctx);
  if (ctx.failed()) return;
  out.namespaces.push_back(Namespace{.name = m.name,
                                     .labels = std::move(m.labels),
                                     .annotations = std::move(m.annotations),
                                     .source = ctx.Source()});
}

void ParseDocument(const YAML::Node& doc, std::string_view file, int document, int item,
                   ParsedFile& out, bool allow_list) {
  ObjectContext ctx(file, document, item);
  if (!doc.IsMap()) {
    ctx.Error("(object)", "not a mapping");
    for (auto& e : ctx.errors()) out.errors.push_back(std::move(e));
    return;
  }
  std::string kind = ScalarField(doc, "kind", "kind", ctx);
  std::string api_version = ScalarField(doc, "apiVersion", "apiVersion", ctx);
  if (!ctx.failed()) {
    if (kind.empty()) ctx.Error("kind", "missing");
    if (api_version.empty()) ctx.Error("apiVersion", "missing");
  }
  if (ctx.failed()) {
    for (auto& e : ctx.errors()) out.errors.push_back(std::move(e));
    return;
  }
  if (kind == "List" && allow_list) {
    const YAML::Node items = doc["items"];
    if (!items.IsDefined() || items.IsNull()) return;
    if (!items.IsSequence()) {
      ctx.Error("items", "not a list");
      for (auto& e : ctx.errors()) out.errors.push_back(std::move(e));
      return;
    }
    for (size_t i = 0; i < items.size(); ++i) {
      ParseDocument(items[i], file, document, static_cast<int>(i), out, /*allow_list=*/false);
    }
    return;
  }
  // A PeerAuthentication of any security.istio.io version is ours: a version we do not read is
  // rejected (and fails closed) rather than skipped, so a typo there cannot drop a policy.
  if (kind == "PeerAuthentication" && api_version.starts_with(kIstioSecurityGroup)) {
    ParsePeerAuthentication(doc, api_version, ctx, out);
  } else if (api_version == "v1" && kind == "Pod") {
    ParsePod(doc, ctx, out);
  } else if (api_version == "v1" && kind == "Namespace") {
    ParseNamespace(doc, ctx, out);
  } else if (api_version == "v1" && kind == "Service") {
    ParseService(doc, ctx, out);
  } else {
    Log("k8s").debug("{}: skipping {} {}", ctx.Source(), api_version, kind);
    return;
  }
  for (auto& e : ctx.errors()) out.errors.push_back(std::move(e));
}

}  // namespace

std::string_view PeerAuthenticationModeName(PeerAuthenticationMode mode) {
  switch (mode) {
    case PeerAuthenticationMode::kUnset:
      return "UNSET";
    case PeerAuthenticationMode::kDisable:
      return "DISABLE";
    case PeerAuthenticationMode::kPermissive:
      return "PERMISSIVE";
    case PeerAuthenticationMode::kStrict:
      return "STRICT";
  }
  return "UNSET";
}

std::string DerivedUid(std::string_view namespace_name, std::string_view name) {
  // FNV-1a 64 over "<len(namespace)>:namespace/name": stable across runs and builds, and
  // unambiguous whatever the names hold.
  uint64_t h = 14695981039346656037ull;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
  };
  mix(std::to_string(namespace_name.size()));
  mix(":");
  mix(namespace_name);
  mix("/");
  mix(name);
  return fmt::format("local-{:016x}", h);
}

absl::StatusOr<ParsedFile> ParseManifest(std::string_view content, std::string_view file_name) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(content));
  } catch (const YAML::Exception& e) {
    // yaml-cpp's marks are 0-based.
    return absl::InvalidArgumentError(StrCat(file_name, ": line ", e.mark.line + 1, ", column ",
                                             e.mark.column + 1, ": YAML error: ", e.msg));
  }
  ParsedFile out;
  int document = 0;
  for (const YAML::Node& doc : docs) {
    ++document;
    // An empty document (a trailing "---", only comments) holds nothing.
    if (!doc.IsDefined() || doc.IsNull()) continue;
    try {
      ParseDocument(doc, file_name, document, -1, out, /*allow_list=*/true);
    } catch (const YAML::Exception& e) {
      // Every access above checks the node type first; this is a backstop, never silent.
      out.errors.push_back(StrCat(file_name, ": document ", document, ": ", e.what()));
    }
  }
  return out;
}

absl::StatusOr<ParsedFile> ParseObject(std::string_view text, std::string_view source) {
  YAML::Node doc;
  try {
    doc = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(StrCat(source, ": line ", e.mark.line + 1, ", column ",
                                             e.mark.column + 1, ": YAML error: ", e.msg));
  }
  if (!doc.IsDefined() || doc.IsNull()) {
    return absl::InvalidArgumentError(StrCat(source, ": empty object"));
  }
  ParsedFile out;
  try {
    ParseDocument(doc, source, /*document=*/0, -1, out, /*allow_list=*/false);
  } catch (const YAML::Exception& e) {
    out.errors.push_back(StrCat(source, ": ", e.what()));
  }
  return out;
}

absl::StatusOr<std::string> ReadManifestBytes(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoError("open", path);
  std::string out;
  char buf[16384];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("read", path);
    if (n == 0) return out;
    if (out.size() + n > kMaxManifestBytes) {
      return absl::InvalidArgumentError(
          StrCat(path, ": larger than ", kMaxManifestBytes, " bytes, not read"));
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

absl::StatusOr<ParsedFile> ParseManifestFile(const std::string& path) {
  ZM_ASSIGN_OR_RETURN(std::string content, ReadManifestBytes(path));
  return ParseManifest(content, path);
}

}  // namespace zm::k8s
