#include "common/mesh/workload.h"

#include <algorithm>
#include <charconv>

#include "common/base/strings.h"

namespace zm::mesh {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string PodError(const k8s::Pod& pod, std::string_view field, std::string_view message) {
  return StrCat("pod ", pod.key(), ": ", field, ": ", message);
}

}  // namespace

std::string Workload::identity() const {
  return StrCat("spiffe://", kTrustDomain, "/ns/", ns, "/sa/", service_account);
}

absl::StatusOr<std::vector<uint16_t>> ParsePortList(std::string_view text) {
  std::vector<uint16_t> ports;
  if (Trim(text).empty()) return ports;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string_view item =
        Trim(text.substr(start, comma == std::string_view::npos ? text.npos : comma - start));
    unsigned value = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size() || value == 0 ||
        value > 65535) {
      return absl::InvalidArgumentError(StrCat("\"", item, "\" is not a port (1-65535)"));
    }
    ports.push_back(static_cast<uint16_t>(value));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  std::sort(ports.begin(), ports.end());
  ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
  return ports;
}

absl::StatusOr<Workload> WorkloadFromPod(const k8s::Pod& pod) {
  Workload w{
      .uid = pod.uid,
      .name = pod.name,
      .ns = pod.namespace_name,
      .service_account = pod.service_account.empty() ? "default" : pod.service_account,
      .node = pod.node_name,
      .phase = pod.phase,
      .labels = pod.labels,
      .annotations = pod.annotations,
  };
  for (const std::string& text : pod.pod_ips) {
    auto ip = IpAddr::Parse(text);
    if (!ip.ok()) return absl::InvalidArgumentError(PodError(pod, "status.podIPs", std::string(ip.status().message())));
    if (std::find(w.ips.begin(), w.ips.end(), *ip) == w.ips.end()) w.ips.push_back(*ip);
  }
  auto annotation = [&](std::string_view key) -> const std::string* {
    auto it = pod.annotations.find(std::string(key));
    return it == pod.annotations.end() ? nullptr : &it->second;
  };
  if (const std::string* netns = annotation(kNetnsAnnotation)) {
    const std::string field = StrCat("annotation ", kNetnsAnnotation);
    if (netns->empty()) return absl::InvalidArgumentError(PodError(pod, field, "empty"));
    bool is_path = netns->find('/') != std::string::npos;
    if (is_path && netns->front() != '/') {
      return absl::InvalidArgumentError(PodError(
          pod, field,
          StrCat("\"", *netns, "\" is neither an absolute path nor an `ip netns` name")));
    }
    if (!is_path && (*netns == "." || *netns == "..")) {
      return absl::InvalidArgumentError(
          PodError(pod, field, StrCat("\"", *netns, "\" is not an `ip netns` name")));
    }
    w.netns = *netns;
  }
  struct {
    std::string_view key;
    std::vector<uint16_t>* out;
  } port_lists[] = {{kExcludeOutboundPortsAnnotation, &w.exclude_outbound_ports},
                    {kExcludeInboundPortsAnnotation, &w.exclude_inbound_ports}};
  for (const auto& pl : port_lists) {
    const std::string* text = annotation(pl.key);
    if (text == nullptr) continue;
    auto ports = ParsePortList(*text);
    if (!ports.ok()) {
      return absl::InvalidArgumentError(PodError(pod, StrCat("annotation ", pl.key),
                                                 StrCat("\"", *text, "\": ", std::string(ports.status().message()))));
    }
    *pl.out = std::move(*ports);
  }
  return w;
}

const Namespace* Snapshot::FindNamespace(std::string_view name) const {
  auto it = std::lower_bound(namespaces.begin(), namespaces.end(), name,
                             [](const Namespace& n, std::string_view v) { return n.name < v; });
  return it != namespaces.end() && it->name == name ? &*it : nullptr;
}

Snapshot BuildSnapshot(const k8s::ManifestSnapshot& objects) {
  Snapshot snap;
  snap.errors = objects.errors;
  for (const k8s::Namespace& ns : objects.namespaces) {
    snap.namespaces.push_back(Namespace{.name = ns.name, .labels = ns.labels});
  }
  std::sort(snap.namespaces.begin(), snap.namespaces.end(),
            [](const Namespace& a, const Namespace& b) { return a.name < b.name; });
  for (const k8s::Pod& pod : objects.pods) {
    auto w = WorkloadFromPod(pod);
    if (w.ok()) {
      snap.workloads.push_back(std::move(*w));
      continue;
    }
    std::string error(w.status().message());
    snap.errors.push_back(StrCat(pod.source, ": ", error));
    snap.rejected.push_back(RejectedPod{.uid = pod.uid,
                                        .name = pod.name,
                                        .ns = pod.namespace_name,
                                        .node = pod.node_name,
                                        .labels = pod.labels,
                                        .error = std::move(error)});
  }
  auto by_key = [](const auto& a, const auto& b) {
    return std::tie(a.ns, a.name) < std::tie(b.ns, b.name);
  };
  std::sort(snap.workloads.begin(), snap.workloads.end(), by_key);
  std::sort(snap.rejected.begin(), snap.rejected.end(), by_key);
  return snap;
}

}  // namespace zm::mesh
