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

bool ProcessRunning(pid_t pid) {
  // /proc/<pid>/stat: "pid (comm) S ..."; a zombie has exited already.
  std::ifstream in(StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return false;
  const char state = stat[close + 2];
  return state != 'Z' && state != 'X';
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
      cni_pods_(options_.cni_state_file),
      datapath_(datapath),
      zds_(zds),
      netns_(netns),
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
  waypoint_pods_.clear();
  for (const mesh::Workload& w : snapshot.workloads) {
    if (w.node != options_.node || w.terminal() || w.netns.empty() ||
        !w.labels.contains(std::string(mesh::kGatewayNameLabel))) {
      continue;
    }
    auto fd = netns_.Open(w.netns);
    struct stat st{};
    if (!fd.ok() || fstat(fd->get(), &st) != 0) {
      L().warn("waypoint {}: cannot open its netns {}: it gets no certificate", w.key(), w.netns);
      continue;
    }
    waypoint_pods_.push_back({.pod = w.key(),
                              .ns = w.ns,
                              .service_account = w.service_account,
                              .netns_inode = static_cast<uint64_t>(st.st_ino)});
  }
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
  decisions_ = DecideEnrollment(snapshot, options_.node);
  decision_by_key_.clear();
  for (size_t i = 0; i < decisions_.size(); ++i) decision_by_key_[decisions_[i].key()] = i;
  for (const EnrollmentDecision& d : decisions_) {
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
  if (config.ztunnel_prev_tgid != 0) {
    if (ProcessRunning(static_cast<pid_t>(config.ztunnel_prev_tgid))) {
      predecessor_pid_ = static_cast<pid_t>(config.ztunnel_prev_tgid);
    } else {
      config.ztunnel_prev_tgid = 0;
      config.ztunnel_prev_cgroup_id = 0;
    }
  }
  ZM_RETURN_IF_ERROR(datapath_.WriteConfig(config));
  // The sandboxes zmesh-cni reported before a restart: without their netns the pods enrolled
  // through it would look unwanted to Recover() and lose their capture.
  ZM_RETURN_IF_ERROR(cni_pods_.Load(std::chrono::steady_clock::now()));
  objects_ = std::move(initial);
  Recompute();
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

void Agent::PostCni(cni::PodRequest request, CniReply reply) {
  std::lock_guard lock(mu_);
  events_.emplace_back(CniCall{.request = std::move(request), .reply = std::move(reply)});
  cv_.notify_one();
}

void Agent::SetTaskPending(const std::string& task, bool pending) {
  std::lock_guard lock(view_mu_);
  if (pending) {
    external_tasks_.insert(task);
  } else {
    external_tasks_.erase(task);
  }
}

void Agent::Recompute() {
  desired_ = cni_pods_.pods().empty() ? Desired(*objects_)
                                      : Desired(WithCniPods(*objects_, cni_pods_.pods()));
}

void Agent::OnCni(CniCall call) {
  const cni::PodRequest& r = call.request;
  const std::string key = r.key();
  L().info("CNI {} {} container {} netns {}", cni::CommandName(r.command), key, r.container_id,
           r.netns.empty() ? "-" : r.netns);
  switch (r.command) {
    case cni::Command::kAdd: {
      absl::Status st = cni_pods_.Put({.ns = r.pod_namespace,
                                       .name = r.pod_name,
                                       .uid = r.pod_uid,
                                       .container_id = r.container_id,
                                       .netns = r.netns,
                                       .ips = r.ips,
                                       .recorded = std::chrono::steady_clock::now()});
      // Enrollment goes on; only a restart would forget this sandbox.
      if (!st.ok()) L().error("CNI {}: cannot save the sandbox: {}", key, st.message());
      if (auto old = cni_adds_.find(key); old != cni_adds_.end()) {
        old->second.call.reply(
            {.ok = false,
             .error = StrCat(key, ": superseded by the ADD of container ", r.container_id),
             .retry = true});
        cni_adds_.erase(old);
      }
      const int64_t ms = r.timeout_ms > 0 ? r.timeout_ms : 30'000;
      cni_adds_[key] =
          PendingAdd{.call = std::move(call),
                     .deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms),
                     .why = "the agent has not looked at it yet"};
      break;
    }
    case cni::Command::kDel: {
      auto removed = cni_pods_.Remove(key, r.container_id);
      if (!removed.ok()) L().error("CNI {}: {}", key, removed.status().message());
      if (auto add = cni_adds_.find(key);
          add != cni_adds_.end() &&
          (r.container_id.empty() || add->second.call.request.container_id == r.container_id)) {
        add->second.call.reply(
            {.ok = false, .error = StrCat(key, ": its sandbox was deleted"), .retry = true});
        cni_adds_.erase(add);
      }
      cni_answer_now_.push_back(std::move(call));
      break;
    }
    case cni::Command::kCheck:
      cni_answer_now_.push_back(std::move(call));
      break;
  }
}

std::optional<cni::PodReply> Agent::CniAnswer(const cni::PodRequest& r,
                                              const std::map<std::string, PodStatus>& pending,
                                              std::string& why) const {
  const std::string key = r.key();
  auto ok = [](std::string_view state) {
    return cni::PodReply{.ok = true, .state = std::string(state)};
  };
  auto refuse = [&](std::string_view error) {
    return cni::PodReply{.ok = false, .error = StrCat(key, ": ", error)};
  };
  const k8s::Pod* pod = objects_->FindPod(r.pod_namespace, r.pod_name);
  if (pod == nullptr || (!r.pod_uid.empty() && pod->uid != r.pod_uid)) {
    // Not (yet) seen from the API server. A namespace known to be outside the mesh decides now;
    // otherwise the pod's labels and service account are needed.
    if (const k8s::Namespace* ns = objects_->FindNamespace(r.pod_namespace)) {
      auto mode = ns->labels.find(std::string(kDataplaneModeLabel));
      if (mode == ns->labels.end() || mode->second != kDataplaneModeAmbient) {
        return ok(cni::kStateNotInMesh);
      }
    }
    why = pod == nullptr ? "the pod is not known from the API server yet"
                         : StrCat("pod uid ", r.pod_uid, " is not known from the API server yet");
    return std::nullopt;
  }
  auto d = decision_by_key_.find(key);
  if (d == decision_by_key_.end()) {
    return refuse(
        StrCat("spec.nodeName is \"", pod->node_name, "\", this is node ", options_.node));
  }
  const EnrollmentDecision& decision = decisions_[d->second];
  switch (decision.reason) {
    case EnrollReason::kEnrolled: {
      const EnrollTarget* target = enroller_.EnrolledTarget(decision.uid);
      if (target != nullptr && (r.netns.empty() || target->netns == r.netns)) {
        return ok(cni::kStateEnrolled);
      }
      auto p = pending.find(decision.uid);
      why = p != pending.end() ? p->second.error : "enrollment in progress";
      return std::nullopt;
    }
    case EnrollReason::kNamespaceNotLabelled:
    case EnrollReason::kNamespaceModeNotAmbient:
    case EnrollReason::kPodOptedOut:
    case EnrollReason::kTerminalPhase:
      return ok(cni::kStateNotInMesh);
    case EnrollReason::kNamespaceNotFound:
      why = decision.detail;
      return std::nullopt;
    case EnrollReason::kNotOnThisNode:
    case EnrollReason::kInvalidPod:
    case EnrollReason::kNoNetns:
    case EnrollReason::kNoIp:
      return refuse(decision.detail);
  }
  return refuse("unknown enrollment decision");
}

void Agent::AnswerCni() {
  if (cni_adds_.empty() && cni_answer_now_.empty()) return;
  std::map<std::string, PodStatus> pending;
  for (PodStatus& p : enroller_.Status()) {
    if (!p.enrolled) pending.emplace(p.uid, std::move(p));
  }
  const auto now = std::chrono::steady_clock::now();
  for (auto it = cni_adds_.begin(); it != cni_adds_.end();) {
    PendingAdd& add = it->second;
    std::optional<cni::PodReply> reply = CniAnswer(add.call.request, pending, add.why);
    if (!reply && now >= add.deadline) {
      reply = cni::PodReply{.ok = false,
                            .error = StrCat(it->first, ": not enrolled in time: ", add.why),
                            .retry = true};
    }
    if (!reply) {
      ++it;
      continue;
    }
    L().info("CNI add {}: {}", it->first, reply->ok ? reply->state : reply->error);
    add.call.reply(*reply);
    it = cni_adds_.erase(it);
  }
  for (CniCall& call : cni_answer_now_) {
    const std::string key = call.request.key();
    cni::PodReply reply;
    if (call.request.command == cni::Command::kDel) {
      // Still enrolled only when something else names its netns (the zmesh.io/netns annotation).
      auto d = decision_by_key_.find(key);
      const bool enrolled = d != decision_by_key_.end() &&
                            enroller_.EnrolledTarget(decisions_[d->second].uid) != nullptr;
      reply = {.ok = true,
               .state = std::string(enrolled ? cni::kStateEnrolled : cni::kStateRemoved)};
    } else {
      std::string why;
      std::optional<cni::PodReply> now_reply = CniAnswer(call.request, pending, why);
      reply = now_reply
                  ? *now_reply
                  : cni::PodReply{.ok = false, .error = StrCat(key, ": ", why), .retry = true};
    }
    L().info("CNI {} {}: {}", cni::CommandName(call.request.command), key,
             reply.ok ? reply.state : reply.error);
    call.reply(reply);
  }
  cni_answer_now_.clear();
}

std::chrono::milliseconds Agent::NextWakeup() const {
  std::chrono::milliseconds wait{1000};
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [key, add] : cni_adds_) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(add.deadline - now);
    wait = std::min(wait, std::max(left, std::chrono::milliseconds(0)));
  }
  return wait;
}

void Agent::PostStatuses() {
  if (!status_listener_) return;
  std::vector<StatusTarget> statuses = DesiredStatuses(decisions_, enroller_.Status());
  if (statuses == posted_statuses_) return;
  posted_statuses_ = statuses;
  status_listener_(std::move(statuses));
}

void Agent::Stop() {
  std::lock_guard lock(mu_);
  stop_ = true;
  cv_.notify_one();
}

void Agent::OnZtunnel(Fd conn) {
  auto peer = zds_.Adopt(std::move(conn), predecessor_pid_);
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
    const pid_t before = static_cast<pid_t>(config->ztunnel_tgid);
    if (before != 0 && before != peer->pid && ProcessRunning(before)) {
      // A surge upgrade: the ztunnel recorded so far still runs and drains its connections
      // (its listeners share the ports with SO_REUSEPORT). Its upstream connects must stay
      // uncaptured until it exits.
      config->ztunnel_prev_tgid = config->ztunnel_tgid;
      config->ztunnel_prev_cgroup_id = config->ztunnel_cgroup_id;
      predecessor_pid_ = before;
      L().info("ztunnel pid {} replaces pid {}, which drains its connections", peer->pid, before);
    } else if (config->ztunnel_prev_tgid != 0 &&
               !ProcessRunning(static_cast<pid_t>(config->ztunnel_prev_tgid))) {
      config->ztunnel_prev_tgid = 0;
      config->ztunnel_prev_cgroup_id = 0;
      predecessor_pid_ = 0;
    }
    config->ztunnel_tgid = static_cast<uint32_t>(peer->pid);
    config->ztunnel_cgroup_id = cgroup.ok() ? *cgroup : 0;
    absl::Status st = datapath_.WriteConfig(*config);
    if (!st.ok()) L().error("zm_config: {}", st.message());
  }
  L().info("ztunnel connected: pid {} cgroup id {}", peer->pid, cgroup.ok() ? *cgroup : 0);
  ztunnel_pid_ = peer->pid;
  // The CA authorizes by the view's ztunnel pid, and ztunnel fetches a pod's certificate before
  // it acks the pod's Add: publish before the Adds go out.
  Publish();
  enroller_.OnZtunnelConnected();
}

void Agent::ForgetExitedPredecessor() {
  if (predecessor_pid_ == 0 || ProcessRunning(predecessor_pid_)) return;
  auto config = datapath_.ReadConfig();
  if (!config.ok()) return;  // tried again on the next round
  if (config->ztunnel_prev_tgid == static_cast<uint32_t>(predecessor_pid_)) {
    config->ztunnel_prev_tgid = 0;
    config->ztunnel_prev_cgroup_id = 0;
    if (absl::Status st = datapath_.WriteConfig(*config); !st.ok()) {
      L().error("zm_config: {}", st.message());
      return;
    }
  }
  L().info("the replaced ztunnel (pid {}) has exited", predecessor_pid_);
  predecessor_pid_ = 0;
}

void Agent::Run() {
  while (true) {
    std::deque<Event> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, NextWakeup(), [&] { return stop_ || !events_.empty(); });
      if (stop_) break;
      batch.swap(events_);
    }
    bool reconcile = false;
    bool objects_changed = false;
    for (Event& e : batch) {
      if (auto* snap = std::get_if<std::shared_ptr<const k8s::ManifestSnapshot>>(&e)) {
        objects_ = std::move(*snap);
        objects_changed = reconcile = true;
      } else if (auto* call = std::get_if<CniCall>(&e)) {
        OnCni(std::move(*call));
        reconcile = true;
      } else {
        OnZtunnel(std::move(std::get<Fd>(e)));
      }
    }
    if (objects_changed && !cni_pods_.pods().empty()) {
      // Sandboxes of pods that are gone (a DEL missed while the agent was down).
      std::set<std::string> keep;
      for (const auto& [key, add] : cni_adds_) keep.insert(key);
      auto gone =
          cni_pods_.Gc(*objects_, keep, std::chrono::steady_clock::now(), std::chrono::seconds(60));
      if (!gone.ok()) L().error("CNI state: {}", gone.status().message());
      for (const std::string& key : gone.ok() ? *gone : std::vector<std::string>{}) {
        L().info("CNI: forgot the sandbox of {}: the pod is gone", key);
      }
    }
    if (reconcile) Recompute();
    if (zds_.Connected() && zds_.CheckHangup()) enroller_.OnZtunnelDisconnected();
    ForgetExitedPredecessor();
    // The CA reads the view: the ztunnel's pid and the wanted pods must be in it before the
    // ZDS Adds go out (ztunnel fetches a pod's certificate as soon as it gets the Add).
    if (reconcile || enroller_.has_pending()) Publish();
    // Pending pods are retried on every tick; an up-to-date node costs a map compare.
    if (reconcile || enroller_.has_pending()) {
      enroller_.Reconcile(desired_);
      ++reconciles_;
    }
    AnswerCni();
    PostStatuses();
    Publish();
  }
  // Whoever still waits learns it now rather than at its deadline.
  for (auto& [key, add] : cni_adds_) {
    add.call.reply({.ok = false, .error = StrCat(key, ": the agent is stopping"), .retry = true});
  }
  cni_adds_.clear();
}

void Agent::Publish() {
  auto view = std::make_shared<AgentView>();
  view->pods = enroller_.Status();
  view->manifest_errors = manifest_errors_;
  view->reconciles = reconciles_;
  view->ztunnel_connected = zds_.Connected();
  view->ztunnel_pid = zds_.Connected() ? ztunnel_pid_ : 0;
  for (const EnrollTarget& t : desired_) view->wanted.push_back(t.ref);
  view->waypoint_pods = waypoint_pods_;
  view->cni_waiting = cni_adds_.size();
  if (!recovered_) view->pending_tasks.push_back("recover-pinned-state");
  if (!zds_.Connected())
    view->pending_tasks.push_back("ztunnel-connected");
  else if (!enroller_.snapshot_sent())
    view->pending_tasks.push_back("ztunnel-snapshot");
  std::lock_guard lock(view_mu_);
  for (const std::string& task : external_tasks_) view->pending_tasks.push_back(task);
  view->ready = view->pending_tasks.empty();
  view_ = std::move(view);
}

absl::Status AuthorizeCertificate(const AgentView& view, pid_t caller_pid,
                                  std::optional<uint64_t> caller_netns_inode,
                                  std::string_view identity_ns, std::string_view identity_sa) {
  if (caller_pid == view.ztunnel_pid && view.ztunnel_pid != 0) {
    return AuthorizeCertificate(view, caller_pid, identity_ns, identity_sa);
  }
  if (caller_netns_inode) {
    for (const AgentView::WaypointPod& w : view.waypoint_pods) {
      if (w.netns_inode != *caller_netns_inode) continue;
      if (w.ns == identity_ns && w.service_account == identity_sa) return absl::OkStatus();
      return absl::PermissionDeniedError(
          StrCat("pid ", caller_pid, " is in the netns of waypoint ", w.pod, ", which runs as ns/",
                 w.ns, "/sa/", w.service_account, ", not ns/", identity_ns, "/sa/", identity_sa));
    }
  }
  return AuthorizeCertificate(view, caller_pid, identity_ns, identity_sa);
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
