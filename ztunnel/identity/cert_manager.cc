#include "ztunnel/identity/cert_manager.h"

#include <algorithm>
#include <set>

#include "common/base/log.h"
#include "common/base/status.h"
#include "common/base/strings.h"
#include "common/tls/csr.h"
#include "common/tls/pem.h"

namespace zm::ztunnel {
namespace {

spdlog::logger& L() {
  static spdlog::logger& l = Log("identity");
  return l;
}

using TimePoint = std::chrono::system_clock::time_point;

struct Issued {
  std::shared_ptr<const tls::Credentials> creds;
  std::string root_pem;
};

// Key, CSR, CA round trip, and the checks that the CA gave us what we asked for.
absl::StatusOr<Issued> Issue(CertificateSource& source, const tls::SpiffeId& id,
                             std::chrono::seconds ttl) {
  ZM_ASSIGN_OR_RETURN(tls::EvpPkeyPtr key, tls::GenerateEcP256Key());
  ZM_ASSIGN_OR_RETURN(std::string csr, tls::BuildCsr(key.get(), id));
  ZM_ASSIGN_OR_RETURN(std::vector<std::string> chain, source.Fetch(csr, ttl));
  if (chain.size() < 2) {
    return absl::InvalidArgumentError(
        StrCat("the CA returned a chain of ", chain.size(), " certificates, want leaf..root"));
  }
  ZM_ASSIGN_OR_RETURN(std::string key_pem, tls::PrivateKeyToPem(key.get()));
  ZM_ASSIGN_OR_RETURN(tls::Credentials creds, tls::Credentials::FromPem(key_pem, chain));
  ZM_ASSIGN_OR_RETURN(tls::SpiffeId got, creds.Identity());
  if (got.ToString() != id.ToString()) {
    return absl::InvalidArgumentError(
        StrCat("the CA issued ", got.ToString(), " instead of ", id.ToString()));
  }
  return Issued{std::make_shared<const tls::Credentials>(std::move(creds)), chain.back()};
}

}  // namespace

CertManager::CertManager(CertificateSource& source, const Clock& clock,
                         CertManagerOptions options)
    : source_(source), clock_(clock), options_(std::move(options)) {}

CertManager::~CertManager() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void CertManager::AddRef(const tls::SpiffeId& id) {
  {
    std::lock_guard lock(mu_);
    Entry& e = entries_[id.ToString()];
    if (e.refs++ == 0 && !e.creds) {
      e.id = id;
      e.next_attempt = clock_.Now();  // prefetch as soon as a workload appears
    }
  }
  wake_.notify_all();
}

void CertManager::Release(const tls::SpiffeId& id) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id.ToString());
  if (it == entries_.end()) return;
  if (--it->second.refs <= 0) {
    L().info("forgetting {}: no workload uses it any more", it->first);
    entries_.erase(it);
  }
}

absl::StatusOr<std::shared_ptr<const tls::Credentials>> CertManager::Get(
    const tls::SpiffeId& id) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id.ToString());
  if (it == entries_.end()) {
    return absl::NotFoundError(StrCat("no workload with identity ", id.ToString()));
  }
  const Entry& e = it->second;
  if (!e.creds || clock_.Now() >= e.not_after) {
    return absl::UnavailableError(StrCat(
        "no valid certificate for ", id.ToString(),
        e.last_error.empty() ? std::string() : StrCat(" (last error: ", e.last_error, ")")));
  }
  return e.creds;
}

std::vector<std::string> CertManager::RootPems() const {
  std::lock_guard lock(mu_);
  std::set<std::string> roots;
  for (const auto& [uri, e] : entries_) {
    if (!e.root_pem.empty()) roots.insert(e.root_pem);
  }
  return {roots.begin(), roots.end()};
}

std::chrono::seconds CertManager::Backoff(int failures) const {
  std::chrono::seconds b = options_.initial_backoff;
  for (int i = 1; i < failures && b < options_.max_backoff; ++i) b *= 2;
  return std::min(b, options_.max_backoff);
}

bool CertManager::WaitForAttempt(const tls::SpiffeId& id, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  auto usable = [&](const Entry& e) { return e.creds && clock_.Now() < e.not_after; };
  attempted_.wait_for(lock, timeout, [&] {
    auto it = entries_.find(id.ToString());
    return it == entries_.end() || usable(it->second) || it->second.failures > 0;
  });
  auto it = entries_.find(id.ToString());
  return it != entries_.end() && usable(it->second);
}

TimePoint CertManager::Tick() {
  const TimePoint now = clock_.Now();
  std::vector<tls::SpiffeId> due;
  {
    std::lock_guard lock(mu_);
    for (const auto& [uri, e] : entries_) {
      if (e.refs > 0 && e.next_attempt <= now) due.push_back(e.id);
    }
  }
  for (const tls::SpiffeId& id : due) {
    // The CA round trip runs without the lock: Get() keeps serving meanwhile.
    auto issued = Issue(source_, id, options_.ttl);
    std::lock_guard lock(mu_);
    auto it = entries_.find(id.ToString());
    if (it == entries_.end()) continue;  // released while we asked
    Entry& e = it->second;
    if (issued.ok()) {
      e.creds = issued->creds;
      e.root_pem = issued->root_pem;
      e.issued_at = now;
      e.not_after = e.creds->NotAfter();
      // Refresh at half-life, but never sooner than the first backoff step: a certificate
      // that is already (nearly) expired must not make us call the CA in a tight loop.
      e.next_attempt = std::max(now + (e.not_after - now) / 2,
                                now + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                          options_.initial_backoff));
      e.failures = 0;
      e.last_error.clear();
      L().info("certificate for {} valid until {}s from now, refresh in {}s", it->first,
               std::chrono::duration_cast<std::chrono::seconds>(e.not_after - now).count(),
               std::chrono::duration_cast<std::chrono::seconds>(e.next_attempt - now).count());
    } else {
      ++e.failures;
      e.last_error = std::string(issued.status().message());
      e.next_attempt = now + Backoff(e.failures);
      L().warn("certificate for {} failed ({} in a row), retry in {}s{}: {}", it->first,
               e.failures, Backoff(e.failures).count(),
               e.creds && now < e.not_after ? ", still serving the current one" : "",
               e.last_error);
    }
    attempted_.notify_all();
  }
  std::lock_guard lock(mu_);
  TimePoint next = now + std::chrono::hours(1);
  for (const auto& [uri, e] : entries_) {
    if (e.refs > 0) next = std::min(next, e.next_attempt);
  }
  return next;
}

void CertManager::Start() {
  thread_ = std::thread([this] {
    std::unique_lock lock(mu_);
    while (!stop_) {
      lock.unlock();
      TimePoint next = Tick();
      lock.lock();
      // The clock is wall time here; wait_until on system_clock follows it.
      wake_.wait_until(lock, next, [&] {
        if (stop_) return true;
        for (const auto& [uri, e] : entries_) {
          if (e.refs > 0 && e.next_attempt <= clock_.Now()) return true;
        }
        return false;
      });
    }
  });
}

std::vector<CertStatus> CertManager::Status() const {
  std::lock_guard lock(mu_);
  std::vector<CertStatus> out;
  for (const auto& [uri, e] : entries_) {
    out.push_back({.identity = uri, .refs = e.refs, .has_cert = e.creds != nullptr,
                   .not_after = e.not_after, .next_attempt = e.next_attempt,
                   .failures = e.failures, .last_error = e.last_error});
  }
  return out;
}

}  // namespace zm::ztunnel
