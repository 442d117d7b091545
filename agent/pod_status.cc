#include "agent/pod_status.h"

#include <nlohmann/json.hpp>

#include "common/base/log.h"
#include "common/base/strings.h"
#include "common/kube/kinds.h"

namespace zm::agent {
namespace {

spdlog::logger& L() {
  static spdlog::logger& l = Log("k8s");
  return l;
}

std::optional<std::string> EnrolledStatus(const std::map<std::string, const PodStatus*>& by_uid,
                                          const std::string& uid) {
  auto it = by_uid.find(uid);
  // Not reconciled yet, or waiting for ztunnel: pending. Anything else that holds it back is an
  // error worth showing (it is retried every second all the same).
  if (it == by_uid.end() || it->second->waiting) return std::string(kStatusPending);
  if (it->second->enrolled) return std::string(kStatusEnrolled);
  return StrCat("error: ", it->second->error);
}

}  // namespace

std::vector<StatusTarget> DesiredStatuses(const std::vector<EnrollmentDecision>& decisions,
                                          const std::vector<PodStatus>& enroller) {
  std::map<std::string, const PodStatus*> by_uid;
  for (const PodStatus& p : enroller) by_uid[p.uid] = &p;
  std::vector<StatusTarget> out;
  for (const EnrollmentDecision& d : decisions) {
    StatusTarget t{.uid = d.uid, .ns = d.ns, .name = d.name};
    switch (d.reason) {
      case EnrollReason::kEnrolled:
        t.value = EnrolledStatus(by_uid, d.uid);
        break;
      case EnrollReason::kNoNetns:  // in the mesh, waiting for the CNI ADD
      case EnrollReason::kNoIp:
        t.value = std::string(kStatusPending);
        break;
      case EnrollReason::kInvalidPod:
        t.value = StrCat("error: ", d.detail);
        break;
      case EnrollReason::kNamespaceNotLabelled:
      case EnrollReason::kNamespaceModeNotAmbient:
      case EnrollReason::kPodOptedOut:
        t.value = std::nullopt;  // outside the mesh: no status of ours
        break;
      case EnrollReason::kNotOnThisNode:
      case EnrollReason::kNamespaceNotFound:
      case EnrollReason::kTerminalPhase:
        continue;  // not ours to say, or not worth a write
    }
    out.push_back(std::move(t));
  }
  return out;
}

StatusWriter::StatusWriter(kube::KubeApi& api, Observed observed, Options options)
    : api_(api), observed_(std::move(observed)), options_(options) {}

StatusWriter::~StatusWriter() { Stop(); }

void StatusWriter::Start() {
  thread_ = std::thread([this] { Run(); });
}

void StatusWriter::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StatusWriter::Post(std::vector<StatusTarget> desired) {
  {
    std::lock_guard lock(mu_);
    next_ = std::move(desired);
  }
  cv_.notify_all();
}

StatusWriter::Stats StatusWriter::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

bool StatusWriter::Pass(const std::vector<StatusTarget>& desired) {
  bool complete = true;
  std::map<std::string, std::optional<std::string>> still;
  for (const StatusTarget& t : desired) {
    auto w = written_.find(t.uid);
    if (w != written_.end()) still.insert(*w);
    std::optional<std::optional<std::string>> observed = observed_(t);
    if (!observed) continue;  // not in the cache (yet, or any more): nothing to patch
    if (*observed == t.value) {
      still[t.uid] = t.value;
      continue;
    }
    // Ours already, and someone changed it since (or the cache has not caught up): leave it.
    if (w != written_.end() && w->second == t.value) continue;
    nlohmann::json annotations = {{std::string(kStatusAnnotation), nullptr}};
    if (t.value) annotations[std::string(kStatusAnnotation)] = *t.value;
    // The uid is a precondition: a pod recreated under the same name is not ours to patch.
    nlohmann::json patch = {{"metadata", {{"uid", t.uid}, {"annotations", annotations}}}};
    auto done = api_.Patch(kube::kPodKind.ObjectPath(t.ns, t.name), patch);
    if (done.ok()) {
      still[t.uid] = t.value;
      L().info("pod {}: {} {}", t.key(), kStatusAnnotation, t.value ? *t.value : "(removed)");
      std::lock_guard lock(mu_);
      ++stats_.patches;
      continue;
    }
    const int http = kube::HttpStatusOf(done.status());
    if (http == 404 || http == 409) continue;  // gone, or another pod by now: nothing to retry
    L().warn("pod {}: cannot write {}: {}", t.key(), kStatusAnnotation, done.status().message());
    complete = false;
    std::lock_guard lock(mu_);
    ++stats_.failures;
    stats_.last_error = std::string(done.status().message());
  }
  written_ = std::move(still);
  std::lock_guard lock(mu_);
  ++stats_.passes;
  return complete;
}

void StatusWriter::Run() {
  kube::Backoff backoff(options_.backoff);
  std::vector<StatusTarget> desired;
  bool retry = false;
  std::chrono::milliseconds delay{0};
  while (true) {
    {
      std::unique_lock lock(mu_);
      auto ready = [&] { return stop_ || next_.has_value(); };
      if (retry) {
        cv_.wait_for(lock, delay, ready);
      } else {
        cv_.wait(lock, ready);
      }
      if (stop_) return;
      if (next_) {
        desired = std::move(*next_);
        next_.reset();
      }
    }
    retry = !Pass(desired);
    if (retry) {
      delay = backoff.Next();
    } else {
      backoff.Reset();
    }
  }
}

}  // namespace zm::agent
