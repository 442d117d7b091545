#pragma once
// Inbound HBONE (DESIGN §5 "Inbound 15008", "HBONE"): the TLS server on a pod's 15008
// listener, presenting the pod's own identity, then an HTTP/2 server session whose CONNECT
// streams are delivered to the pod's app exactly like inbound plaintext (transparent connect
// from the peer's IP, Proxy::ConnectUpstream).
//
// Per connection, on the worker that accepted it:
//   credentials for spiffe://<td>/ns/<pod ns>/sa/<pod sa> (none yet: close, fail closed)
//   -> the pod's SSL_CTX (cached in PodInfo::hbone_tls, rebuilt when the credentials object
//      or the roots change) -> TLS server handshake (10 s; failures logged, connection closed)
//   -> PeerIdentity -> HboneServerSession. Per CONNECT stream: the target must be the pod's
//      own address (the 15008 connection's local address) and not a ztunnel port (400), then
//      the upstream connect (10 s): 200 and relay on success, 503 on failure. One access-log
//      line per stream (dir=inbound-hbone, peer=<spiffe id>); istio_tcp_* counted as inbound.

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tls/hbone_tls.h"
#include "common/tls/spiffe.h"
#include "common/hbone/server_session.h"
#include "common/hbone/session.h"
#include "ztunnel/proxy.h"

namespace zm::ztunnel {

// One pod's server context and what it was built from. Connections of a pod all run on one
// worker, but the lock keeps it safe anyway (taken once per connection).
struct HboneTlsCache {
  std::mutex mu;
  std::shared_ptr<const tls::Credentials> creds;
  std::vector<std::string> roots;
  std::shared_ptr<asio::ssl::context> ctx;
};

// Where certificates come from (CertManager::Get / RootPems in production; fakes in tests).
struct HboneCredentialSource {
  std::function<absl::StatusOr<std::shared_ptr<const tls::Credentials>>(const tls::SpiffeId&)>
      get;
  std::function<std::vector<std::string>()> roots;
};

// The server sessions alive now, for the SIGTERM drain. Pruned as sessions end.
struct LiveHboneSessions {
  std::mutex mu;
  bool draining = false;
  std::vector<std::weak_ptr<hbone::HboneServerSession>> sessions;
};

struct InboundHboneOptions {
  std::string trust_domain = "cluster.local";
  std::chrono::milliseconds handshake_timeout{10'000};
  hbone::SessionOptions session;
};

class InboundHbone {
 public:
  InboundHbone(Proxy& proxy, HboneCredentialSource source, InboundHboneOptions options = {});

  // Serves one connection accepted on the pod's 15008 (Proxy's HBONE handler).
  void Handle(std::shared_ptr<const PodInfo> pod, asio::ip::tcp::socket client);

  // Installs Handle as `proxy`'s HBONE handler; `this` must outlive the proxy's listeners.
  void Install() {
    proxy_.SetHboneHandler([this](std::shared_ptr<const PodInfo> pod, asio::ip::tcp::socket s) {
      Handle(std::move(pod), std::move(s));
    });
  }

  // SIGTERM drain: every live session gets GOAWAY (its open streams finish; the peer opens
  // new ones on a new connection, which lands on a successor's listener or is refused), and so
  // does every session set up after this call. Thread-safe.
  void Drain();

  // The pod's SPIFFE ID: spiffe://<td>/ns/<ns>/sa/<sa or "default">.
  absl::StatusOr<tls::SpiffeId> IdentityOf(const PodInfo& pod) const;
  // The pod's server context, built or rebuilt as needed.
  absl::StatusOr<std::shared_ptr<asio::ssl::context>> ContextFor(const PodInfo& pod);

 private:
  Proxy& proxy_;
  HboneCredentialSource source_;
  InboundHboneOptions options_;
  std::shared_ptr<LiveHboneSessions> live_ = std::make_shared<LiveHboneSessions>();
};

}  // namespace zm::ztunnel
