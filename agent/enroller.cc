#include "agent/enroller.h"

#include <arpa/inet.h>

#include <cstring>

#include "common/base/log.h"
#include "common/base/status.h"
#include "common/base/strings.h"

namespace zm::agent {
namespace {

spdlog::logger& L() {
  static spdlog::logger& l = Log("agent");
  return l;
}

std::string PodName(const WorkloadRef& r) { return StrCat(r.ns, "/", r.name); }

constexpr uint32_t kCaptureFlags = ZM_NETNS_OUT | ZM_NETNS_IN | ZM_NETNS_SRC_PRESERVE;

zm_netns_val NetnsValue(const EnrollTarget& t, uint32_t index) {
  zm_netns_val v{};
  v.flags = kCaptureFlags;
  v.pod_index = index;
  bool has_ip6 = false;
  for (const IpAddr& ip : t.ips) {
    if (ip.is_v4() && v.ip4 == 0) {
      v.ip4 = ip.v4_net_order();
    } else if (!ip.is_v4() && !has_ip6) {
      std::memcpy(v.ip6, ip.bytes.data(), 16);
      has_ip6 = true;  // the first of each family, like ip4
    }
  }
  return v;
}

// Logs a failed clean-up step; clean-up goes on with the next step.
void Warn(const absl::Status& st, std::string_view step, const std::string& pod) {
  if (!st.ok() && !absl::IsNotFound(st)) {
    L().warn("un-enroll {}: {}: {}", pod, step, st.message());
  }
}

}  // namespace

bool EnrollTarget::operator==(const EnrollTarget& o) const {
  return ref.uid == o.ref.uid && ref.name == o.ref.name && ref.ns == o.ref.ns &&
         ref.service_account == o.ref.service_account && netns == o.netns && ips == o.ips &&
         exclude_outbound_ports == o.exclude_outbound_ports &&
         exclude_inbound_ports == o.exclude_inbound_ports;
}

uint32_t Enroller::AllocateIndex() {
  uint32_t i = 1;  // 0 stays unused so a zeroed value never names a pod
  while (used_indexes_.count(i)) ++i;
  used_indexes_.insert(i);
  return i;
}

absl::Status Enroller::SendToZtunnel(Enrolled& pod) {
  ZM_ASSIGN_OR_RETURN(std::vector<Fd> listeners, ztunnel_.Add(pod.target.ref, pod.netns.get()));
  if (listeners.empty()) {
    return absl::FailedPreconditionError("ztunnel acked without its inbound listener");
  }
  for (const IpAddr& ip : pod.target.ips) {
    ZM_RETURN_IF_ERROR(datapath_.PutListener(ip, ZM_ROLE_INBOUND, listeners[0].get()));
  }
  // The SOCKHASH holds the socket now; our fds close here. Keeping them would keep the
  // listener alive after ztunnel dies, and SYNs would queue on a socket nobody accepts
  // instead of being refused (fail closed means the client learns at once).
  return absl::OkStatus();
}

absl::Status Enroller::Enroll(const EnrollTarget& t) {
  const std::string name = PodName(t.ref);
  Enrolled pod{.target = t};
  ZM_ASSIGN_OR_RETURN(pod.netns, netns_.Open(t.netns));
  ZM_ASSIGN_OR_RETURN(pod.cookie, netns_.Cookie(pod.netns.get()));
  if (!ztunnel_.Connected()) return absl::UnavailableError("waiting for ztunnel to connect");
  pod.pod_index = AllocateIndex();
  // From here on, a failure rolls back what was done (Unenroll tolerates missing parts).
  absl::Status st = [&]() -> absl::Status {
    ZM_RETURN_IF_ERROR(SendToZtunnel(pod));
    ZM_RETURN_IF_ERROR(netns_.InstallRouting(pod.netns.get()));
    ZM_RETURN_IF_ERROR(datapath_.PutPodName(
        pod.pod_index, StrCat(t.ref.ns, "/", t.ref.name, "/", t.ref.uid)));
    for (const IpAddr& ip : t.ips) {
      zm_pod_ip_val v{.netns_cookie = pod.cookie, .pod_index = pod.pod_index,
                      .flags = kCaptureFlags};
      ZM_RETURN_IF_ERROR(datapath_.PutPodIp(ip, v));
    }
    for (uint16_t port : t.exclude_outbound_ports) {
      ZM_RETURN_IF_ERROR(datapath_.PutExcludedPort(
          {.pod_index = pod.pod_index, .port = htons(port), .direction = ZM_DIR_OUTBOUND}));
    }
    for (uint16_t port : t.exclude_inbound_ports) {
      ZM_RETURN_IF_ERROR(datapath_.PutExcludedPort(
          {.pod_index = pod.pod_index, .port = htons(port), .direction = ZM_DIR_INBOUND}));
    }
    ZM_RETURN_IF_ERROR(datapath_.PutNetns(pod.cookie, NetnsValue(t, pod.pod_index)));
    return datapath_.AttachSkLookup(pod.cookie, pod.netns.get());
  }();
  if (!st.ok()) {
    Unenroll(pod);
    return st;
  }
  L().info("enrolled {} uid={} netns_cookie={} index={}", name, t.ref.uid, pod.cookie,
           pod.pod_index);
  enrolled_.emplace(t.ref.uid, std::move(pod));
  return absl::OkStatus();
}

void Enroller::Unenroll(Enrolled& pod) {
  const std::string name = PodName(pod.target.ref);
  Warn(datapath_.DetachSkLookup(pod.cookie), "detach sk_lookup", name);
  Warn(datapath_.DeleteNetns(pod.cookie), "zm_netns", name);
  Warn(datapath_.DeleteExcludedPorts(pod.pod_index), "zm_ports_excl", name);
  for (const IpAddr& ip : pod.target.ips) {
    Warn(datapath_.DeletePodIp(ip), "zm_pod_ip", name);
  }
  Warn(datapath_.DeletePodName(pod.pod_index), "zm_pod_name", name);
  for (const IpAddr& ip : pod.target.ips) {
    Warn(datapath_.DeleteListener(ip, ZM_ROLE_INBOUND), "zm_listeners", name);
  }
  if (ztunnel_.Connected()) Warn(ztunnel_.Del(pod.target.ref.uid), "ztunnel del", name);
  used_indexes_.erase(pod.pod_index);
}

absl::Status Enroller::Recover(const std::vector<EnrollTarget>& desired) {
  desired_ = desired;
  ZM_ASSIGN_OR_RETURN(auto netns_entries, datapath_.ListNetns());
  ZM_ASSIGN_OR_RETURN(auto names, datapath_.ListPodNames());
  ZM_ASSIGN_OR_RETURN(auto pod_ips, datapath_.ListPodIps());
  std::map<std::string, const EnrollTarget*> wanted;
  for (const auto& t : desired) wanted[t.ref.uid] = &t;

  for (const auto& [cookie, val] : netns_entries) {
    auto name_it = names.find(val.pod_index);
    std::string full = name_it == names.end() ? "" : name_it->second;
    std::string uid = full.substr(full.rfind('/') + 1);
    Enrolled pod{.cookie = cookie, .pod_index = val.pod_index};
    for (const auto& [ip, ipval] : pod_ips) {
      if (ipval.netns_cookie == cookie) pod.target.ips.push_back(ip);
    }
    pod.target.ref.uid = uid;
    pod.target.ref.name = full;
    used_indexes_.insert(val.pod_index);
    auto w = wanted.find(uid);
    if (w != wanted.end()) {
      // Still wanted: adopt it if it is the same netns and the same target.
      auto fd = netns_.Open(w->second->netns);
      auto c = fd.ok() ? netns_.Cookie(fd->get()) : absl::StatusOr<uint64_t>(fd.status());
      if (c.ok() && *c == cookie && w->second->ips == pod.target.ips) {
        pod.target = *w->second;
        pod.netns = std::move(*fd);
        L().info("adopted {} from pinned state (netns_cookie={})", PodName(pod.target.ref),
                 cookie);
        enrolled_.emplace(uid, std::move(pod));
        continue;
      }
      if (fd.ok()) pod.netns = std::move(*fd);
    }
    L().info("un-enrolling {} found in pinned state: no longer wanted or changed", full);
    Unenroll(pod);
  }
  // Orphans: entries no enrolled pod refers to (a crash between two steps).
  std::set<uint64_t> live;
  for (const auto& [uid, pod] : enrolled_) live.insert(pod.cookie);
  ZM_ASSIGN_OR_RETURN(pod_ips, datapath_.ListPodIps());
  for (const auto& [ip, val] : pod_ips) {
    if (live.count(val.netns_cookie)) continue;
    L().info("gc: orphaned zm_pod_ip {}", ip.ToString());
    Warn(datapath_.DeletePodIp(ip), "gc zm_pod_ip", ip.ToString());
    Warn(datapath_.DeleteListener(ip, ZM_ROLE_INBOUND), "gc zm_listeners", ip.ToString());
  }
  ZM_ASSIGN_OR_RETURN(auto links, datapath_.ListSkLookupLinks());
  for (uint64_t cookie : links) {
    if (!live.count(cookie)) {
      L().info("gc: sk_lookup link of netns_cookie={} without an enrolled pod", cookie);
      Warn(datapath_.DetachSkLookup(cookie), "gc sk_lookup", std::to_string(cookie));
    }
  }
  for (const auto& [index, name] : names) {
    if (used_indexes_.count(index)) continue;
    // A crash between the name and zm_netns leaves both: excluded ports of a free index would
    // be inherited by the next pod given that index.
    Warn(datapath_.DeleteExcludedPorts(index), "gc zm_ports_excl", name);
    Warn(datapath_.DeletePodName(index), "gc zm_pod_name", name);
  }
  return absl::OkStatus();
}

void Enroller::Reconcile(const std::vector<EnrollTarget>& desired) {
  desired_ = desired;
  std::map<std::string, const EnrollTarget*> wanted;
  for (const auto& t : desired) wanted[t.ref.uid] = &t;

  for (auto it = enrolled_.begin(); it != enrolled_.end();) {
    auto w = wanted.find(it->first);
    if (w != wanted.end() && *w->second == it->second.target) {
      ++it;
      continue;
    }
    L().info("un-enrolling {}: {}", PodName(it->second.target.ref),
             w == wanted.end() ? "no longer selected" : "its pod changed");
    Unenroll(it->second);
    it = enrolled_.erase(it);
  }
  std::map<std::string, PodStatus> before;
  before.swap(pending_);
  for (const auto& t : desired) {
    if (enrolled_.count(t.ref.uid)) continue;
    absl::Status st = Enroll(t);
    if (st.ok()) continue;
    PodStatus p{.uid = t.ref.uid,
                .pod = PodName(t.ref),
                .ns = t.ref.ns,
                .service_account = t.ref.service_account,
                .error = std::string(st.message()),
                .waiting = absl::IsUnavailable(st)};
    // Pending pods are retried every second: say so once per distinct reason.
    auto old = before.find(t.ref.uid);
    if (old == before.end() || old->second.error != p.error) {
      L().warn("cannot enroll {} yet: {}", p.pod, p.error);
    }
    pending_[t.ref.uid] = std::move(p);
  }
}

void Enroller::OnZtunnelConnected() {
  snapshot_sent_ = false;
  for (auto it = enrolled_.begin(); it != enrolled_.end();) {
    // A failed exchange drops the connection: stop rather than un-enroll every other pod.
    if (!ztunnel_.Connected()) return;
    absl::Status st = it->second.netns ? SendToZtunnel(it->second)
                                       : absl::NotFoundError("its netns is gone");
    if (!st.ok()) {
      L().warn("re-sending {} to ztunnel failed: {}; un-enrolling it to retry",
               PodName(it->second.target.ref), st.message());
      Unenroll(it->second);
      it = enrolled_.erase(it);
      continue;
    }
    ++it;
  }
  if (!ztunnel_.Connected()) return;
  absl::Status st = ztunnel_.SnapshotSent();
  if (!st.ok()) {
    L().warn("snapshot-sent failed: {}", st.message());
    return;
  }
  snapshot_sent_ = true;
  L().info("ztunnel has the snapshot: {} pods", enrolled_.size());
  Reconcile(desired_);
}

void Enroller::UnenrollAll() {
  for (auto& [uid, pod] : enrolled_) Unenroll(pod);
  enrolled_.clear();
}

const EnrollTarget* Enroller::EnrolledTarget(const std::string& uid) const {
  auto it = enrolled_.find(uid);
  return it == enrolled_.end() ? nullptr : &it->second.target;
}

std::vector<PodStatus> Enroller::Status() const {
  std::vector<PodStatus> out;
  for (const auto& [uid, pod] : enrolled_) {
    out.push_back({.uid = uid, .pod = PodName(pod.target.ref), .ns = pod.target.ref.ns,
                   .service_account = pod.target.ref.service_account, .enrolled = true});
  }
  for (const auto& [uid, p] : pending_) out.push_back(p);
  return out;
}

}  // namespace zm::agent
