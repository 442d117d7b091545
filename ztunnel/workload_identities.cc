#include "ztunnel/workload_identities.h"

#include <set>

#include "common/base/log.h"
#include "common/base/strings.h"

namespace zm::ztunnel {

WorkloadIdentities::~WorkloadIdentities() {
  for (const auto& [uid, id] : by_uid_) certs_.Release(id);
}

zds::Ack WorkloadIdentities::Handle(zds::Request request) {
  std::optional<std::pair<std::string, tls::SpiffeId>> added;
  if (const auto* add = std::get_if<zds::AddWorkload>(&request)) {
    auto id = tls::SpiffeId::ForServiceAccount(trust_domain_, add->ns, add->service_account);
    if (!id.ok()) {
      return zds::Ack{.error = StrCat("pod ", add->ns, "/", add->name,
                                      ": no valid identity: ", id.status().message())};
    }
    added.emplace(add->uid, *id);
    // A reference for the wait (the fetch starts now), dropped below.
    certs_.AddRef(*id);
    const auto now = std::chrono::steady_clock::now();
    const bool wait = now >= skip_waits_until_;
    if (!certs_.WaitForAttempt(*id, wait ? cert_wait_ : std::chrono::milliseconds(0)) && wait) {
      // The CA refused, failed or is slow: do not hold every other pod's Add for it.
      skip_waits_until_ = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      Log("identity").warn("pod {}/{}: no certificate for {} yet; serving it anyway (inbound "
                           "HBONE fails closed until it comes), and not waiting for "
                           "certificates in the next 30 s",
                           add->ns, add->name, id->ToString());
    }
  }
  zds::Ack ack = inner_.Handle(std::move(request));

  std::vector<std::string> live = inner_.Uids();
  std::set<std::string> live_set(live.begin(), live.end());
  if (added && ack.error.empty() && live_set.count(added->first)) {
    auto old = by_uid_.find(added->first);
    if (old == by_uid_.end() || old->second.ToString() != added->second.ToString()) {
      certs_.AddRef(added->second);
      if (old != by_uid_.end()) certs_.Release(old->second);
      by_uid_.insert_or_assign(added->first, added->second);
    }
  }
  for (auto it = by_uid_.begin(); it != by_uid_.end();) {
    if (live_set.count(it->first)) {
      ++it;
      continue;
    }
    certs_.Release(it->second);
    it = by_uid_.erase(it);
  }
  if (added) certs_.Release(added->second);
  return ack;
}

}  // namespace zm::ztunnel
