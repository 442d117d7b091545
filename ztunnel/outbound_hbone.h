#pragma once
// Outbound routing and the HBONE client (DESIGN §5 "Outbound", "HBONE").
//
// Per captured outbound connection, from the mesh snapshot (mesh_state.h):
//   original destination is a Service VIP -> one endpoint of that port, chosen at random among
//     the running workloads serving it; then as below for that endpoint's address and port;
//   the address of a workload in the mesh (TunnelProtocol HBONE) -> HBONE to <its ip>:15008,
//     authority <its ip>:<port>, the server must prove the workload's SPIFFE ID (secure naming);
//     when it uses a waypoint (zmesh.io/use-waypoint), HBONE to a running endpoint of the
//     waypoint Service instead, which must prove the waypoint's identity; same authority. A
//     waypoint that cannot be resolved refuses the connection (never a bypass);
//   anything else -> plain TCP to the destination (passthrough);
//   no snapshot yet -> refused (fail closed: we cannot tell a mesh destination from another).
//
// HBONE connections are pooled per worker (hbone/pool.h) by source pod, source identity,
// expected identities and next hop. A new connection is made in the source pod's netns with
// the ztunnel mark, TLS 1.3 as the source pod's identity (its certificate from the certificate
// manager), the expected identities set before the handshake; then an HTTP/2 client session.
// Every CONNECT carries forwarded (for=<source ip>), baggage (source namespace and pod) and a
// fresh traceparent.

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/base/ip.h"
#include "common/tls/spiffe.h"
#include "common/hbone/client_session.h"
#include "common/hbone/pool.h"
#include "ztunnel/inbound_hbone.h"
#include "ztunnel/mesh_state.h"
#include "ztunnel/proxy.h"

namespace zm::ztunnel {

struct OutboundRoute {
  enum class Kind { kPassthrough, kHbone, kRefuse };
  Kind kind = Kind::kPassthrough;
  Endpoint target;  // where the bytes are for: the original destination or the chosen endpoint
  // HBONE: the server's address (target.ip:15008) and the identities it may prove.
  Endpoint next_hop;
  std::vector<tls::SpiffeId> identities;
  std::string destination_workload;  // empty when not a mesh workload
  std::string destination_namespace;
  std::string service;  // "ns/name" when the original destination was its VIP
  // "ns/name" of the destination's waypoint Service when the stream goes through it (next_hop
  // and identities are then the waypoint's; the authority stays the destination's).
  std::string waypoint;
  // The source pod's own address (same family as the target, from the mesh), for the
  // forwarded header: the captured socket's peer is a loopback address.
  std::optional<IpAddr> source_ip;
  FailureReason refuse_reason = FailureReason::kNoConfig;  // kRefuse
  std::string detail;                                      // kRefuse: why, in words
};

// The routing decision, pure. `mesh` null: no snapshot yet. `pick(n)` returns an index < n
// (random in production).
OutboundRoute DecideOutboundRoute(const MeshView* mesh, const Endpoint& dst,
                                  std::string_view trust_domain,
                                  const std::function<size_t(size_t)>& pick);

// The HBONE request headers of one proxied connection (forwarded only when the source
// address is known).
std::vector<hbone::Header> OutboundHeaders(const PodInfo& source,
                                           const std::optional<IpAddr>& source_ip);

struct OutboundHboneOptions {
  std::string trust_domain = "cluster.local";
  std::chrono::milliseconds handshake_timeout{10'000};
  hbone::SessionOptions session;
  hbone::HbonePoolOptions pool;
  std::chrono::milliseconds idle_sweep{30'000};
  uint16_t hbone_port = 15008;  // of the next hop; another only in in-process tests
  // How long a new connection waits for the source pod's first certificate.
  std::chrono::milliseconds certificate_wait{5'000};
};

class OutboundHbone {
 public:
  OutboundHbone(Proxy& proxy, const MeshState& mesh, HboneCredentialSource credentials,
                OutboundHboneOptions options = {});
  ~OutboundHbone();

  // Gives worker loop `ctx` its own pool. Call for every worker before any connection, from
  // the thread that owns this object (the pools are destroyed on it, after the loops stop).
  void AddWorker(asio::io_context& ctx);
  // Installs this as `proxy`'s outbound router; `this` must outlive the proxy's listeners.
  void Install() { proxy_.SetOutbound(this); }

  OutboundRoute Route(const PodInfo& source, const Endpoint& dst) const;

  // Pooled connections of the worker running `ex` (call it there).
  size_t ConnectionCount(const asio::any_io_executor& ex);

  // Opens a CONNECT stream from `pod` along `route` (kind kHbone) on the pool of the worker
  // running `ex` (call it there). `cb` as HboneClientSession::OpenCallback.
  void Open(std::shared_ptr<const PodInfo> pod, const OutboundRoute& route,
            const asio::any_io_executor& ex, hbone::HboneClientSession::OpenCallback cb);

 private:
  struct ClientTls {
    std::shared_ptr<const tls::Credentials> creds;
    std::vector<std::string> roots;
    std::shared_ptr<asio::ssl::context> ctx;
  };
  struct Worker {
    asio::io_context* ctx = nullptr;
    std::unique_ptr<hbone::HbonePool> pool;
    std::map<std::string, std::weak_ptr<const PodInfo>> sources;  // PoolKey::source -> pod
    std::map<std::string, ClientTls> tls;                         // source identity -> context
  };

  Worker* WorkerOf(const asio::any_io_executor& ex);
  void Connect(Worker& w, const hbone::PoolKey& key,
               std::function<void(hbone::HbonePool::SessionOr)> done);
  void ConnectWhenReady(Worker& w, const hbone::PoolKey& key,
                        std::function<void(hbone::HbonePool::SessionOr)> done,
                        std::chrono::steady_clock::time_point deadline);
  absl::StatusOr<std::shared_ptr<asio::ssl::context>> ClientContext(Worker& w,
                                                                   const tls::SpiffeId& id);

  Proxy& proxy_;
  const MeshState& mesh_;
  HboneCredentialSource credentials_;
  OutboundHboneOptions options_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace zm::ztunnel
