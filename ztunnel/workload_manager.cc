#include "ztunnel/workload_manager.h"

#include <sys/socket.h>

#include <cstring>

#include "common/base/log.h"
#include "common/base/netns.h"
#include "common/base/strings.h"
#include "ztunnel/inbound_hbone.h"

namespace zm::ztunnel {

WorkloadManager::WorkloadManager(Workers& workers, Proxy& proxy, Metrics& metrics,
                                 Readiness& readiness, uint32_t listener_mark)
    : workers_(workers),
      proxy_(proxy),
      metrics_(metrics),
      readiness_(readiness),
      listener_mark_(listener_mark) {
  readiness_.AddPending(kSnapshotTask);
}

WorkloadManager::~WorkloadManager() { CloseAll(); }

void WorkloadManager::OnSessionStart() { named_since_hello_.clear(); }

zds::Ack WorkloadManager::Handle(zds::Request request) {
  const std::string what = zds::Describe(request);
  Log("zds").debug("handling {}", what);
  if (auto* add = std::get_if<zds::AddWorkload>(&request)) return Add(std::move(*add));
  if (auto* keep = std::get_if<zds::KeepWorkload>(&request)) {
    named_since_hello_.insert(keep->uid);
    std::lock_guard lock(mu_);
    if (!pods_.contains(keep->uid)) {
      Log("zds").info("{}: unknown workload, nothing to keep", what);
    }
    return {};
  }
  if (auto* del = std::get_if<zds::DelWorkload>(&request)) {
    named_since_hello_.erase(del->uid);
    Remove(del->uid, /*shutdown_sockets=*/true);
    return {};
  }
  Snapshot();
  return {};
}

zds::Ack WorkloadManager::Ack(const Pod& pod, const std::string& what) {
  zds::Ack ack;
  Fd dup = pod.inbound.Dup();
  if (!dup) {
    ack.error = StrCat(what, ": dup of the inbound listener failed: ", std::strerror(errno));
    return ack;
  }
  ack.listeners.push_back(std::move(dup));
  return ack;
}

zds::Ack WorkloadManager::Add(zds::AddWorkload add) {
  const std::string what = StrCat("add(", add.uid, " ", add.ns, "/", add.name, ")");
  named_since_hello_.insert(add.uid);
  auto inode = NetnsInode(add.netns.get());
  if (!inode.ok()) {
    return {.error = StrCat(what, ": ", inode.status().message())};
  }
  {
    std::lock_guard lock(mu_);
    auto it = pods_.find(add.uid);
    if (it != pods_.end() && it->second.inode == *inode) {
      Log("zds").debug("{}: already serving this netns", what);
      return Ack(it->second, what);
    }
  }
  bool known = false;
  {
    std::lock_guard lock(mu_);
    known = pods_.contains(add.uid);
  }
  if (known) {
    Log("inpod").info("{}: netns changed, replacing the pod's listeners", what);
    Remove(add.uid, /*shutdown_sockets=*/true);
  }

  // Listeners are created inside the pod netns on a helper thread: never setns on a loop.
  PodListenerFds fds;
  absl::Status st = RunInNetns(add.netns.get(), [&]() -> absl::Status {
    auto created = CreatePodListeners(listener_mark_);
    if (!created.ok()) return created.status();
    fds = std::move(*created);
    return absl::OkStatus();
  });
  if (!st.ok()) {
    Log("inpod").warn("{}: cannot create listeners: {}", what, st.message());
    return {.error = StrCat(what, ": creating listeners in the pod netns: ", st.message())};
  }

  Pod pod;
  pod.inode = *inode;
  pod.inbound = fds.inbound.Dup();
  if (!pod.inbound) {
    return {.error = StrCat(what, ": dup of the inbound listener failed: ", std::strerror(errno))};
  }
  auto info = std::make_shared<PodInfo>();
  info->uid = add.uid;
  info->name = add.name;
  info->ns = add.ns;
  info->service_account = add.service_account;
  info->hbone_tls = std::make_shared<HboneTlsCache>();
  info->netns = std::move(add.netns);
  pod.info = info;
  pod.worker = workers_.Next();
  pod.listeners = std::make_shared<PodListeners>(workers_.ctx(pod.worker), proxy_, pod.info);
  auto listeners = pod.listeners;
  st = workers_.RunOn(pod.worker, [&]() -> absl::Status {
    absl::Status s = listeners->Start(std::move(fds));
    if (!s.ok()) listeners->Close(/*shutdown_sockets=*/true);
    return s;
  });
  if (!st.ok()) {
    return {.error = StrCat(what, ": starting listeners: ", st.message())};
  }
  Log("inpod").info("{}: listening on 15001/15006/15008 in netns inode {} (worker {})", what,
                    pod.inode, pod.worker);
  zds::Ack ack = Ack(pod, what);
  std::lock_guard lock(mu_);
  pods_[add.uid] = std::move(pod);
  metrics_.SetWorkloads(static_cast<int64_t>(pods_.size()));
  return ack;
}

void WorkloadManager::Remove(const std::string& uid, bool shutdown_sockets) {
  Pod pod;
  {
    std::lock_guard lock(mu_);
    auto it = pods_.find(uid);
    if (it == pods_.end()) {
      Log("inpod").debug("del({}): unknown workload", uid);
      return;
    }
    pod = std::move(it->second);
    pods_.erase(it);
    metrics_.SetWorkloads(static_cast<int64_t>(pods_.size()));
  }
  if (shutdown_sockets && pod.inbound) ::shutdown(pod.inbound.get(), SHUT_RDWR);
  auto listeners = pod.listeners;
  workers_.RunOn(pod.worker, [listeners, shutdown_sockets] { listeners->Close(shutdown_sockets); });
  Log("inpod").info("pod {} ({}): listeners closed", pod.info->DisplayName(), uid);
}

void WorkloadManager::Snapshot() {
  std::vector<std::string> stale;
  {
    std::lock_guard lock(mu_);
    for (const auto& [uid, pod] : pods_) {
      if (!named_since_hello_.contains(uid)) stale.push_back(uid);
    }
  }
  for (const auto& uid : stale) {
    Log("inpod").info("snapshot: {} was not named since Hello, removing it", uid);
    Remove(uid, /*shutdown_sockets=*/true);
  }
  if (!snapshot_seen_) {
    snapshot_seen_ = true;
    readiness_.Done(kSnapshotTask);
    Log("zds").info("first snapshot handled: {} workloads", Uids().size());
  }
}

void WorkloadManager::CloseAll() {
  std::map<std::string, Pod> pods;
  {
    std::lock_guard lock(mu_);
    pods.swap(pods_);
    metrics_.SetWorkloads(0);
  }
  for (auto& [uid, pod] : pods) {
    auto listeners = pod.listeners;
    workers_.RunOn(pod.worker, [listeners] { listeners->Close(/*shutdown_sockets=*/false); });
  }
}

std::vector<std::string> WorkloadManager::Uids() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [uid, pod] : pods_) out.push_back(uid);
  return out;
}

}  // namespace zm::ztunnel
