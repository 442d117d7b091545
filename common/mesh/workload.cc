#include "common/mesh/workload.h"

#include <algorithm>
#include <charconv>
#include <tuple>

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
  for (const k8s::ContainerPort& cp : pod.container_ports) {
    w.ports.push_back(WorkloadPort{.name = cp.name, .port = cp.port, .protocol = cp.protocol});
  }
  for (const std::string& text : pod.pod_ips) {
    auto ip = IpAddr::Parse(text);
    if (!ip.ok()) {
      return absl::InvalidArgumentError(
          PodError(pod, "status.podIPs", std::string(ip.status().message())));
    }
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
      return absl::InvalidArgumentError(
          PodError(pod, field,
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
      return absl::InvalidArgumentError(
          PodError(pod, StrCat("annotation ", pl.key),
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

bool SelectorMatches(const std::map<std::string, std::string>& selector,
                     const std::map<std::string, std::string>& labels) {
  for (const auto& [key, value] : selector) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  return true;
}

namespace {

template <typename T>
const T* FindByNsName(const std::vector<T>& v, std::string_view ns, std::string_view name) {
  auto key = std::make_tuple(ns, name);
  auto it = std::lower_bound(v.begin(), v.end(), key, [](const T& o, const auto& k) {
    return std::make_tuple(std::string_view(o.ns), std::string_view(o.name)) < k;
  });
  return it != v.end() && it->ns == ns && it->name == name ? &*it : nullptr;
}

std::optional<MtlsMode> ToMtlsMode(k8s::PeerAuthenticationMode mode) {
  switch (mode) {
    case k8s::PeerAuthenticationMode::kUnset:
      return std::nullopt;
    case k8s::PeerAuthenticationMode::kDisable:
      return MtlsMode::kDisable;
    case k8s::PeerAuthenticationMode::kPermissive:
      return MtlsMode::kPermissive;
    case k8s::PeerAuthenticationMode::kStrict:
      return MtlsMode::kStrict;
  }
  return MtlsMode::kStrict;
}

// A Service and its endpoints: the running workloads with an address in its namespace whose
// labels match its selector (what the Kubernetes endpoints controller lists). A Service without
// a selector (or with an empty one) gets none; so does an ExternalName Service.
Service ServiceFrom(const k8s::Service& in, const std::vector<Workload>& workloads) {
  Service svc{.name = in.name,
              .ns = in.namespace_name,
              .type = in.type,
              .selector = in.selector,
              .source = in.source};
  for (const std::string& text : in.cluster_ips) {
    if (auto ip = IpAddr::Parse(text); ip.ok()) svc.vips.push_back(*ip);  // validated by k8s
  }
  for (const k8s::ServicePort& p : in.ports) {
    svc.ports.push_back(ServicePort{.name = p.name,
                                    .port = p.port,
                                    .target_port = p.target_port,
                                    .target_port_name = p.target_port_name,
                                    .protocol = p.protocol,
                                    .app_protocol = p.app_protocol});
  }
  if (svc.selector.empty() || svc.type == "ExternalName") return svc;
  for (const Workload& w : workloads) {
    if (w.ns != svc.ns || w.terminal() || w.ips.empty() ||
        !SelectorMatches(svc.selector, w.labels)) {
      continue;
    }
    ServiceEndpoint e{.workload_uid = w.uid, .workload = w.key(), .ips = w.ips};
    bool serves_any = svc.ports.empty();
    for (const ServicePort& p : svc.ports) {
      uint16_t target = p.target_port;
      if (!p.target_port_name.empty()) {
        target = 0;
        for (const WorkloadPort& wp : w.ports) {
          if (wp.name == p.target_port_name && wp.protocol == p.protocol) target = wp.port;
        }
      }
      serves_any = serves_any || target != 0;
      e.target_ports.push_back(target);
    }
    if (serves_any) svc.endpoints.push_back(std::move(e));
  }
  return svc;
}

}  // namespace

const Workload* Snapshot::FindWorkload(std::string_view ns, std::string_view name) const {
  return FindByNsName(workloads, ns, name);
}

const Service* Snapshot::FindService(std::string_view ns, std::string_view name) const {
  return FindByNsName(services, ns, name);
}

const Workload* Snapshot::FindWorkloadByIp(const IpAddr& ip) const {
  const Workload* found = nullptr;
  for (const Workload& w : workloads) {
    if (w.terminal() || std::find(w.ips.begin(), w.ips.end(), ip) == w.ips.end()) continue;
    if (found != nullptr) return nullptr;  // ambiguous
    found = &w;
  }
  return found;
}

const Service* Snapshot::FindServiceByVip(const IpAddr& vip) const {
  const Service* found = nullptr;
  for (const Service& s : services) {
    if (std::find(s.vips.begin(), s.vips.end(), vip) == s.vips.end()) continue;
    if (found != nullptr) return nullptr;  // ambiguous
    found = &s;
  }
  return found;
}

bool InMesh(const Snapshot& snapshot, std::string_view ns,
            const std::map<std::string, std::string>& pod_labels) {
  const Namespace* n = snapshot.FindNamespace(ns);
  if (n == nullptr) return false;
  auto mode = n->labels.find(std::string(kDataplaneModeLabel));
  if (mode == n->labels.end() || mode->second != kDataplaneModeAmbient) return false;
  auto opt = pod_labels.find(std::string(kDataplaneModeLabel));
  return opt == pod_labels.end() || opt->second != kDataplaneModeNone;
}

std::string WaypointOf(const Snapshot& snapshot, std::string_view ns,
                       const std::map<std::string, std::string>& pod_labels) {
  if (pod_labels.contains(std::string(kGatewayNameLabel))) return "";  // a waypoint itself
  std::string name;
  if (auto it = pod_labels.find(std::string(kUseWaypointLabel)); it != pod_labels.end()) {
    name = it->second;
  } else if (const Namespace* n = snapshot.FindNamespace(ns); n != nullptr) {
    if (auto l = n->labels.find(std::string(kUseWaypointLabel)); l != n->labels.end()) {
      name = l->second;
    }
  }
  if (name.empty() || name == "none") return "";
  return StrCat(ns, "/", name);
}

absl::StatusOr<std::optional<WaypointTarget>> ResolveWaypoint(
    const Snapshot& snapshot, const Workload& destination,
    const std::function<size_t(size_t)>& pick) {
  if (destination.waypoint.empty()) return std::nullopt;
  const std::string& key = destination.waypoint;
  const size_t slash = key.find('/');
  const Service* svc = snapshot.FindService(key.substr(0, slash), key.substr(slash + 1));
  if (svc == nullptr) {
    return absl::UnavailableError(
        StrCat(destination.key(), " uses waypoint ", key, ": no such Service"));
  }
  std::vector<WaypointTarget> running;
  for (const ServiceEndpoint& ep : svc->endpoints) {
    const size_t s = ep.workload.find('/');
    const Workload* w =
        snapshot.FindWorkload(ep.workload.substr(0, s), ep.workload.substr(s + 1));
    if (w == nullptr || w->terminal() || w->ips.empty()) continue;
    running.push_back(WaypointTarget{.service = key, .workload = w, .ip = w->ips.front()});
  }
  if (running.empty()) {
    return absl::UnavailableError(
        StrCat(destination.key(), " uses waypoint ", key, ": the Service has no running endpoint"));
  }
  return running[running.size() == 1 ? 0 : pick(running.size()) % running.size()];
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
  for (Workload& w : snap.workloads) {
    w.tunnel_protocol = InMesh(snap, w.ns, w.labels) && !w.terminal() ? TunnelProtocol::kHbone
                                                                      : TunnelProtocol::kNone;
    w.waypoint = WaypointOf(snap, w.ns, w.labels);
  }

  for (const k8s::Service& svc : objects.services) {
    snap.services.push_back(ServiceFrom(svc, snap.workloads));
  }
  std::sort(snap.services.begin(), snap.services.end(), by_key);

  for (const k8s::PeerAuthentication& in : objects.peer_authentications) {
    PeerAuthentication pa{.name = in.name,
                          .ns = in.namespace_name,
                          .selector = in.selector,
                          .mode = ToMtlsMode(in.mode),
                          .creation_time_ns = in.creation_time_ns,
                          .source = in.source};
    for (const auto& [port, mode] : in.port_level_mtls) pa.port_level[port] = ToMtlsMode(mode);
    snap.peer_authentications.push_back(std::move(pa));
  }
  std::sort(snap.peer_authentications.begin(), snap.peer_authentications.end(),
            [](const PeerAuthentication& a, const PeerAuthentication& b) {
              if (a.ns != b.ns) return a.ns < b.ns;
              return OlderPeerAuthentication(a, b);
            });
  for (const k8s::RejectedPeerAuthentication& in : objects.rejected_peer_authentications) {
    snap.rejected_peer_authentications.push_back(RejectedPeerAuthentication{
        .name = in.name,
        .ns = in.namespace_name,
        .selector = in.selector,
        .source = in.source,
        .error = in.errors.empty() ? std::string("rejected") : in.errors.front()});
  }
  std::stable_sort(snap.rejected_peer_authentications.begin(),
                   snap.rejected_peer_authentications.end(), by_key);
  snap.authorization_policies = objects.authorization_policies;
  snap.rejected_authorization_policies = objects.rejected_authorization_policies;
  for (const authz::AuthorizationPolicy& p : snap.authorization_policies) {
    for (const std::string& w : p.warnings) {
      snap.warnings.push_back(StrCat("AuthorizationPolicy ", p.key(), ": ", w));
    }
  }
  snap.request_authentications = objects.request_authentications;
  snap.rejected_request_authentications = objects.rejected_request_authentications;
  for (const jwt::RequestAuthentication& r : snap.request_authentications) {
    for (const std::string& w : r.warnings) {
      snap.warnings.push_back(StrCat("RequestAuthentication ", r.key(), ": ", w));
    }
  }

  // Warnings: legal, probably unintended.
  for (size_t i = 0; i < snap.peer_authentications.size();) {
    // Namespace-wide (mesh-wide in the root namespace) policies of one namespace, oldest first.
    const std::string& ns = snap.peer_authentications[i].ns;
    std::vector<std::string> wide;
    size_t j = i;
    for (; j < snap.peer_authentications.size() && snap.peer_authentications[j].ns == ns; ++j) {
      if (snap.peer_authentications[j].selector.empty()) {
        wide.push_back(snap.peer_authentications[j].name);
      }
    }
    if (wide.size() > 1) {
      std::string others;
      for (size_t k = 1; k < wide.size(); ++k) others += StrCat(k > 1 ? ", " : "", wide[k]);
      snap.warnings.push_back(StrCat("namespace ", ns, ": ", wide.size(),
                                     " PeerAuthentications without a selector; only the oldest, ",
                                     wide[0], ", applies (ignored: ", others, ")"));
    }
    i = j;
  }
  for (const Workload& w : snap.workloads) {
    std::vector<std::string> selecting;
    for (const PeerAuthentication& pa : snap.peer_authentications) {
      if (pa.ns == w.ns && !pa.selector.empty() && SelectorMatches(pa.selector, w.labels)) {
        selecting.push_back(pa.name);
      }
    }
    if (selecting.size() > 1) {
      std::string others;
      for (size_t k = 1; k < selecting.size(); ++k)
        others += StrCat(k > 1 ? ", " : "", selecting[k]);
      snap.warnings.push_back(StrCat("workload ", w.key(), ": selected by ", selecting.size(),
                                     " PeerAuthentications; only the oldest, ", selecting[0],
                                     ", applies (ignored: ", others, ")"));
    }
  }
  std::map<IpAddr, std::vector<std::string>> by_ip;
  for (const Workload& w : snap.workloads) {
    if (w.terminal()) continue;
    for (const IpAddr& ip : w.ips) by_ip[ip].push_back(w.key());
  }
  for (const Service& s : snap.services) {
    for (const IpAddr& ip : s.vips) by_ip[ip].push_back(StrCat("Service ", s.key()));
  }
  for (const auto& [ip, users] : by_ip) {
    if (users.size() < 2) continue;
    std::string list;
    for (const std::string& u : users) list += StrCat(list.empty() ? "" : ", ", u);
    snap.warnings.push_back(
        StrCat("address ", ip.ToString(), " is used by ", list, ": it resolves to none of them"));
  }
  return snap;
}

}  // namespace zm::mesh
