#include "common/kube/kube_source.h"

#include <algorithm>
#include <tuple>
#include <variant>

#include "common/base/log.h"
#include "common/base/strings.h"

namespace zm::kube {
namespace {

spdlog::logger& L() {
  static spdlog::logger& l = Log("k8s");
  return l;
}

// ManifestSnapshot's order (its Find* functions search by it): namespace, then name — not the
// informers' "namespace/name" string order ("a-b/x" < "a/x", but namespace "a" < "a-b").
template <typename T, typename Ns>
void SortByNamespaceAndName(std::vector<T>& v, Ns ns_of) {
  std::sort(v.begin(), v.end(), [&](const T& a, const T& b) {
    return std::tie(ns_of(a), a.name) < std::tie(ns_of(b), b.name);
  });
}

// The namespace of a k8s:: struct, and of an authz:: policy.
constexpr auto kNamespaceOf = [](const auto& o) -> const std::string& { return o.namespace_name; };
constexpr auto kPolicyNamespaceOf = [](const auto& o) -> const std::string& { return o.ns; };

// Splits an informer's valid and rejected policies, each sorted.
template <typename Valid, typename Rejected, typename List, typename Ns>
void Split(const List& items, std::vector<Valid>& valid, std::vector<Rejected>& rejected,
           Ns ns_of) {
  for (const auto& item : items) {
    if (const Valid* v = std::get_if<Valid>(&item)) {
      valid.push_back(*v);
    } else {
      rejected.push_back(std::get<Rejected>(item));
    }
  }
  SortByNamespaceAndName(valid, ns_of);
  SortByNamespaceAndName(rejected, ns_of);
}

}  // namespace

absl::StatusOr<CachedPod> CachedPodFromJson(const nlohmann::json& object) {
  absl::StatusOr<k8s::Pod> pod = PodFromJson(object);
  if (!pod.ok()) return pod.status();
  CachedPod out;
  if (auto it = pod->annotations.find(std::string(kStatusAnnotation));
      it != pod->annotations.end()) {
    out.status = std::move(it->second);
    pod->annotations.erase(it);
  }
  out.pod = *std::move(pod);
  return out;
}

KubeSource::KubeSource(KubeApi& api, Callback callback, Options options)
    : callback_(std::move(callback)), options_(std::move(options)) {
  const InformerOptions& o = options_.informer;
  namespaces_ = NewNamespaceInformer(api, o);
  pods_ = std::make_unique<Informer<CachedPod>>(api, kPodKind, CachedPodFromJson, o);
  services_ = NewServiceInformer(api, o);
  peer_authentications_ = NewPeerAuthenticationInformer(api, o);
  authorization_policies_ = NewAuthorizationPolicyInformer(api, o);
  request_authentications_ = NewRequestAuthenticationInformer(api, o);
}

std::unique_ptr<KubeSource> KubeSource::Start(KubeApi& api, Callback callback, Options options) {
  std::unique_ptr<KubeSource> s(new KubeSource(api, std::move(callback), std::move(options)));
  auto dirty = [raw = s.get()](const auto&...) { raw->MarkDirty(); };
  s->namespaces_->AddHandlers({dirty, dirty, dirty});
  s->pods_->AddHandlers({dirty, dirty, dirty});
  s->services_->AddHandlers({dirty, dirty, dirty});
  s->peer_authentications_->AddHandlers({dirty, dirty, dirty});
  s->authorization_policies_->AddHandlers({dirty, dirty, dirty});
  s->request_authentications_->AddHandlers({dirty, dirty, dirty});
  s->thread_ = std::thread([raw = s.get()] { raw->Run(); });
  for (InformerBase* i : s->Informers()) i->Start();
  return s;
}

KubeSource::~KubeSource() { Stop(); }

void KubeSource::Stop() {
  // Informers first: their handlers call MarkDirty on us.
  for (InformerBase* i : Informers()) i->Stop();
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::vector<InformerBase*> KubeSource::Informers() const {
  return {namespaces_.get(),
          pods_.get(),
          services_.get(),
          peer_authentications_.get(),
          authorization_policies_.get(),
          request_authentications_.get()};
}

bool KubeSource::HasSynced() const {
  std::lock_guard lock(mu_);
  return current_ != nullptr;
}

bool KubeSource::WaitForSync(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return current_ != nullptr; });
}

std::vector<std::string> KubeSource::Unsynced() const {
  std::vector<std::string> out;
  for (const InformerBase* i : Informers()) {
    if (!i->HasSynced()) out.emplace_back(i->kind().kind);
  }
  return out;
}

std::shared_ptr<const k8s::ManifestSnapshot> KubeSource::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

uint64_t KubeSource::snapshots() const {
  std::lock_guard lock(mu_);
  return snapshots_;
}

std::optional<std::optional<std::string>> KubeSource::ObservedStatus(const std::string& ns,
                                                                     const std::string& name,
                                                                     const std::string& uid) const {
  std::optional<CachedPod> p = pods_->Get(StrCat(ns, "/", name));
  if (!p || p->pod.uid != uid) return std::nullopt;
  return p->status;
}

std::vector<std::pair<std::string, InformerStats>> KubeSource::Stats() const {
  std::vector<std::pair<std::string, InformerStats>> out;
  for (const InformerBase* i : Informers()) out.emplace_back(i->kind().kind, i->Stats());
  return out;
}

void KubeSource::MarkDirty() {
  {
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (!dirty_) first_change_ = now;
    last_change_ = now;
    dirty_ = true;
  }
  cv_.notify_all();
}

std::shared_ptr<const k8s::ManifestSnapshot> KubeSource::Build() const {
  auto snap = std::make_shared<k8s::ManifestSnapshot>();
  snap->namespaces = namespaces_->List();
  std::sort(snap->namespaces.begin(), snap->namespaces.end(),
            [](const k8s::Namespace& a, const k8s::Namespace& b) { return a.name < b.name; });
  for (CachedPod& p : pods_->List()) snap->pods.push_back(std::move(p.pod));
  SortByNamespaceAndName(snap->pods, kNamespaceOf);
  snap->services = services_->List();
  SortByNamespaceAndName(snap->services, kNamespaceOf);
  Split(peer_authentications_->List(), snap->peer_authentications,
        snap->rejected_peer_authentications, kNamespaceOf);
  Split(authorization_policies_->List(), snap->authorization_policies,
        snap->rejected_authorization_policies, kPolicyNamespaceOf);
  Split(request_authentications_->List(), snap->request_authentications,
        snap->rejected_request_authentications, kPolicyNamespaceOf);
  return snap;
}

void KubeSource::Publish() {
  std::shared_ptr<const k8s::ManifestSnapshot> snap = Build();
  const bool first = !HasSynced();  // only this thread sets current_
  if (first) {
    // Logged before anyone waiting for the sync can go on (and log what it does next).
    L().info(
        "cluster objects synced: {} namespaces, {} pods, {} services, {}+{} "
        "PeerAuthentications, {}+{} AuthorizationPolicies, {}+{} RequestAuthentications "
        "(valid+rejected)",
        snap->namespaces.size(), snap->pods.size(), snap->services.size(),
        snap->peer_authentications.size(), snap->rejected_peer_authentications.size(),
        snap->authorization_policies.size(), snap->rejected_authorization_policies.size(),
        snap->request_authentications.size(), snap->rejected_request_authentications.size());
  }
  {
    std::lock_guard lock(mu_);
    current_ = snap;
    ++snapshots_;
  }
  if (first) cv_.notify_all();  // WaitForSync
  callback_(std::move(snap));
}

void KubeSource::Run() {
  // 1. Every informer synced. Waiting on each in turn (their own condition variables), with a
  // short bound so that Stop() is noticed.
  for (const InformerBase* i : Informers()) {
    while (!i->WaitForSync(std::chrono::milliseconds(100))) {
      std::lock_guard lock(mu_);
      if (stop_) return;
    }
  }
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    dirty_ = false;  // what changed until now is in the first snapshot
  }
  Publish();
  // 2. Every change, coalesced.
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || dirty_; });
    if (stop_) return;
    const auto due = std::min(last_change_ + options_.quiet, first_change_ + options_.max_delay);
    if (std::chrono::steady_clock::now() < due) {
      cv_.wait_until(lock, due, [this] { return stop_; });
      if (stop_) return;
      continue;  // re-evaluate: more changes may have pushed last_change_ on
    }
    dirty_ = false;
    lock.unlock();
    Publish();
    lock.lock();
  }
}

}  // namespace zm::kube
