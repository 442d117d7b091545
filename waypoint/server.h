#pragma once
// The waypoint's HBONE server and client (DESIGN §6): TLS 1.3 on 15008 with the waypoint's own
// identity (from the CA through ztunnel's certificate manager), an HTTP/2 CONNECT session per
// connection, and per CONNECT stream the HTTP engine (waypoint/http) with the L7 filter. Allowed
// requests go out over pooled HBONE to the destination's ztunnel (<pod ip>:15008), as the
// waypoint, expecting the destination's identity (secure naming), with the original source in
// `forwarded`.
//
// A CONNECT is refused (and logged) when there is no mesh view yet (503), when its target is not
// a workload of the mesh (400), or when that workload does not use this waypoint (400): a
// waypoint is never an open proxy.
//
// Threads: the listener runs on `accept` and hands each connection to a worker (round robin);
// a connection, its streams, the HTTP engine and that worker's HBONE pool stay on it.

#include <asio.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/ip.h"
#include "common/hbone/pool.h"
#include "common/hbone/server_session.h"
#include "common/hbone/session.h"
#include "common/tls/hbone_tls.h"
#include "common/tls/spiffe.h"
#include "waypoint/ext_authz.h"
#include "waypoint/ext_authz_grpc.h"
#include "waypoint/http/http.h"
#include "waypoint/mesh_config.h"
#include "waypoint/metrics.h"

namespace zm::waypoint {

// Where the waypoint's certificate comes from (CertManager in production, fixed in tests).
struct CredentialSource {
  std::function<absl::StatusOr<std::shared_ptr<const tls::Credentials>>()> get;
  std::function<std::vector<std::string>()> roots;
};

struct ServerOptions {
  std::string trust_domain = "cluster.local";
  std::chrono::milliseconds handshake_timeout{10'000};
  hbone::SessionOptions session;
  hbone::HbonePoolOptions pool;
  HttpOptions http;
  uint16_t upstream_hbone_port = 15008;  // of destination ztunnels; another only in tests
  std::vector<ExtAuthzProvider> ext_authz;  // CUSTOM providers (--mesh-config)
  std::shared_ptr<GrpcExtAuthz> grpc_ext_authz = std::make_shared<GrpcExtAuthz>();
};

class WaypointServer {
 public:
  WaypointServer(asio::io_context& accept, std::vector<asio::io_context*> workers,
                 const MeshConfig& config, CredentialSource credentials, tls::SpiffeId self,
                 ServerOptions options, Metrics& metrics);
  ~WaypointServer();

  // Binds and starts accepting; the port actually bound.
  absl::StatusOr<uint16_t> Listen(const Endpoint& addr);
  // Stops accepting and closes the pools (call before the workers stop).
  void Stop();

  const tls::SpiffeId& self() const { return self_; }

 private:
  struct Worker;
  struct Contexts {
    std::mutex mu;
    std::shared_ptr<const tls::Credentials> creds;
    std::vector<std::string> roots;
    std::shared_ptr<tls::SslCtxPtr> server, client;
  };

  void Accept();
  // The server and client SSL_CTX for the current certificate (rebuilt on rotation).
  absl::Status RefreshContexts(std::shared_ptr<tls::SslCtxPtr>& server,
                               std::shared_ptr<tls::SslCtxPtr>& client);
  void Serve(Worker& worker, asio::ip::tcp::socket socket);
  void OnConnect(Worker& worker, uint64_t conn, const std::string& peer_id,
                 hbone::ConnectRequest req, hbone::Responder resp);

  asio::io_context& accept_ctx_;
  asio::ip::tcp::acceptor acceptor_;
  std::vector<std::unique_ptr<Worker>> workers_;
  size_t next_worker_ = 0;
  const MeshConfig& config_;
  CredentialSource credentials_;
  const tls::SpiffeId self_;
  const ServerOptions options_;
  Metrics& metrics_;
  Contexts contexts_;
  std::atomic<uint64_t> next_id_{1};
};

}  // namespace zm::waypoint
