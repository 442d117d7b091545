#include "cli/bpf_view.h"

#include <arpa/inet.h>
#include <linux/bpf.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <map>
#include <set>

#include "bpf/reasons.h"
#include "cli/table.h"
#include "common/base/ip.h"
#include "common/base/strings.h"

namespace zm::cli {
namespace {

using nlohmann::json;

std::string Addr(const uint8_t (&ip)[16]) { return IpAddr::FromV6(ip).ToString(); }
std::string AddrPort(const uint8_t (&ip)[16], uint16_t port_net) {
  return Endpoint{IpAddr::FromV6(ip), ntohs(port_net)}.ToString();
}
std::string YesNo(bool b) { return b ? "yes" : "no"; }

// Names for the pods the maps mention: by netns cookie, by pod index, by IP.
class PodNames {
 public:
  explicit PodNames(const BpfState& s) {
    for (const auto& [index, full] : s.pod_names) by_index_[index] = full;
    for (const auto& [cookie, v] : s.netns) by_cookie_[cookie] = Name(v.pod_index);
    for (const auto& [addr, v] : s.pod_ips) {
      by_ip_[IpAddr::FromV6(addr.ip).ToString()] = Name(v.pod_index);
    }
  }
  // "ns/name" for a pod index ("pod#7" when the name map has no entry).
  std::string Name(uint32_t index) const {
    auto it = by_index_.find(index);
    if (it == by_index_.end()) return StrCat("pod#", index);
    return it->second.substr(0, it->second.rfind('/'));
  }
  std::string Uid(uint32_t index) const {
    auto it = by_index_.find(index);
    return it == by_index_.end() ? "" : it->second.substr(it->second.rfind('/') + 1);
  }
  std::string ByCookie(uint64_t cookie) const {
    auto it = by_cookie_.find(cookie);
    return it == by_cookie_.end() ? StrCat("netns:", cookie) : it->second;
  }
  // The pod owning an address, or "" when none.
  std::string ByIp(const std::string& ip) const {
    auto it = by_ip_.find(ip);
    return it == by_ip_.end() ? "" : it->second;
  }

 private:
  std::map<uint32_t, std::string> by_index_;
  std::map<uint64_t, std::string> by_cookie_;
  std::map<std::string, std::string> by_ip_;
};

std::string WithPod(const PodNames& names, const uint8_t (&ip)[16], uint16_t port) {
  std::string ep = AddrPort(ip, port);
  std::string pod = names.ByIp(Addr(ip));
  return pod.empty() ? ep : StrCat(ep, " (", pod, ")");
}

std::string Age(uint64_t now, uint64_t then) {
  if (!now || then > now) return "-";
  uint64_t s = (now - then) / 1000000000ull;
  if (s < 120) return StrCat(s, "s");
  if (s < 7200) return StrCat(s / 60, "m");
  return StrCat(s / 3600, "h");
}

struct PodRow {
  std::string pod, uid;
  uint64_t cookie = 0;
  std::vector<std::string> ips;
  bool outbound = false, inbound = false, listener = false, link = false;
  std::vector<uint16_t> excl_out, excl_in;
};

std::vector<PodRow> PodRows(const BpfState& s) {
  PodNames names(s);
  std::set<std::string> listener_ips;
  for (const auto& l : s.listeners) {
    if (l.key.role == ZM_ROLE_INBOUND) listener_ips.insert(Addr(l.key.ip));
  }
  std::set<uint64_t> live_links;
  for (const auto& l : s.links) {
    if (l.name.rfind("sk_lookup_", 0) == 0 && !l.defunct) {
      live_links.insert(std::strtoull(l.name.c_str() + 10, nullptr, 10));
    }
  }
  std::vector<PodRow> rows;
  for (const auto& [cookie, v] : s.netns) {
    PodRow r{.pod = names.Name(v.pod_index), .uid = names.Uid(v.pod_index), .cookie = cookie};
    r.listener = true;
    for (const auto& [addr, ipv] : s.pod_ips) {
      if (ipv.netns_cookie != cookie) continue;
      r.ips.push_back(Addr(addr.ip));
      r.listener = r.listener && listener_ips.count(r.ips.back());
    }
    if (r.ips.empty()) r.listener = false;
    r.outbound = v.flags & ZM_NETNS_OUT;
    r.link = live_links.count(cookie);
    r.inbound = (v.flags & ZM_NETNS_IN) && r.link && r.listener;
    for (const auto& k : s.excluded) {
      if (k.pod_index != v.pod_index) continue;
      (k.direction == ZM_DIR_OUTBOUND ? r.excl_out : r.excl_in).push_back(ntohs(k.port));
    }
    std::sort(r.excl_out.begin(), r.excl_out.end());
    std::sort(r.excl_in.begin(), r.excl_in.end());
    rows.push_back(std::move(r));
  }
  std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.pod < b.pod; });
  return rows;
}

std::string Join(const std::vector<std::string>& v, const char* sep = ",") {
  std::string out;
  for (const auto& x : v) out += (out.empty() ? "" : sep) + x;
  return out.empty() ? "-" : out;
}
std::string JoinPorts(const std::vector<uint16_t>& v) {
  std::vector<std::string> s;
  for (auto p : v) s.push_back(std::to_string(p));
  return Join(s);
}

std::string Errors(const BpfState& s) {
  std::string out;
  for (const auto& e : s.errors) out += StrCat("warning: ", e, "\n");
  return out;
}

}  // namespace

std::string AttachTypeName(uint32_t t) {
  switch (t) {
    case BPF_CGROUP_INET4_CONNECT: return "cgroup_inet4_connect";
    case BPF_CGROUP_INET6_CONNECT: return "cgroup_inet6_connect";
    case BPF_CGROUP_SOCK_OPS: return "cgroup_sock_ops";
    case BPF_CGROUP_GETSOCKOPT: return "cgroup_getsockopt";
    case BPF_SK_LOOKUP: return "sk_lookup";
    default: return StrCat("attach#", t);
  }
}

BpfState ReadBpfState(const std::string& pin_dir) {
  BpfState s{.pin_dir = pin_dir};
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  s.now_ns = static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
  auto maps = bpf::PinnedMaps::Open(pin_dir);
  if (!maps.ok()) {
    s.errors.push_back(std::string(maps.status().message()));
    return s;
  }
  auto take = [&](auto result, auto& into) {
    if (result.ok()) {
      into = std::move(*result);
    } else {
      s.errors.push_back(std::string(result.status().message()));
    }
  };
  if (auto c = maps->Config(); c.ok()) {
    s.config = *c;
  } else {
    s.errors.push_back(std::string(c.status().message()));
  }
  if (auto m = maps->Meta(); m.ok()) {
    s.meta = *m;
  } else {
    s.errors.push_back(std::string(m.status().message()));
  }
  take(maps->Netns(), s.netns);
  take(maps->PodIps(), s.pod_ips);
  take(maps->PodNames(), s.pod_names);
  take(maps->ExcludedPorts(), s.excluded);
  take(maps->OrigDst(), s.orig_dst);
  take(maps->Bypass(), s.bypass);
  take(maps->Listeners(), s.listeners);
  take(maps->Stats(), s.stats);
  take(maps->Links(), s.links);
  take(maps->Fill(), s.fill);
  return s;
}

json StatusJson(const BpfState& s) {
  json links = json::array(), maps = json::array();
  for (const auto& l : s.links) {
    json j{{"name", l.name}, {"id", l.link_id}, {"prog_id", l.prog_id},
           {"prog_name", l.prog_name}, {"attach", AttachTypeName(l.attach_type)},
           {"defunct", l.defunct}};
    if (l.attach_type == BPF_SK_LOOKUP) {
      j["netns_ino"] = l.netns_ino;
    } else {
      j["cgroup_id"] = l.cgroup_id;
    }
    links.push_back(j);
  }
  for (const auto& m : s.fill) {
    maps.push_back({{"name", m.name}, {"entries", m.entries}, {"max_entries", m.max_entries}});
  }
  json out{{"pin_dir", s.pin_dir}, {"links", links}, {"maps", maps}, {"errors", s.errors}};
  if (s.meta) {
    out["abi"] = s.meta->abi;
    out["build_id"] = std::string(s.meta->build_id, strnlen(s.meta->build_id, ZM_BUILD_ID_LEN));
  }
  return out;
}

std::string RenderStatus(const BpfState& s) {
  std::string out = Errors(s);
  if (s.meta) {
    out += StrCat("pins ", s.pin_dir, "   abi ", s.meta->abi, "   build ",
                  std::string(s.meta->build_id, strnlen(s.meta->build_id, ZM_BUILD_ID_LEN)),
                  "\n\n");
  }
  Table links({"LINK", "ID", "PROGRAM", "ATTACH", "TARGET", "STATE"});
  for (const auto& l : s.links) {
    std::string target = l.attach_type == BPF_SK_LOOKUP ? StrCat("netns ino ", l.netns_ino)
                                                        : StrCat("cgroup id ", l.cgroup_id);
    links.Add({l.name, std::to_string(l.link_id), StrCat(l.prog_name, " #", l.prog_id),
               AttachTypeName(l.attach_type), target, l.defunct ? "DEFUNCT" : "attached"});
  }
  out += links.Render() + "\n";
  Table maps({"MAP", "ENTRIES", "MAX", "FILL"});
  for (const auto& m : s.fill) {
    std::string fill = m.max_entries ? StrCat(m.entries * 100 / m.max_entries, "%") : "-";
    maps.Add({m.name, std::to_string(m.entries), std::to_string(m.max_entries), fill});
  }
  return out + maps.Render();
}

json PodsJson(const BpfState& s) {
  json pods = json::array();
  for (const auto& r : PodRows(s)) {
    pods.push_back({{"pod", r.pod}, {"uid", r.uid}, {"netns_cookie", r.cookie}, {"ips", r.ips},
                    {"outbound", r.outbound}, {"inbound", r.inbound}, {"listener", r.listener},
                    {"sk_lookup_link", r.link},
                    {"excluded_ports", {{"outbound", r.excl_out}, {"inbound", r.excl_in}}}});
  }
  return {{"pods", pods}, {"errors", s.errors}};
}

std::string RenderPods(const BpfState& s) {
  Table t({"POD", "NETNS-COOKIE", "IPS", "OUT", "IN", "LISTENER", "SK_LOOKUP", "EXCLUDED"});
  for (const auto& r : PodRows(s)) {
    std::string excl = "-";
    if (!r.excl_out.empty() || !r.excl_in.empty()) {
      excl = StrCat("out:", JoinPorts(r.excl_out), " in:", JoinPorts(r.excl_in));
    }
    t.Add({r.pod, std::to_string(r.cookie), Join(r.ips), YesNo(r.outbound), YesNo(r.inbound),
           YesNo(r.listener), YesNo(r.link), excl});
  }
  return Errors(s) + t.Render();
}

json OrigDstJson(const BpfState& s) {
  PodNames names(s);
  json out = json::array();
  for (const auto& [k, v] : s.orig_dst) {
    out.push_back({{"pod", names.ByCookie(k.netns_cookie)}, {"netns_cookie", k.netns_cookie},
                   {"client", AddrPort(k.ip, k.port)}, {"original_dst", AddrPort(v.ip, v.port)},
                   {"original_dst_pod", names.ByIp(Addr(v.ip))}});
  }
  return {{"entries", out}, {"errors", s.errors}};
}

std::string RenderOrigDst(const BpfState& s) {
  PodNames names(s);
  Table t({"POD", "CLIENT", "ORIGINAL-DST"});
  for (const auto& [k, v] : s.orig_dst) {
    t.Add({names.ByCookie(k.netns_cookie), AddrPort(k.ip, k.port), WithPod(names, v.ip, v.port)});
  }
  return Errors(s) + t.Render();
}

json BypassJson(const BpfState& s) {
  PodNames names(s);
  json out = json::array();
  for (const auto& [k, v] : s.bypass) {
    out.push_back({{"src", AddrPort(k.saddr, k.sport)}, {"dst", AddrPort(k.daddr, k.dport)},
                   {"dst_pod", names.ByIp(Addr(k.daddr))},
                   {"reason", std::string(bpf::ReasonName(v.reason))},
                   {"age_ns", s.now_ns > v.time_ns ? s.now_ns - v.time_ns : 0}});
  }
  return {{"entries", out}, {"errors", s.errors}};
}

std::string RenderBypass(const BpfState& s) {
  PodNames names(s);
  Table t({"SRC", "DST", "REASON", "AGE"});
  for (const auto& [k, v] : s.bypass) {
    t.Add({WithPod(names, k.saddr, k.sport), WithPod(names, k.daddr, k.dport),
           std::string(bpf::ReasonName(v.reason)), Age(s.now_ns, v.time_ns)});
  }
  return Errors(s) + t.Render();
}

json StatsJson(const BpfState& s) {
  json out = json::object();
  for (uint32_t r = 0; r < s.stats.size(); ++r) out[std::string(bpf::ReasonName(r))] = s.stats[r];
  return {{"stats", out}, {"errors", s.errors}};
}

std::string RenderStats(const BpfState& s) {
  Table t({"REASON", "COUNT"});
  for (uint32_t r = 0; r < s.stats.size(); ++r) {
    t.Add({std::string(bpf::ReasonName(r)), std::to_string(s.stats[r])});
  }
  return Errors(s) + t.Render();
}

json ConfigJson(const BpfState& s) {
  if (!s.config) return {{"errors", s.errors}};
  const zm_config& c = *s.config;
  return {{"abi", c.abi},
          {"verify_ztunnel", bool(c.flags & ZM_CFG_VERIFY_ZTUNNEL)},
          {"mark_ztunnel", c.mark_ztunnel},
          {"mark_delivery", c.mark_delivery},
          {"mark_mask", c.mark_mask},
          {"ztunnel_pid", c.ztunnel_tgid},
          {"ztunnel_cgroup_id", c.ztunnel_cgroup_id},
          {"node_netns_cookie", c.node_netns_cookie},
          {"ztunnel_prev_pid", c.ztunnel_prev_tgid},
          {"ztunnel_prev_cgroup_id", c.ztunnel_prev_cgroup_id},
          {"errors", s.errors}};
}

std::string RenderConfig(const BpfState& s) {
  if (!s.config) return Errors(s) + "no zm_config\n";
  const zm_config& c = *s.config;
  Table t({"SETTING", "VALUE"});
  t.Add({"abi", std::to_string(c.abi)});
  t.Add({"verify-ztunnel", YesNo(c.flags & ZM_CFG_VERIFY_ZTUNNEL)});
  t.Add({"mark-ztunnel", fmt::format("{:#x}", c.mark_ztunnel)});
  t.Add({"mark-delivery", fmt::format("{:#x}", c.mark_delivery)});
  t.Add({"mark-mask", fmt::format("{:#x}", c.mark_mask)});
  t.Add({"ztunnel-pid", c.ztunnel_tgid ? std::to_string(c.ztunnel_tgid) : "none yet"});
  t.Add({"ztunnel-cgroup-id", std::to_string(c.ztunnel_cgroup_id)});
  t.Add({"node-netns-cookie", std::to_string(c.node_netns_cookie)});
  // The ztunnel being replaced in a surge upgrade (its sockets are still ztunnel's).
  t.Add({"ztunnel-prev-pid",
         c.ztunnel_prev_tgid ? std::to_string(c.ztunnel_prev_tgid) : "none"});
  t.Add({"ztunnel-prev-cgroup-id", std::to_string(c.ztunnel_prev_cgroup_id)});
  return Errors(s) + t.Render();
}

}  // namespace zm::cli
