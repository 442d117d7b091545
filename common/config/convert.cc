#include "common/config/convert.h"

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <tuple>
#include <utility>

#include "common/base/status.h"
#include "common/base/strings.h"

namespace zm::config {
namespace {

std::string AddrBytes(const IpAddr& ip) {
  if (ip.is_v4()) {
    uint32_t v4 = ip.v4_net_order();
    return std::string(reinterpret_cast<const char*>(&v4), 4);
  }
  return std::string(reinterpret_cast<const char*>(ip.bytes.data()), 16);
}

absl::StatusOr<IpAddr> AddrFromBytes(const std::string& b, std::string_view what) {
  if (b.size() == 4) {
    uint32_t v4;
    std::memcpy(&v4, b.data(), 4);
    return IpAddr::FromV4(v4);
  }
  if (b.size() == 16) {
    uint8_t v6[16];
    std::memcpy(v6, b.data(), 16);
    return IpAddr::FromV6(v6);
  }
  return absl::InvalidArgumentError(
      StrCat(what, ": address of ", b.size(), " bytes (want 4 or 16)"));
}

template <typename Repeated>
absl::StatusOr<std::vector<IpAddr>> AddrsFromBytes(const Repeated& in, std::string_view what) {
  std::vector<IpAddr> out;
  out.reserve(in.size());
  for (const std::string& b : in) {
    ZM_ASSIGN_OR_RETURN(IpAddr ip, AddrFromBytes(b, what));
    out.push_back(ip);
  }
  return out;
}

absl::StatusOr<uint16_t> Port(uint32_t v, std::string_view what, bool zero_ok) {
  if (v > 65535 || (!zero_ok && v == 0)) {
    return absl::InvalidArgumentError(StrCat(what, ": ", v, " is not a port"));
  }
  return static_cast<uint16_t>(v);
}

template <typename Repeated>
absl::StatusOr<std::vector<uint16_t>> Ports(const Repeated& in, std::string_view what,
                                            bool zero_ok) {
  std::vector<uint16_t> out;
  out.reserve(in.size());
  for (uint32_t v : in) {
    ZM_ASSIGN_OR_RETURN(uint16_t p, Port(v, what, zero_ok));
    out.push_back(p);
  }
  return out;
}

template <typename PbMap>
std::map<std::string, std::string> ToStdMap(const PbMap& m) {
  return std::map<std::string, std::string>(m.begin(), m.end());
}

template <typename PbMap>
void FillMap(const std::map<std::string, std::string>& in, PbMap* out) {
  for (const auto& [k, v] : in) (*out)[k] = v;
}

v1::PeerAuthentication::Mode ModeToProto(const std::optional<mesh::MtlsMode>& m) {
  if (!m) return v1::PeerAuthentication::UNSET;
  switch (*m) {
    case mesh::MtlsMode::kStrict:
      return v1::PeerAuthentication::STRICT;
    case mesh::MtlsMode::kPermissive:
      return v1::PeerAuthentication::PERMISSIVE;
    case mesh::MtlsMode::kDisable:
      return v1::PeerAuthentication::DISABLE;
  }
  return v1::PeerAuthentication::STRICT;
}

// Unknown numbers (a newer agent) fail closed: STRICT.
std::optional<mesh::MtlsMode> ModeFromProto(int m) {
  switch (m) {
    case v1::PeerAuthentication::UNSET:
      return std::nullopt;
    case v1::PeerAuthentication::DISABLE:
      return mesh::MtlsMode::kDisable;
    case v1::PeerAuthentication::PERMISSIVE:
      return mesh::MtlsMode::kPermissive;
    default:
      return mesh::MtlsMode::kStrict;
  }
}

std::pair<std::string, std::string> SplitKey(const std::string& key) {
  size_t slash = key.find('/');
  if (slash == std::string::npos) return {key, ""};
  return {key.substr(0, slash), key.substr(slash + 1)};
}

bool Same(const google::protobuf::Message& a, const google::protobuf::Message& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

// Upserts and removals for one kind, keyed by the wire key.
template <typename Proto, typename RepeatedOut>
void Diff(const std::map<std::string, Proto>& before, const std::map<std::string, Proto>& after,
          RepeatedOut* upserts, google::protobuf::RepeatedPtrField<std::string>* removed) {
  for (const auto& [key, p] : after) {
    auto it = before.find(key);
    if (it == before.end() || !Same(it->second, p)) *upserts->Add() = p;
  }
  for (const auto& [key, p] : before) {
    if (!after.contains(key)) *removed->Add() = key;
  }
}

v1::ValueList ValueListToProto(const authz::ValueList& vl) {
  v1::ValueList p;
  for (const std::string& v : vl.values) p.add_values(v);
  for (const std::string& v : vl.not_values) p.add_not_values(v);
  return p;
}

authz::ValueList ValueListFromProto(const v1::ValueList& p) {
  return authz::ValueList{.values = {p.values().begin(), p.values().end()},
                          .not_values = {p.not_values().begin(), p.not_values().end()}};
}

// A source or an operation through its field table.
template <typename Obj, typename Fields>
v1::AuthorizationPolicy::Fields FieldsToProto(const Obj& obj, const Fields& fields) {
  v1::AuthorizationPolicy::Fields out;
  for (const auto& f : fields) {
    const authz::ValueList& vl = obj.*f.member;
    if (!vl.empty()) (*out.mutable_fields())[std::string(f.name)] = ValueListToProto(vl);
  }
  return out;
}

template <typename Obj, typename Fields>
absl::Status FieldsFromProto(const v1::AuthorizationPolicy::Fields& in, const Fields& fields,
                             Obj& obj, std::string_view what) {
  for (const auto& [name, vl] : in.fields()) {
    auto f =
        std::find_if(fields.begin(), fields.end(), [&](const auto& f) { return f.name == name; });
    if (f == fields.end()) {
      return absl::InvalidArgumentError(StrCat(what, ": unknown field \"", name, "\""));
    }
    obj.*(f->member) = ValueListFromProto(vl);
  }
  return absl::OkStatus();
}

v1::AuthorizationPolicy::Action ActionToProto(authz::Action a) {
  switch (a) {
    case authz::Action::kAllow:
      return v1::AuthorizationPolicy::ALLOW;
    case authz::Action::kDeny:
      return v1::AuthorizationPolicy::DENY;
    case authz::Action::kAudit:
      return v1::AuthorizationPolicy::AUDIT;
    case authz::Action::kCustom:
      return v1::AuthorizationPolicy::CUSTOM;
  }
  return v1::AuthorizationPolicy::DENY;
}

std::optional<authz::Action> ActionFromProto(int a) {
  switch (a) {
    case v1::AuthorizationPolicy::ALLOW:
      return authz::Action::kAllow;
    case v1::AuthorizationPolicy::DENY:
      return authz::Action::kDeny;
    case v1::AuthorizationPolicy::AUDIT:
      return authz::Action::kAudit;
    case v1::AuthorizationPolicy::CUSTOM:
      return authz::Action::kCustom;
    default:
      return std::nullopt;
  }
}

v1::DefaultPolicy DefaultPolicyToProto(mesh::DefaultPolicy d) {
  return d == mesh::DefaultPolicy::kZeroTrust ? v1::ZERO_TRUST : v1::UPSTREAM;
}

// Unknown numbers (a newer agent) read as the stricter default.
mesh::DefaultPolicy DefaultPolicyFromProto(int d) {
  return d == v1::UPSTREAM ? mesh::DefaultPolicy::kUpstream : mesh::DefaultPolicy::kZeroTrust;
}

}  // namespace

v1::AuthorizationPolicy AuthorizationPolicyToProto(const authz::AuthorizationPolicy& p) {
  v1::AuthorizationPolicy out;
  out.set_name(p.name);
  out.set_namespace_(p.ns);
  out.set_has_selector(p.selector.has_value());
  if (p.selector) FillMap(*p.selector, out.mutable_selector());
  for (const authz::TargetRef& r : p.target_refs) {
    auto* t = out.add_target_refs();
    t->set_group(r.group);
    t->set_kind(r.kind);
    t->set_name(r.name);
  }
  out.set_action(ActionToProto(p.action));
  out.set_provider(p.provider);
  for (const authz::Rule& rule : p.rules) {
    auto* r = out.add_rules();
    for (const authz::Source& src : rule.from) {
      *r->add_from() = FieldsToProto(src, authz::SourceFields());
    }
    for (const authz::Operation& op : rule.to) {
      *r->add_to() = FieldsToProto(op, authz::OperationFields());
    }
    for (const authz::Condition& c : rule.when) {
      auto* w = r->add_when();
      w->set_key(c.key);
      *w->mutable_match() = ValueListToProto(c.match);
    }
  }
  out.set_dry_run(p.dry_run);
  out.set_source(p.source);
  return out;
}

absl::StatusOr<authz::AuthorizationPolicy> AuthorizationPolicyFromProto(
    const v1::AuthorizationPolicy& in) {
  const std::string what = StrCat("authorization policy ", in.namespace_(), "/", in.name());
  if (in.name().empty() || in.namespace_().empty()) {
    return absl::InvalidArgumentError(StrCat(what, ": name and namespace are required"));
  }
  authz::AuthorizationPolicy p;
  p.name = in.name();
  p.ns = in.namespace_();
  if (in.has_selector()) p.selector = ToStdMap(in.selector());
  for (const auto& t : in.target_refs()) {
    p.target_refs.push_back(
        authz::TargetRef{.group = t.group(), .kind = t.kind(), .name = t.name()});
  }
  auto action = ActionFromProto(in.action());
  if (!action) {
    return absl::InvalidArgumentError(StrCat(what, ": unknown action number ", in.action()));
  }
  p.action = *action;
  p.provider = in.provider();
  for (int i = 0; i < in.rules_size(); ++i) {
    const auto& r = in.rules(i);
    const std::string rwhat = StrCat(what, ": rules[", i, "]");
    authz::Rule rule;
    for (const auto& f : r.from()) {
      authz::Source src;
      ZM_RETURN_IF_ERROR(FieldsFromProto(f, authz::SourceFields(), src, rwhat));
      rule.from.push_back(std::move(src));
    }
    for (const auto& f : r.to()) {
      authz::Operation op;
      ZM_RETURN_IF_ERROR(FieldsFromProto(f, authz::OperationFields(), op, rwhat));
      rule.to.push_back(std::move(op));
    }
    for (const auto& w : r.when()) {
      rule.when.push_back(authz::Condition{.key = w.key(), .match = ValueListFromProto(w.match())});
    }
    p.rules.push_back(std::move(rule));
  }
  p.dry_run = in.dry_run();
  p.source = in.source();
  return p;
}

v1::RejectedAuthorizationPolicy RejectedAuthorizationPolicyToProto(
    const authz::RejectedAuthorizationPolicy& r) {
  v1::RejectedAuthorizationPolicy p;
  p.set_name(r.name);
  p.set_namespace_(r.ns);
  p.set_action_known(r.action.has_value());
  if (r.action) p.set_action(ActionToProto(*r.action));
  p.set_has_selector(r.selector.has_value());
  if (r.selector) FillMap(*r.selector, p.mutable_selector());
  p.set_selector_unreadable(r.selector_unreadable);
  p.set_has_target_refs(r.has_target_refs);
  p.set_source(r.source);
  p.set_error(r.error);
  return p;
}

authz::RejectedAuthorizationPolicy RejectedAuthorizationPolicyFromProto(
    const v1::RejectedAuthorizationPolicy& p) {
  authz::RejectedAuthorizationPolicy r;
  r.name = p.name();
  r.ns = p.namespace_();
  if (p.action_known()) r.action = ActionFromProto(p.action());  // unknown number: nullopt
  if (p.has_selector()) r.selector = ToStdMap(p.selector());
  r.selector_unreadable = p.selector_unreadable();
  r.has_target_refs = p.has_target_refs();
  r.source = p.source();
  r.error = p.error();
  return r;
}

// A received policy this build cannot read: kept as rejected so it fails closed.
constexpr std::string_view kUnreadablePrefix = "unreadable here: ";
authz::RejectedAuthorizationPolicy RejectUnreadable(const v1::AuthorizationPolicy& p,
                                                    const absl::Status& why) {
  authz::RejectedAuthorizationPolicy r;
  r.name = p.name();
  r.ns = p.namespace_();
  r.action = ActionFromProto(p.action());
  if (p.has_selector()) r.selector = ToStdMap(p.selector());
  r.has_target_refs = p.target_refs_size() > 0;
  r.source = p.source();
  r.error = StrCat(kUnreadablePrefix, why.message());
  return r;
}

v1::Workload WorkloadToProto(const mesh::Workload& w) {
  v1::Workload p;
  p.set_uid(w.uid);
  p.set_name(w.name);
  p.set_namespace_(w.ns);
  p.set_service_account(w.service_account);
  for (const IpAddr& ip : w.ips) p.add_addresses(AddrBytes(ip));
  p.set_node(w.node);
  p.set_trust_domain(std::string(mesh::kTrustDomain));
  p.set_phase(w.phase);
  p.set_tunnel_protocol(w.tunnel_protocol == mesh::TunnelProtocol::kHbone ? v1::HBONE : v1::NONE);
  p.set_waypoint(w.waypoint);
  FillMap(w.labels, p.mutable_labels());
  FillMap(w.annotations, p.mutable_annotations());
  p.set_netns(w.netns);
  for (uint16_t port : w.exclude_outbound_ports) p.add_exclude_outbound_ports(port);
  for (uint16_t port : w.exclude_inbound_ports) p.add_exclude_inbound_ports(port);
  for (const mesh::WorkloadPort& wp : w.ports) {
    v1::WorkloadPort* out = p.add_ports();
    out->set_name(wp.name);
    out->set_port(wp.port);
    out->set_protocol(wp.protocol);
  }
  return p;
}

absl::StatusOr<mesh::Workload> WorkloadFromProto(const v1::Workload& p) {
  const std::string what = StrCat("workload ", p.namespace_(), "/", p.name());
  if (p.name().empty() || p.namespace_().empty()) {
    return absl::InvalidArgumentError(StrCat(what, ": name and namespace are required"));
  }
  mesh::Workload w;
  w.uid = p.uid();
  w.name = p.name();
  w.ns = p.namespace_();
  w.service_account = p.service_account();
  w.node = p.node();
  w.phase = p.phase();
  // An unknown protocol number reads as NONE: plain TCP, which a STRICT destination refuses.
  w.tunnel_protocol =
      p.tunnel_protocol() == v1::HBONE ? mesh::TunnelProtocol::kHbone : mesh::TunnelProtocol::kNone;
  w.waypoint = p.waypoint();
  ZM_ASSIGN_OR_RETURN(w.ips, AddrsFromBytes(p.addresses(), what));
  w.labels = ToStdMap(p.labels());
  w.annotations = ToStdMap(p.annotations());
  w.netns = p.netns();
  ZM_ASSIGN_OR_RETURN(w.exclude_outbound_ports,
                      Ports(p.exclude_outbound_ports(), StrCat(what, ": exclude_outbound_ports"),
                            /*zero_ok=*/false));
  ZM_ASSIGN_OR_RETURN(w.exclude_inbound_ports,
                      Ports(p.exclude_inbound_ports(), StrCat(what, ": exclude_inbound_ports"),
                            /*zero_ok=*/false));
  for (const v1::WorkloadPort& wp : p.ports()) {
    ZM_ASSIGN_OR_RETURN(uint16_t port, Port(wp.port(), StrCat(what, ": ports"), false));
    w.ports.push_back(
        mesh::WorkloadPort{.name = wp.name(), .port = port, .protocol = wp.protocol()});
  }
  return w;
}

v1::Service ServiceToProto(const mesh::Service& s) {
  v1::Service p;
  p.set_name(s.name);
  p.set_namespace_(s.ns);
  for (const IpAddr& ip : s.vips) p.add_addresses(AddrBytes(ip));
  for (const mesh::ServicePort& sp : s.ports) {
    v1::ServicePort* out = p.add_ports();
    out->set_service_port(sp.port);
    out->set_target_port(sp.target_port);
    out->set_name(sp.name);
    out->set_target_port_name(sp.target_port_name);
    out->set_protocol(sp.protocol);
    out->set_app_protocol(sp.app_protocol);
  }
  p.set_type(s.type);
  FillMap(s.selector, p.mutable_selector());
  for (const mesh::ServiceEndpoint& e : s.endpoints) {
    v1::ServiceEndpoint* out = p.add_endpoints();
    out->set_workload_uid(e.workload_uid);
    out->set_workload(e.workload);
    for (const IpAddr& ip : e.ips) out->add_addresses(AddrBytes(ip));
    for (uint16_t tp : e.target_ports) out->add_target_ports(tp);
  }
  p.set_source(s.source);
  return p;
}

absl::StatusOr<mesh::Service> ServiceFromProto(const v1::Service& p) {
  const std::string what = StrCat("service ", p.namespace_(), "/", p.name());
  if (p.name().empty() || p.namespace_().empty()) {
    return absl::InvalidArgumentError(StrCat(what, ": name and namespace are required"));
  }
  mesh::Service s;
  s.name = p.name();
  s.ns = p.namespace_();
  s.type = p.type();
  ZM_ASSIGN_OR_RETURN(s.vips, AddrsFromBytes(p.addresses(), what));
  for (const v1::ServicePort& sp : p.ports()) {
    mesh::ServicePort out;
    ZM_ASSIGN_OR_RETURN(out.port, Port(sp.service_port(), StrCat(what, ": service_port"), false));
    ZM_ASSIGN_OR_RETURN(out.target_port,
                        Port(sp.target_port(), StrCat(what, ": target_port"), true));
    out.name = sp.name();
    out.target_port_name = sp.target_port_name();
    out.protocol = sp.protocol();
    out.app_protocol = sp.app_protocol();
    s.ports.push_back(std::move(out));
  }
  s.selector = ToStdMap(p.selector());
  for (const v1::ServiceEndpoint& e : p.endpoints()) {
    mesh::ServiceEndpoint out;
    out.workload_uid = e.workload_uid();
    out.workload = e.workload();
    const std::string ewhat = StrCat(what, ": endpoint ", e.workload());
    ZM_ASSIGN_OR_RETURN(out.ips, AddrsFromBytes(e.addresses(), ewhat));
    ZM_ASSIGN_OR_RETURN(out.target_ports,
                        Ports(e.target_ports(), StrCat(ewhat, ": target_ports"), true));
    if (out.target_ports.size() != s.ports.size()) {
      return absl::InvalidArgumentError(StrCat(ewhat, ": ", out.target_ports.size(),
                                               " target ports for ", s.ports.size(),
                                               " service ports"));
    }
    s.endpoints.push_back(std::move(out));
  }
  std::sort(s.endpoints.begin(), s.endpoints.end(),
            [](const auto& a, const auto& b) { return a.workload < b.workload; });
  s.source = p.source();
  return s;
}

v1::Namespace NamespaceToProto(const mesh::Namespace& n) {
  v1::Namespace p;
  p.set_name(n.name);
  FillMap(n.labels, p.mutable_labels());
  return p;
}

mesh::Namespace NamespaceFromProto(const v1::Namespace& p) {
  return mesh::Namespace{.name = p.name(), .labels = ToStdMap(p.labels())};
}

v1::PeerAuthentication PeerAuthenticationToProto(const mesh::PeerAuthentication& pa) {
  v1::PeerAuthentication p;
  p.set_name(pa.name);
  p.set_namespace_(pa.ns);
  FillMap(pa.selector, p.mutable_selector());
  p.set_mode(ModeToProto(pa.mode));
  for (const auto& [port, mode] : pa.port_level)
    (*p.mutable_port_level())[port] = ModeToProto(mode);
  if (pa.creation_time_ns) p.set_creation_time_ns(*pa.creation_time_ns);
  p.set_source(pa.source);
  return p;
}

absl::StatusOr<mesh::PeerAuthentication> PeerAuthenticationFromProto(
    const v1::PeerAuthentication& p) {
  const std::string what = StrCat("peer authentication ", p.namespace_(), "/", p.name());
  if (p.name().empty() || p.namespace_().empty()) {
    return absl::InvalidArgumentError(StrCat(what, ": name and namespace are required"));
  }
  mesh::PeerAuthentication pa;
  pa.name = p.name();
  pa.ns = p.namespace_();
  pa.selector = ToStdMap(p.selector());
  pa.mode = ModeFromProto(p.mode());
  for (const auto& [port, mode] : p.port_level()) {
    ZM_ASSIGN_OR_RETURN(uint16_t pt, Port(port, StrCat(what, ": port_level"), false));
    pa.port_level[pt] = ModeFromProto(mode);
  }
  if (p.has_creation_time_ns()) pa.creation_time_ns = p.creation_time_ns();
  pa.source = p.source();
  return pa;
}

v1::RejectedPeerAuthentication RejectedPeerAuthenticationToProto(
    const mesh::RejectedPeerAuthentication& r) {
  v1::RejectedPeerAuthentication p;
  p.set_name(r.name);
  p.set_namespace_(r.ns);
  p.set_selector_unreadable(!r.selector.has_value());
  if (r.selector) FillMap(*r.selector, p.mutable_selector());
  p.set_source(r.source);
  p.set_error(r.error);
  return p;
}

mesh::RejectedPeerAuthentication RejectedPeerAuthenticationFromProto(
    const v1::RejectedPeerAuthentication& p) {
  mesh::RejectedPeerAuthentication r;
  r.name = p.name();
  r.ns = p.namespace_();
  if (!p.selector_unreadable()) r.selector = ToStdMap(p.selector());
  r.source = p.source();
  r.error = p.error();
  return r;
}

v1::ConfigUpdate FullUpdate(const mesh::Snapshot& s, uint64_t version) {
  v1::ConfigUpdate u;
  u.set_version(version);
  u.set_full(true);
  for (const auto& n : s.namespaces) *u.add_namespaces() = NamespaceToProto(n);
  for (const auto& w : s.workloads) *u.add_workloads() = WorkloadToProto(w);
  for (const auto& svc : s.services) *u.add_services() = ServiceToProto(svc);
  for (const auto& pa : s.peer_authentications) {
    *u.add_peer_authentications() = PeerAuthenticationToProto(pa);
  }
  u.set_rejected_peer_authentications_set(true);
  for (const auto& r : s.rejected_peer_authentications) {
    *u.add_rejected_peer_authentications() = RejectedPeerAuthenticationToProto(r);
  }
  for (const auto& p : s.authorization_policies) {
    *u.add_authorization_policies() = AuthorizationPolicyToProto(p);
  }
  u.set_rejected_authorization_policies_set(true);
  for (const auto& r : s.rejected_authorization_policies) {
    *u.add_rejected_authorization_policies() = RejectedAuthorizationPolicyToProto(r);
  }
  u.set_default_policy(DefaultPolicyToProto(s.default_policy));
  return u;
}

v1::ConfigUpdate DeltaUpdate(const mesh::Snapshot& before, const mesh::Snapshot& after,
                             uint64_t base_version, uint64_t version) {
  v1::ConfigUpdate u;
  u.set_version(version);
  u.set_base_version(base_version);
  std::map<std::string, v1::Namespace> nb, na;
  for (const auto& n : before.namespaces) nb.emplace(n.name, NamespaceToProto(n));
  for (const auto& n : after.namespaces) na.emplace(n.name, NamespaceToProto(n));
  Diff(nb, na, u.mutable_namespaces(), u.mutable_removed_namespaces());
  {
    std::map<std::string, v1::Workload> b, a;
    for (const auto& w : before.workloads) b.emplace(w.key(), WorkloadToProto(w));
    for (const auto& w : after.workloads) a.emplace(w.key(), WorkloadToProto(w));
    Diff(b, a, u.mutable_workloads(), u.mutable_removed_workloads());
  }
  {
    std::map<std::string, v1::Service> b, a;
    for (const auto& s : before.services) b.emplace(s.key(), ServiceToProto(s));
    for (const auto& s : after.services) a.emplace(s.key(), ServiceToProto(s));
    Diff(b, a, u.mutable_services(), u.mutable_removed_services());
  }
  {
    std::map<std::string, v1::PeerAuthentication> b, a;
    for (const auto& p : before.peer_authentications) {
      b.emplace(p.key(), PeerAuthenticationToProto(p));
    }
    for (const auto& p : after.peer_authentications) {
      a.emplace(p.key(), PeerAuthenticationToProto(p));
    }
    Diff(b, a, u.mutable_peer_authentications(), u.mutable_removed_peer_authentications());
  }
  bool rejected_same =
      before.rejected_peer_authentications.size() == after.rejected_peer_authentications.size();
  for (size_t i = 0; rejected_same && i < after.rejected_peer_authentications.size(); ++i) {
    rejected_same = Same(RejectedPeerAuthenticationToProto(before.rejected_peer_authentications[i]),
                         RejectedPeerAuthenticationToProto(after.rejected_peer_authentications[i]));
  }
  if (!rejected_same) {
    u.set_rejected_peer_authentications_set(true);
    for (const auto& r : after.rejected_peer_authentications) {
      *u.add_rejected_peer_authentications() = RejectedPeerAuthenticationToProto(r);
    }
  }
  {
    std::map<std::string, v1::AuthorizationPolicy> b, a;
    for (const auto& p : before.authorization_policies) {
      b.emplace(p.key(), AuthorizationPolicyToProto(p));
    }
    for (const auto& p : after.authorization_policies) {
      a.emplace(p.key(), AuthorizationPolicyToProto(p));
    }
    Diff(b, a, u.mutable_authorization_policies(), u.mutable_removed_authorization_policies());
  }
  if (before.rejected_authorization_policies != after.rejected_authorization_policies) {
    u.set_rejected_authorization_policies_set(true);
    for (const auto& r : after.rejected_authorization_policies) {
      *u.add_rejected_authorization_policies() = RejectedAuthorizationPolicyToProto(r);
    }
  }
  // Fixed for an agent's lifetime (a flag): carried, never a change of its own.
  u.set_default_policy(DefaultPolicyToProto(after.default_policy));
  return u;
}

bool Empty(const v1::ConfigUpdate& d) {
  return d.namespaces_size() == 0 && d.workloads_size() == 0 && d.services_size() == 0 &&
         d.peer_authentications_size() == 0 && d.removed_namespaces_size() == 0 &&
         d.removed_workloads_size() == 0 && d.removed_services_size() == 0 &&
         d.removed_peer_authentications_size() == 0 && !d.rejected_peer_authentications_set() &&
         d.authorization_policies_size() == 0 && d.removed_authorization_policies_size() == 0 &&
         !d.rejected_authorization_policies_set();
}

absl::StatusOr<mesh::Snapshot> ApplyUpdate(const mesh::Snapshot* base, const v1::ConfigUpdate& u) {
  using NsName = std::pair<std::string, std::string>;
  std::map<std::string, mesh::Namespace> namespaces;
  std::map<NsName, mesh::Workload> workloads;
  std::map<NsName, mesh::Service> services;
  std::map<NsName, mesh::PeerAuthentication> pas;
  std::vector<mesh::RejectedPeerAuthentication> rejected;
  std::map<NsName, authz::AuthorizationPolicy> aps;
  std::vector<authz::RejectedAuthorizationPolicy> rejected_aps;
  // Policies this build could not read (kUnreadablePrefix): kept apart from the agent's list.
  std::map<NsName, authz::RejectedAuthorizationPolicy> unreadable_aps;
  if (!u.full()) {
    if (base == nullptr) return absl::FailedPreconditionError("delta without a base snapshot");
    for (const auto& n : base->namespaces) namespaces.emplace(n.name, n);
    for (const auto& w : base->workloads) workloads.emplace(NsName(w.ns, w.name), w);
    for (const auto& s : base->services) services.emplace(NsName(s.ns, s.name), s);
    for (const auto& p : base->peer_authentications) pas.emplace(NsName(p.ns, p.name), p);
    rejected = base->rejected_peer_authentications;
    for (const auto& p : base->authorization_policies) aps.emplace(NsName(p.ns, p.name), p);
    for (const auto& r : base->rejected_authorization_policies) {
      if (r.error.starts_with(kUnreadablePrefix)) {
        unreadable_aps.emplace(NsName(r.ns, r.name), r);
      } else {
        rejected_aps.push_back(r);
      }
    }
    for (const std::string& k : u.removed_authorization_policies()) {
      aps.erase(SplitKey(k));
      unreadable_aps.erase(SplitKey(k));
    }
    for (const std::string& k : u.removed_namespaces()) namespaces.erase(k);
    for (const std::string& k : u.removed_workloads()) workloads.erase(SplitKey(k));
    for (const std::string& k : u.removed_services()) services.erase(SplitKey(k));
    for (const std::string& k : u.removed_peer_authentications()) pas.erase(SplitKey(k));
  } else if (u.removed_namespaces_size() + u.removed_workloads_size() + u.removed_services_size() +
                 u.removed_peer_authentications_size() + u.removed_authorization_policies_size() >
             0) {
    return absl::InvalidArgumentError("full update with removals");
  }
  for (const auto& p : u.namespaces()) {
    if (p.name().empty()) return absl::InvalidArgumentError("namespace without a name");
    namespaces[p.name()] = NamespaceFromProto(p);
  }
  for (const auto& p : u.workloads()) {
    ZM_ASSIGN_OR_RETURN(mesh::Workload w, WorkloadFromProto(p));
    NsName k(w.ns, w.name);
    workloads[k] = std::move(w);
  }
  for (const auto& p : u.services()) {
    ZM_ASSIGN_OR_RETURN(mesh::Service s, ServiceFromProto(p));
    NsName k(s.ns, s.name);
    services[k] = std::move(s);
  }
  for (const auto& p : u.peer_authentications()) {
    ZM_ASSIGN_OR_RETURN(mesh::PeerAuthentication pa, PeerAuthenticationFromProto(p));
    NsName k(pa.ns, pa.name);
    pas[k] = std::move(pa);
  }
  if (u.rejected_peer_authentications_set()) {
    rejected.clear();
    for (const auto& p : u.rejected_peer_authentications()) {
      rejected.push_back(RejectedPeerAuthenticationFromProto(p));
    }
    std::stable_sort(rejected.begin(), rejected.end(), [](const auto& a, const auto& b) {
      return std::tie(a.ns, a.name) < std::tie(b.ns, b.name);
    });
  }

  for (const auto& p : u.authorization_policies()) {
    auto ap = AuthorizationPolicyFromProto(p);
    NsName k(p.namespace_(), p.name());
    if (ap.ok()) {
      aps[k] = std::move(*ap);
      unreadable_aps.erase(k);
    } else {
      // Never dropped: a policy this build cannot read fails closed as a rejected one, until
      // the agent sends a readable version or removes it.
      aps.erase(k);
      unreadable_aps[k] = RejectUnreadable(p, ap.status());
    }
  }
  if (u.rejected_authorization_policies_set()) {
    rejected_aps.clear();
    for (const auto& p : u.rejected_authorization_policies()) {
      rejected_aps.push_back(RejectedAuthorizationPolicyFromProto(p));
    }
  }
  for (auto& [k, r] : unreadable_aps) rejected_aps.push_back(std::move(r));
  std::stable_sort(rejected_aps.begin(), rejected_aps.end(), [](const auto& a, const auto& b) {
    return std::tie(a.ns, a.name) < std::tie(b.ns, b.name);
  });

  mesh::Snapshot out;
  for (auto& [k, v] : namespaces) out.namespaces.push_back(std::move(v));
  for (auto& [k, v] : workloads) out.workloads.push_back(std::move(v));
  for (auto& [k, v] : services) out.services.push_back(std::move(v));
  for (auto& [k, v] : pas) out.peer_authentications.push_back(std::move(v));
  std::sort(out.peer_authentications.begin(), out.peer_authentications.end(),
            [](const mesh::PeerAuthentication& a, const mesh::PeerAuthentication& b) {
              if (a.ns != b.ns) return a.ns < b.ns;
              return mesh::OlderPeerAuthentication(a, b);
            });
  out.rejected_peer_authentications = std::move(rejected);
  for (auto& [k, v] : aps) out.authorization_policies.push_back(std::move(v));
  out.rejected_authorization_policies = std::move(rejected_aps);
  out.default_policy = DefaultPolicyFromProto(u.default_policy());
  return out;
}

}  // namespace zm::config
