#pragma once
// The HBONE TLS policy (DESIGN 5 "HBONE"), both ends:
//   TLS 1.3 only; TLS_AES_128_GCM_SHA256 and TLS_AES_256_GCM_SHA384 only; groups X25519 and
//   P-256; ALPN "h2" and nothing else (the server refuses a client that does not offer it
//   with no_application_protocol); no SNI; no resumption (no tickets, no session cache);
//   the server requires a client certificate.
// Verification, both sides, at the injected clock's time: the peer chain ends at one of the
// mesh roots, the peer leaf is not a CA and has exactly one URI SAN, a SPIFFE ID in our
// trust domain. The client also checks secure naming: the server's SPIFFE ID must be one of
// those set with SetExpectedIdentities() on that SSL before the handshake (none set: every
// server is refused). Which client may connect is authorization's business, not TLS's.
//
// A failure is kept on the SSL as a readable reason ("peer spiffe://cluster.local/ns/a/sa/b
// is not one of the expected identities [...]", "certificate has expired", "no client
// certificate") and returned by HandshakeError().

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/tls/ossl.h"
#include "common/tls/spiffe.h"

namespace zm::tls {

inline constexpr std::string_view kHboneAlpn = "h2";
inline constexpr const char* kHboneCipherSuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384";
inline constexpr const char* kHboneGroups = "X25519:P-256";

// What a workload presents: its key and its chain, leaf first (intermediates and the root
// may follow; they are sent as given).
struct Credentials {
  EvpPkeyPtr key;
  std::vector<X509Ptr> chain;

  // `chain_pem`: concatenated PEM certificates, leaf first. Checks that the key matches.
  static absl::StatusOr<Credentials> FromPem(std::string_view key_pem, std::string_view chain_pem);
  // As CertificateAuthority::Sign returns it: {leaf, ..., root}.
  static absl::StatusOr<Credentials> FromPem(std::string_view key_pem,
                                             const std::vector<std::string>& chain_pems);

  X509* leaf() const { return chain.empty() ? nullptr : chain.front().get(); }
  absl::StatusOr<SpiffeId> Identity() const;
  std::chrono::system_clock::time_point NotAfter() const;
};

// The trust anchors: one or more mesh roots (several during a root rotation).
class RootBundle {
 public:
  // Every certificate in `pem` must be a CA certificate.
  static absl::StatusOr<RootBundle> FromPem(std::string_view pem,
                                            std::string_view source = "root bundle");
  static absl::StatusOr<RootBundle> FromPems(const std::vector<std::string>& pems);

  X509_STORE* store() const { return store_.get(); }
  size_t size() const { return count_; }

 private:
  RootBundle(X509StorePtr store, size_t count) : store_(std::move(store)), count_(count) {}
  X509StorePtr store_;
  size_t count_;
};

// Contexts for the inbound (15008 server) and outbound (client) ends. `own` must be an
// identity of `trust_domain`. The contexts keep their own references to the key,
// certificates and store; `clock` must outlive them.
absl::StatusOr<SslCtxPtr> MakeServerContext(const Credentials& own, const RootBundle& roots,
                                            std::string trust_domain,
                                            const Clock& clock = SystemClock::Get());
absl::StatusOr<SslCtxPtr> MakeClientContext(const Credentials& own, const RootBundle& roots,
                                            std::string trust_domain,
                                            const Clock& clock = SystemClock::Get());

// Secure naming, on a client SSL, before the handshake.
absl::Status SetExpectedIdentities(SSL* ssl, std::vector<SpiffeId> expected);

// After a successful handshake: the peer's verified SPIFFE ID.
absl::StatusOr<SpiffeId> PeerIdentity(SSL* ssl);

// After a successful client handshake: OK when the server selected "h2".
absl::Status VerifyAlpn(SSL* ssl);

// The reason recorded on `ssl` by the checks above (verification, secure naming, ALPN);
// empty when none failed.
std::string FailureReason(const SSL* ssl);

// A Status for a failed SSL_do_handshake/SSL_accept/SSL_connect (`ret` its return value):
// the recorded reason if any, else OpenSSL's error queue in words ("no client
// certificate", "TLS 1.3 required, peer offered an older version", ...) with the raw
// errors appended. Call it on the thread that saw the failure, right after it: it drains
// that thread's OpenSSL error queue.
absl::Status HandshakeError(SSL* ssl, int ret);

}  // namespace zm::tls
