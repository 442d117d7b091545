#pragma once
// The data path of one pod: its listeners (15001 outbound, 15006 inbound plaintext, 15008
// inbound HBONE, served by inbound_hbone.h) on one worker's io_context, and the connections
// they accept.

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/fd.h"
#include "common/base/ip.h"
#include "common/mesh/peer_authentication.h"
#include "ztunnel/metrics.h"
#include "ztunnel/sockets.h"

namespace zm::ztunnel {

struct HboneTlsCache;  // inbound_hbone.h
class OutboundHbone;  // outbound_hbone.h
class MeshState;      // mesh_state.h
class Authorizer;     // authorizer.h

// What workers know about a pod: immutable once built, shared by its listeners and
// connections (a connection may outlive the pod's listeners).
struct PodInfo {
  std::string uid;
  std::string name;
  std::string ns;
  std::string service_account;  // empty: "default"
  Fd netns;  // invalid: the calling thread's netns (in-process tests)
  // The pod's inbound HBONE TLS context cache (inbound_hbone.h); null: none (HBONE refused).
  std::shared_ptr<HboneTlsCache> hbone_tls;
  std::string DisplayName() const { return ns + "/" + name; }
};

using DstLookup = std::function<absl::StatusOr<Endpoint>(int fd)>;

struct ProxyConfig {
  std::chrono::milliseconds connect_timeout{10'000};
  bool set_marks = true;             // SO_MARK on upstream sockets (needs CAP_NET_ADMIN)
  bool transparent_delivery = true;  // inbound: IP_TRANSPARENT, bind to the client's ip
  // Seams over the kernel for in-process tests: where a captured connection was going.
  DstLookup outbound_dst = OriginalDst;   // getsockopt(SO_ORIGINAL_DST)
  DstLookup inbound_dst = LocalEndpoint;  // getsockname (sk_lookup keeps the original)
};

// The outcome of ConnectUpstream: a connected socket, or why not (reason + words).
struct UpstreamFailure {
  FailureReason reason;
  std::string detail;
};
using UpstreamDone =
    std::function<void(std::optional<UpstreamFailure> failure, asio::ip::tcp::socket socket)>;
// Serves a connection accepted on 15008 (the inbound HBONE server, inbound_hbone.h).
using HboneHandler =
    std::function<void(std::shared_ptr<const PodInfo> pod, asio::ip::tcp::socket client)>;

// Connection handling, shared by all workers: every call runs on the accepting worker and
// touches only per-connection state, the atomic id counter and the metrics.
class Proxy {
 public:
  Proxy(ProxyConfig config, Metrics& metrics) : config_(std::move(config)), metrics_(metrics) {}

  void HandleOutbound(std::shared_ptr<const PodInfo> pod, asio::ip::tcp::socket client);
  void HandleInbound(std::shared_ptr<const PodInfo> pod, asio::ip::tcp::socket client);
  // 15008: handed to the HBONE handler if one is set, else accepted and closed.
  void HandleHbone(std::shared_ptr<const PodInfo> pod, asio::ip::tcp::socket client);
  // Set before any listener starts (not synchronized).
  void SetHboneHandler(HboneHandler handler) { hbone_handler_ = std::move(handler); }
  // Outbound routing (HBONE to mesh workloads, VIPs to endpoints); null: every outbound
  // connection passes through as plain TCP to its original destination (in-process tests).
  void SetOutbound(OutboundHbone* outbound) { outbound_ = outbound; }
  OutboundHbone* outbound() const { return outbound_; }
  // The mesh (source workloads of inbound metrics).
  void SetMesh(const MeshState* mesh) { mesh_ = mesh; }
  const MeshState* mesh() const { return mesh_; }
  // Inbound authorization (PeerAuthentication for plaintext, AuthorizationPolicy for both);
  // null: inbound is not checked (in-process tests of the relay). With one, inbound is refused
  // until the first mesh snapshot arrives.
  void SetAuthorizer(Authorizer* authorizer) { authorizer_ = authorizer; }
  Authorizer* authorizer() const { return authorizer_; }

  // Connects an upstream socket to `dst` for `pod`, created in the pod's netns. Outbound: the
  // ztunnel mark. Inbound delivery: the delivery mark, IP_TRANSPARENT and bound to `client_ip`
  // (as far as the config allows). Gives up after config().connect_timeout. `done` runs
  // once, on `ex` (the worker's io_context, where the socket lives).
  void ConnectUpstream(const PodInfo& pod, Direction dir, const Endpoint& dst,
                       const IpAddr& client_ip, const asio::any_io_executor& ex,
                       UpstreamDone done);

  const ProxyConfig& config() const { return config_; }
  Metrics& metrics() { return metrics_; }
  uint64_t NextId() { return next_id_.fetch_add(1, std::memory_order_relaxed); }

 private:
  ProxyConfig config_;
  Metrics& metrics_;
  std::atomic<uint64_t> next_id_{1};
  HboneHandler hbone_handler_;
  OutboundHbone* outbound_ = nullptr;
  const MeshState* mesh_ = nullptr;
  Authorizer* authorizer_ = nullptr;
};

enum class ListenerKind { kOutbound, kInbound, kHbone };

// Listening sockets created in the pod's netns (on a helper thread), not yet on a loop.
struct PodListenerFds {
  Fd outbound4;  // 127.0.0.1:15001
  Fd outbound6;  // [::1]:15001 (v6only), absent when the netns has no ::1
  Fd inbound;    // [::]:15006 dual-stack: handed to the agent in the Ack
  Fd hbone;      // [::]:15008
};

// Creates a pod's listeners in the calling thread's netns (call it under RunInNetns).
absl::StatusOr<PodListenerFds> CreatePodListeners(uint32_t mark);

// A pod's acceptors on one worker. Start and Close run on that worker's thread.
class PodListeners : public std::enable_shared_from_this<PodListeners> {
 public:
  PodListeners(asio::io_context& ctx, Proxy& proxy, std::shared_ptr<const PodInfo> pod);
  absl::Status Start(PodListenerFds fds);
  // Stops accepting. With `shutdown_sockets` the listening sockets are shut down too, so
  // they stop listening even where another process (the agent) holds a dup.
  void Close(bool shutdown_sockets);

 private:
  struct Entry {
    ListenerKind kind;
    asio::ip::tcp::acceptor acceptor;
  };
  absl::Status Add(ListenerKind kind, Fd fd);
  void Accept(size_t i);

  asio::io_context& ctx_;
  Proxy& proxy_;
  std::shared_ptr<const PodInfo> pod_;
  std::vector<std::unique_ptr<Entry>> entries_;
  bool closed_ = false;
};

}  // namespace zm::ztunnel
