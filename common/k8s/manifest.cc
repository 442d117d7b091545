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
#include "common/k8s/authorization_policy.h"
#include "common/k8s/request_authentication.h"
#include "common/k8s/yaml_fields.h"

namespace zm::k8s {
namespace {

using namespace yaml;  // NOLINT(google-build-using-namespace): the shared field readers

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
  } else if (kind == "AuthorizationPolicy" && api_version.starts_with(kIstioSecurityGroup)) {
    ParseAuthorizationPolicy(doc, api_version, ctx, out);
  } else if (kind == "RequestAuthentication" && api_version.starts_with(kIstioSecurityGroup)) {
    ParseRequestAuthentication(doc, api_version, ctx, out);
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
