#pragma once
// Keeps the certificate manager in step with the pods ztunnel serves: a WorkloadHandler that
// wraps WorkloadManager and, after every ZDS request, takes a reference on the identity of
// each pod that appeared and drops the one of each pod that left (Del, replace, or dropped
// by SnapshotSent). So a certificate is prefetched when a workload appears and forgotten
// when the last workload with that identity leaves.
//
// A new pod's listeners are created only once its certificate is here, or the CA refused or
// failed, or `cert_wait` passed (well within the agent's 5 s ack deadline): in a surge upgrade
// they join the old ztunnel's listeners (SO_REUSEPORT) and take connections at once, and an
// inbound HBONE connection without a certificate would be closed.

#include <chrono>
#include <map>
#include <string>

#include "ztunnel/identity/cert_manager.h"
#include "ztunnel/workload_manager.h"

namespace zm::ztunnel {

class WorkloadIdentities : public WorkloadHandler {
 public:
  WorkloadIdentities(WorkloadManager& inner, CertManager& certs, std::string trust_domain,
                     std::chrono::milliseconds cert_wait = std::chrono::seconds(2))
      : inner_(inner),
        certs_(certs),
        trust_domain_(std::move(trust_domain)),
        cert_wait_(cert_wait) {}
  ~WorkloadIdentities() override;

  void OnSessionStart() override { inner_.OnSessionStart(); }
  zds::Ack Handle(zds::Request request) override;

 private:
  WorkloadManager& inner_;
  CertManager& certs_;
  std::string trust_domain_;
  std::chrono::milliseconds cert_wait_;
  std::chrono::steady_clock::time_point skip_waits_until_{};  // after a wait timed out
  std::map<std::string, tls::SpiffeId> by_uid_;  // pods holding a reference
};

}  // namespace zm::ztunnel
