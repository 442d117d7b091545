#pragma once
// Keeps the certificate manager in step with the pods ztunnel serves: a WorkloadHandler that
// wraps WorkloadManager and, after every ZDS request, takes a reference on the identity of
// each pod that appeared and drops the one of each pod that left (Del, replace, or dropped
// by SnapshotSent). So a certificate is prefetched when a workload appears and forgotten
// when the last workload with that identity leaves.

#include <map>
#include <string>

#include "ztunnel/identity/cert_manager.h"
#include "ztunnel/workload_manager.h"

namespace zm::ztunnel {

class WorkloadIdentities : public WorkloadHandler {
 public:
  WorkloadIdentities(WorkloadManager& inner, CertManager& certs, std::string trust_domain)
      : inner_(inner), certs_(certs), trust_domain_(std::move(trust_domain)) {}
  ~WorkloadIdentities() override;

  void OnSessionStart() override { inner_.OnSessionStart(); }
  zds::Ack Handle(zds::Request request) override;

 private:
  WorkloadManager& inner_;
  CertManager& certs_;
  std::string trust_domain_;
  std::map<std::string, tls::SpiffeId> by_uid_;  // pods holding a reference
};

}  // namespace zm::ztunnel
