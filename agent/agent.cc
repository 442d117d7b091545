#include "agent/agent.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "agent/enrollment.h"
#include "common/base/log.h"
#include "common/base/netns.h"
#include "common/base/status.h"
#include "common/base/strings.h"
#include "common/mesh/authorization.h"
#include "common/mesh/workload.h"

namespace zm::agent {
namespace {

spdlog::logger& L() {
  static spdlog::logger& l = Log("agent");
  return l;
}

}  // namespace

absl::StatusOr<std::string> Cgroup2Mount() {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // "... <mount point> <options> - cgroup2 <source> <super options>"
    size_t dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
    std::istringstream fields(line.substr(0, dash));
    std::string f, mount;
    for (int i = 0; i < 5 && fields >> f; ++i) {
      if (i == 4) mount = f;
    }
    if (!mount.empty()) return mount;
  }
  return absl::NotFoundError("no cgroup2 mount in /proc/self/mountinfo");
}

absl::StatusOr<uint64_t> CgroupIdOfPid(pid_t pid) {
  std::string path = StrCat("/proc/", pid, "/cgroup");
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(StrCat("cannot read ", path));
  std::string line, rel;
  while (std::getline(in, line)) {
    if (line.rfind("0::", 0) == 0) rel = line.substr(3);
  }
  if (rel.empty()) return absl::NotFoundError(StrCat(path, ": no cgroup v2 entry"));
  ZM_ASSIGN_OR_RETURN(std::string mount, Cgroup2Mount());
  struct stat st {};
  std::string dir = mount + rel;
  if (::stat(dir.c_str(), &st) != 0) return ErrnoError("stat", dir);
  return static_cast<uint64_t>(st.st_ino);
}

Agent::Agent(AgentOptions options, bpf::Datapath& datapath, ZdsServer& zds, PodNetns& netns)
    : options_(std::move(options)),
      datapath_(datapath),
      zds_(zds),
      enroller_(datapath, zds, netns),
      view_(std::make_shared<AgentView>()) {}

Agent::~Agent() = default;

std::vector<EnrollTarget> Agent::Desired(const k8s::ManifestSnapshot& objects) {
  mesh::Snapshot built = mesh::BuildSnapshot(objects);
  built.default_policy = options_.default_policy;
  auto shared = std::make_shared<const mesh::Snapshot>(std::move(built));
  const mesh::Snapshot& snapshot = *shared;
  mesh_ = shared;
  if (mesh_listener_) mesh_listener_(shared);
  manifest_errors_ = snapshot.errors.size();
  std::set<std::string> now(snapshot.errors.begin(), snapshot.errors.end());
  for (const auto& e : now) {
    if (!logged_errors_.count(e)) L().error("manifests: {}", e);
  }
  logged_errors_ = std::move(now);
  // Warnings: the manifests' own, and how the node tunnel enforces each policy at L4 (HTTP
  // fields, rejected policies failing closed), each logged once while it holds.
  std::set<std::string> warnings(snapshot.warnings.begin(), snapshot.warnings.end());
  for (const std::string& w :
       mesh::BuildL4PolicySet(snapshot, options_.root_namespace)->warnings()) {
    warnings.insert(StrCat("AuthorizationPolicy ", w));
  }
  for (const auto& w : warnings) {
    if (!logged_warnings_.count(w)) L().warn("manifests: {}", w);
  }
  logged_warnings_ = std::move(warnings);
  std::vector<EnrollTarget> out;
  for (const EnrollmentDecision& d : DecideEnrollment(snapshot, options_.node)) {
    if (!d.enrolled || !d.workload) {
      L().debug("{} not enrolled: {}", d.key(), d.detail);
      continue;
    }
    const mesh::Workload& w = *d.workload;
    out.push_back({.ref = {.uid = w.uid, .name = w.name, .ns = w.ns,
                           .service_account = w.service_account},
                   .netns = w.netns,
                   .ips = w.ips,
                   .exclude_outbound_ports = w.exclude_outbound_ports,
                   .exclude_inbound_ports = w.exclude_inbound_ports});
  }
  return out;
}

absl::Status Agent::Start(std::shared_ptr<const k8s::ManifestSnapshot> initial) {
  ZM_ASSIGN_OR_RETURN(uint64_t node_cookie, CurrentNetnsCookie());
  ZM_ASSIGN_OR_RETURN(zm_config config, datapath_.ReadConfig());
  // Keep the ztunnel identity of a pinned config: the running ztunnel's connections must
  // not be captured again while this agent restarts (it is refreshed on the next Hello).
  config.abi = ZM_ABI_VERSION;
  config.flags |= ZM_CFG_VERIFY_ZTUNNEL;
  config.mark_ztunnel = ZM_MARK_ZTUNNEL;
  config.mark_delivery = ZM_MARK_DELIVERY;
  config.mark_mask = ZM_MARK_MASK;
  config.node_netns_cookie = node_cookie;
  ZM_RETURN_IF_ERROR(datapath_.WriteConfig(config));
  desired_ = Desired(*initial);
  ZM_RETURN_IF_ERROR(enroller_.Recover(desired_));
  recovered_ = true;
  // New pods wait for ztunnel (pending); adopted ones are left as they are.
  enroller_.Reconcile(desired_);
  L().info("recovered: {} pods adopted from pinned state, {} wanted on node {}",
           enroller_.enrolled_count(), desired_.size(), options_.node);
  Publish();
  return absl::OkStatus();
}

void Agent::PostManifests(std::shared_ptr<const k8s::ManifestSnapshot> snapshot) {
  std::lock_guard lock(mu_);
  events_.emplace_back(std::move(snapshot));
  cv_.notify_one();
}

void Agent::PostZtunnel(Fd conn) {
  std::lock_guard lock(mu_);
  events_.emplace_back(std::move(conn));
  cv_.notify_one();
}

void Agent::Stop() {
  std::lock_guard lock(mu_);
  stop_ = true;
  cv_.notify_one();
}

void Agent::OnZtunnel(Fd conn) {
  auto peer = zds_.Adopt(std::move(conn));
  if (!peer.ok()) {
    L().warn("refused a ZDS connection: {}", peer.status().message());
    return;
  }
  enroller_.OnZtunnelDisconnected();
  auto config = datapath_.ReadConfig();
  auto cgroup = CgroupIdOfPid(peer->pid);
  if (!cgroup.ok()) L().warn("ztunnel pid {}: {}", peer->pid, cgroup.status().message());
  if (!config.ok()) {
    // Without ztunnel's pid in zm_config its own upstream connects would be captured again.
    L().error("zm_config unreadable, ztunnel pid {} not recorded: {}", peer->pid,
              config.status().message());
  } else {
    config->ztunnel_tgid = static_cast<uint32_t>(peer->pid);
    config->ztunnel_cgroup_id = cgroup.ok() ? *cgroup : 0;
    absl::Status st = datapath_.WriteConfig(*config);
    if (!st.ok()) L().error("zm_config: {}", st.message());
  }
  L().info("ztunnel connected: pid {} cgroup id {}", peer->pid, cgroup.ok() ? *cgroup : 0);
  ztunnel_pid_ = peer->pid;
  enroller_.OnZtunnelConnected();
}

void Agent::Run() {
  while (true) {
    std::deque<Event> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_ || !events_.empty(); });
      if (stop_) return;
      batch.swap(events_);
    }
    bool reconcile = false;
    for (Event& e : batch) {
      if (auto* snap = std::get_if<std::shared_ptr<const k8s::ManifestSnapshot>>(&e)) {
        desired_ = Desired(**snap);
        reconcile = true;
      } else {
        OnZtunnel(std::move(std::get<Fd>(e)));
      }
    }
    if (zds_.Connected() && zds_.CheckHangup()) enroller_.OnZtunnelDisconnected();
    // The CA reads the view: the ztunnel's pid and the wanted pods must be in it before the
    // ZDS Adds go out (ztunnel fetches a pod's certificate as soon as it gets the Add).
    if (reconcile || enroller_.has_pending()) Publish();
    // Pending pods are retried on every tick; an up-to-date node costs a map compare.
    if (reconcile || enroller_.has_pending()) {
      enroller_.Reconcile(desired_);
      ++reconciles_;
    }
    Publish();
  }
}

void Agent::Publish() {
  auto view = std::make_shared<AgentView>();
  view->pods = enroller_.Status();
  view->manifest_errors = manifest_errors_;
  view->reconciles = reconciles_;
  view->ztunnel_connected = zds_.Connected();
  view->ztunnel_pid = zds_.Connected() ? ztunnel_pid_ : 0;
  for (const EnrollTarget& t : desired_) view->wanted.push_back(t.ref);
  if (!recovered_) view->pending_tasks.push_back("recover-pinned-state");
  if (!zds_.Connected()) view->pending_tasks.push_back("ztunnel-connected");
  else if (!enroller_.snapshot_sent()) view->pending_tasks.push_back("ztunnel-snapshot");
  view->ready = view->pending_tasks.empty();
  std::lock_guard lock(view_mu_);
  view_ = std::move(view);
}

absl::Status AuthorizeCertificate(const AgentView& view, pid_t caller_pid,
                                  std::string_view identity_ns, std::string_view identity_sa) {
  if (view.ztunnel_pid == 0) {
    return absl::PermissionDeniedError("no ztunnel is connected to this agent");
  }
  if (caller_pid != view.ztunnel_pid) {
    return absl::PermissionDeniedError(StrCat("pid ", caller_pid, " is not the ztunnel (pid ",
                                              view.ztunnel_pid, ") connected over ZDS"));
  }
  for (const PodStatus& p : view.pods) {
    if (p.enrolled && p.ns == identity_ns && p.service_account == identity_sa) {
      return absl::OkStatus();
    }
  }
  for (const WorkloadRef& w : view.wanted) {
    if (w.ns == identity_ns && w.service_account == identity_sa) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(StrCat("no pod enrolled on this node runs as ns/",
                                            identity_ns, "/sa/", identity_sa));
}

std::shared_ptr<const AgentView> Agent::View() const {
  std::lock_guard lock(view_mu_);
  return view_;
}

}  // namespace zm::agent
