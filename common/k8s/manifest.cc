#include "common/k8s/manifest.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>

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

// Where an object sits, for sources and error texts.
class ObjectContext {
 public:
  ObjectContext(std::string_view file, int document, int item)
      : file_(file), document_(document), item_(item) {}

  void Name(std::string_view kind, std::string_view display) {
    object_ = StrCat(kind, " ", display);
  }
  void Error(std::string_view field, std::string_view message) {
    std::string where = StrCat(file_, ": document ", document_);
    if (item_ >= 0) where += StrCat(", items[", item_, "]");
    if (!object_.empty()) where += StrCat(" (", object_, ")");
    errors_.push_back(StrCat(where, ": ", field, ": ", message));
  }
  std::string Source() const {
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

StringMap StringMapField(const YAML::Node& metadata, const char* key, bool is_labels,
                         ObjectContext& ctx) {
  StringMap out;
  const std::string field = StrCat("metadata.", key);
  YAML::Node map = MapField(metadata, key, field, ctx);
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
    ctx.Error("metadata.name", StrCat("not a valid ", namespaced ? "DNS-1123 subdomain" : "DNS-1123 label",
                                      ": ", Quote(m.name)));
  }
  if (namespaced && !IsDnsLabel(m.namespace_name)) {
    ctx.Error("metadata.namespace", StrCat("not a valid DNS-1123 label: ", Quote(m.namespace_name)));
  }
  m.uid = ScalarField(meta, "uid", "metadata.uid", ctx);
  m.labels = StringMapField(meta, "labels", /*is_labels=*/true, ctx);
  m.annotations = StringMapField(meta, "annotations", /*is_labels=*/false, ctx);
  return m;
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

  YAML::Node status = MapField(doc, "status", "status", ctx);
  pod.phase = ScalarField(status, "phase", "status.phase", ctx);
  static constexpr std::string_view kPhases[] = {"Pending", "Running", "Succeeded", "Failed",
                                                 "Unknown"};
  if (!pod.phase.empty() && std::find(std::begin(kPhases), std::end(kPhases), pod.phase) ==
                                std::end(kPhases)) {
    ctx.Error("status.phase", StrCat("not a pod phase (Pending, Running, Succeeded, Failed, "
                                     "Unknown): ", Quote(pod.phase)));
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
  if (api_version != "v1" || (kind != "Pod" && kind != "Namespace")) {
    Log("k8s").debug("{}: skipping {} {}", ctx.Source(), api_version, kind);
    return;
  }
  if (kind == "Pod") {
    ParsePod(doc, ctx, out);
  } else {
    ParseNamespace(doc, ctx, out);
  }
  for (auto& e : ctx.errors()) out.errors.push_back(std::move(e));
}

}  // namespace

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
