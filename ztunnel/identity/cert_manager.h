#pragma once
// ztunnel's certificates (DESIGN §5 "Identity and certificates"): one per workload identity
// present on the node. A key is generated locally for every issuance (it never leaves the
// process); the CSR carries the SPIFFE URI SAN; the certificate is refreshed at half its
// lifetime, failures back off per identity (doubling, capped at 150 s) while the current
// certificate keeps being served until it expires; an identity is forgotten when the last
// workload using it leaves. The trust bundle is the set of roots the CA's chains end in.
//
// Tick-driven with an injected clock: Tick() does whatever is due and returns when to call it
// next, so tests run the whole lifecycle in simulated time. In the proxy a thread of its own
// (Start) calls Tick(), so a slow CA never blocks the data path or the ZDS client.

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/tls/hbone_tls.h"
#include "common/tls/spiffe.h"

namespace zm::ztunnel {

// The CA as ztunnel sees it (GrpcCaClient for real; a fake in tests).
class CertificateSource {
 public:
  virtual ~CertificateSource() = default;
  // A PEM chain {leaf, ..., root} for `csr_pem`.
  virtual absl::StatusOr<std::vector<std::string>> Fetch(const std::string& csr_pem,
                                                         std::chrono::seconds ttl) = 0;
};

struct CertManagerOptions {
  std::chrono::seconds ttl{24 * 3600};
  std::chrono::seconds initial_backoff{1};
  std::chrono::seconds max_backoff{150};
  std::string trust_domain = "cluster.local";
};

// One identity's state, for logs and the admin endpoint.
struct CertStatus {
  std::string identity;
  int refs = 0;
  bool has_cert = false;
  std::chrono::system_clock::time_point not_after;
  std::chrono::system_clock::time_point next_attempt;
  int failures = 0;
  std::string last_error;
};

class CertManager {
 public:
  CertManager(CertificateSource& source, const Clock& clock, CertManagerOptions options = {});
  ~CertManager();

  // A workload with `id` appeared / left (reference counted). AddRef makes a fetch due now.
  void AddRef(const tls::SpiffeId& id);
  void Release(const tls::SpiffeId& id);

  // The current, unexpired credentials for `id`: NotFound when the identity is unknown,
  // Unavailable when no valid certificate was obtained yet (or the last one expired).
  absl::StatusOr<std::shared_ptr<const tls::Credentials>> Get(const tls::SpiffeId& id) const;
  // Blocks until `id` has a valid certificate, an attempt to get one has failed, or `timeout`
  // passed (a slow CA); true when the certificate is there. `id` must be referenced (AddRef).
  bool WaitForAttempt(const tls::SpiffeId& id, std::chrono::milliseconds timeout) const;
  // Every root the current certificates chain to (PEM), deduplicated.
  std::vector<std::string> RootPems() const;

  // Does everything due at Now(); returns when the next work is due (Now() + 1 h at most).
  std::chrono::system_clock::time_point Tick();

  // Runs Tick() on a thread of its own until destruction, woken early by AddRef.
  void Start();
  std::vector<CertStatus> Status() const;

 private:
  struct Entry {
    tls::SpiffeId id;
    int refs = 0;
    std::shared_ptr<const tls::Credentials> creds;
    std::string root_pem;
    std::chrono::system_clock::time_point issued_at, not_after, next_attempt;
    int failures = 0;
    std::string last_error;
  };
  absl::Status Refresh(Entry& e);  // called without mu_ held for the fetch itself
  std::chrono::seconds Backoff(int failures) const;

  CertificateSource& source_;
  const Clock& clock_;
  const CertManagerOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;  // by SPIFFE URI; guarded by mu_
  std::condition_variable wake_;
  mutable std::condition_variable attempted_;  // after every CA round trip
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace zm::ztunnel
