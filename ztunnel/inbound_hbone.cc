#include "ztunnel/inbound_hbone.h"

#include <openssl/err.h>

#include <optional>

#include "common/base/log.h"
#include "common/base/strings.h"
#include "ztunnel/authorizer.h"
#include "common/hbone/server_session.h"
#include "common/hbone/tls_transport.h"
#include "ztunnel/mesh_state.h"
#include "ztunnel/sockets.h"

namespace zm::ztunnel {
namespace {

using Clock = std::chrono::steady_clock;

// One TLS connection on 15008: handshake, then the HTTP/2 session and its streams.
class HboneConnection : public std::enable_shared_from_this<HboneConnection> {
  struct StreamInfo {
    uint64_t id;
    Clock::time_point start;
    Endpoint dst;
    int32_t h2_id;
    uint64_t authz_handle = 0;  // tracked by the authorizer until the stream ends
    bool revoked = false;       // policy now denies it
    std::weak_ptr<hbone::HboneStream> stream;
  };

 public:
  HboneConnection(Proxy& proxy, const InboundHboneOptions& options,
                  std::shared_ptr<LiveHboneSessions> live, std::shared_ptr<const PodInfo> pod,
                  asio::ip::tcp::socket client)
      : proxy_(proxy),
        options_(options),
        live_(std::move(live)),
        pod_(std::move(pod)),
        id_(proxy.NextId()),
        executor_(client.get_executor()),
        src_(PeerEndpoint(client.native_handle())),
        local_(LocalEndpoint(client.native_handle())),
        client_(std::move(client)) {}

  void Start(SSL_CTX* ctx) {
    tls::SslPtr ssl(SSL_new(ctx));
    if (!ssl) {
      Log("proxy").warn("conn={} dir=inbound-hbone pod={} src={} SSL_new failed", id_,
                        pod_->DisplayName(), EndpointText(src_));
      asio::error_code ignored;
      client_.close(ignored);
      return;
    }
    hbone::TlsTransport::Handshake(
        std::make_unique<hbone::TlsTransport>(std::move(client_), std::move(ssl),
                                              hbone::TlsTransport::Role::kServer),
        options_.handshake_timeout,
        [self = shared_from_this()](
            absl::StatusOr<std::unique_ptr<hbone::TlsTransport>> transport) {
          self->OnHandshake(std::move(transport));
        });
  }

 private:
  void OnHandshake(absl::StatusOr<std::unique_ptr<hbone::TlsTransport>> transport) {
    if (!transport.ok()) {
      Log("proxy").info("conn={} dir=inbound-hbone pod={} src={} {}", id_, pod_->DisplayName(),
                        EndpointText(src_), transport.status().message());
      return;  // the transport closed the socket
    }
    SSL* ssl = (*transport)->ssl();
    auto peer = tls::PeerIdentity(ssl);
    if (!peer.ok()) {
      Log("proxy").warn("conn={} dir=inbound-hbone pod={} src={} no peer identity: {}", id_,
                        pod_->DisplayName(), EndpointText(src_), peer.status().message());
      (*transport)->Close();
      return;
    }
    if (!src_.ok() || !local_.ok()) {
      Log("proxy").warn("conn={} dir=inbound-hbone pod={} no addresses: {} {}", id_,
                        pod_->DisplayName(), src_.status().message(), local_.status().message());
      (*transport)->Close();
      return;
    }
    peer_ = peer->ToString();
    Log("proxy").info("conn={} dir=inbound-hbone pod={} src={} peer={} TLS established ({})",
                       id_, pod_->DisplayName(), src_->ToString(), peer_,
                       SSL_get_cipher_name(ssl));
    auto session = hbone::HboneServerSession::Create(
        std::move(*transport), peer_, options_.session,
        [self = shared_from_this()](hbone::ConnectRequest req, hbone::Responder resp) {
          self->OnConnect(std::move(req), std::move(resp));
        });
    session->SetOnClosed([id = id_, pod = pod_](const std::string& reason) {
      Log("proxy").debug("conn={} dir=inbound-hbone pod={} session closed: {}", id,
                         pod->DisplayName(), reason);
    });
    session->Start();
    bool draining = false;
    {
      std::lock_guard lock(live_->mu);
      std::erase_if(live_->sessions, [](const auto& w) { return w.expired(); });
      live_->sessions.push_back(session);
      draining = live_->draining;
    }
    if (draining) session->GoAway();
  }

  // One CONNECT stream, on the session's executor (this worker).
  void OnConnect(hbone::ConnectRequest req, hbone::Responder resp) {
    auto st = std::make_shared<StreamInfo>(
        StreamInfo{proxy_.NextId(), Clock::now(), req.target, req.stream_id});
    if (req.target.ip != local_->ip) {
      Log("proxy").warn(
          "conn={} dir=inbound-hbone pod={} peer={} CONNECT {}: not this pod's address ({}), 400",
          st->id, pod_->DisplayName(), peer_, req.authority, local_->ip.ToString());
      resp.Reject(400);
      AccessLog(*st, 0, 0, "bad-target");
      return;
    }
    if (InboundLoopGuard(req.target)) {
      Log("proxy").warn("conn={} dir=inbound-hbone pod={} peer={} loop guard: refusing {}, 400",
                        st->id, pod_->DisplayName(), peer_, req.target.ToString());
      proxy_.metrics().CountFailure(FailureReason::kLoopGuard);
      resp.Reject(400);
      AccessLog(*st, 0, 0, FailureName(FailureReason::kLoopGuard));
      return;
    }
    if (Authorizer* authz = proxy_.authorizer()) {
      auto admission =
          authz->Admit(InboundConnection{.id = st->id,
                                         .pod = pod_,
                                         .peer = peer_,
                                         .src = *src_,
                                         .dst = req.target,
                                         .dir = "inbound-hbone"},
                       [weak = std::weak_ptr<StreamInfo>(st), ex = executor_](const std::string&) {
                         asio::dispatch(ex, [weak] {
                           auto st = weak.lock();
                           if (!st || st->revoked) return;
                           st->revoked = true;
                           st->authz_handle = 0;
                           if (auto stream = st->stream.lock()) stream->Reset();
                         });
                       });
      if (!admission.allowed) {
        resp.Reject(401);  // the authorizer logged and counted it
        return;
      }
      st->authz_handle = admission.handle;
    }
    proxy_.ConnectUpstream(
        *pod_, Direction::kInbound, req.target, src_->ip, executor_,
        [self = shared_from_this(), st, resp](std::optional<UpstreamFailure> failure,
                                              asio::ip::tcp::socket upstream) mutable {
          self->OnUpstream(std::move(st), std::move(failure), std::move(upstream),
                           std::move(resp));
        });
  }

  void ReleaseAuthz(StreamInfo& st) {
    if (st.authz_handle == 0) return;
    if (Authorizer* authz = proxy_.authorizer()) authz->Release(st.authz_handle);
    st.authz_handle = 0;
  }

  void OnUpstream(std::shared_ptr<StreamInfo> st, std::optional<UpstreamFailure> failure,
                  asio::ip::tcp::socket upstream, hbone::Responder resp) {
    if (st->revoked && !failure) {
      // Denied while connecting (counted by the authorizer).
      hbone::ResetSocket(upstream);
      resp.Reject(401);
      AccessLog(*st, 0, 0, "policy-revoked");
      return;
    }
    if (failure) {
      ReleaseAuthz(*st);
      Log("proxy").info("conn={} dir=inbound-hbone pod={} peer={} connect to {} failed: {}, 503",
                        st->id, pod_->DisplayName(), peer_, st->dst.ToString(), failure->detail);
      proxy_.metrics().CountFailure(failure->reason);
      resp.Reject(503);
      AccessLog(*st, 0, 0, FailureName(failure->reason));
      return;
    }
    TcpLabels labels{.direction = Direction::kInbound};
    labels.destination_workload = pod_->name;
    labels.destination_namespace = pod_->ns;
    // The source workload for the metrics: the mesh's workload at the peer's address, when its
    // identity is the one the peer proved (never a guess from the address alone).
    if (const MeshState* mesh = proxy_.mesh()) {
      if (auto view = mesh->Current()) {
        const mesh::Workload* w = view->WorkloadByIp(src_->ip);
        auto id = w != nullptr ? tls::SpiffeId::ForServiceAccount(options_.trust_domain, w->ns,
                                                                  w->service_account)
                               : absl::StatusOr<tls::SpiffeId>(absl::NotFoundError(""));
        if (id.ok() && id->ToString() == peer_) {
          labels.source_workload = w->name;
          labels.source_namespace = w->ns;
        }
      }
    }
    auto series = proxy_.metrics().Tcp(labels);
    series->opened.fetch_add(1, std::memory_order_relaxed);
    st->stream = resp.stream();
    resp.Accept(std::move(upstream),
                [self = shared_from_this(), keep = st, series](const hbone::StreamResult& r) {
                  self->ReleaseAuthz(*keep);
                  series->sent_bytes.fetch_add(r.bytes_to_socket, std::memory_order_relaxed);
                  series->received_bytes.fetch_add(r.bytes_to_stream, std::memory_order_relaxed);
                  series->closed.fetch_add(1, std::memory_order_relaxed);
                  if (r.result != "ok") {
                    Log("proxy").debug("conn={} stream ended: {} ({})", keep->id, r.result,
                                       r.detail);
                  }
                  self->AccessLog(*keep, r.bytes_to_socket, r.bytes_to_stream,
                                  keep->revoked ? "policy-revoked" : r.result);
                });
  }

  void AccessLog(const StreamInfo& st, uint64_t sent, uint64_t received, std::string_view result) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - st.start);
    Log("proxy").info(
        "conn={} dir=inbound-hbone pod={} peer={} src={} dst={} session={} stream={} "
        "bytes_sent={} bytes_received={} duration_ms={} result={}",
        st.id, pod_->DisplayName(), peer_, EndpointText(src_), st.dst.ToString(), id_, st.h2_id,
        sent, received, ms.count(), result);
  }

  Proxy& proxy_;
  const InboundHboneOptions options_;
  std::shared_ptr<LiveHboneSessions> live_;
  std::shared_ptr<const PodInfo> pod_;
  uint64_t id_;
  asio::any_io_executor executor_;
  absl::StatusOr<Endpoint> src_;
  absl::StatusOr<Endpoint> local_;
  asio::ip::tcp::socket client_;  // until the handshake takes it
  std::string peer_;
  InFlight in_flight_{proxy_.metrics()};
};

}  // namespace

InboundHbone::InboundHbone(Proxy& proxy, HboneCredentialSource source, InboundHboneOptions options)
    : proxy_(proxy), source_(std::move(source)), options_(std::move(options)) {}

absl::StatusOr<tls::SpiffeId> InboundHbone::IdentityOf(const PodInfo& pod) const {
  return tls::SpiffeId::ForServiceAccount(options_.trust_domain, pod.ns, pod.service_account);
}

absl::StatusOr<std::shared_ptr<asio::ssl::context>> InboundHbone::ContextFor(const PodInfo& pod) {
  if (!pod.hbone_tls) return absl::FailedPreconditionError("no TLS state for this pod");
  auto id = IdentityOf(pod);
  if (!id.ok()) return id.status();
  auto creds = source_.get(*id);
  if (!creds.ok()) {
    return absl::Status(creds.status().code(), StrCat("no certificate for ", id->ToString(),
                                                      " yet: ", creds.status().message()));
  }
  std::vector<std::string> roots = source_.roots();
  HboneTlsCache& cache = *pod.hbone_tls;
  std::lock_guard lock(cache.mu);
  if (cache.ctx && cache.creds == *creds && cache.roots == roots) return cache.ctx;
  auto bundle = tls::RootBundle::FromPems(roots);
  if (!bundle.ok()) return bundle.status();
  auto ctx = tls::MakeServerContext(**creds, *bundle, options_.trust_domain);
  if (!ctx.ok()) return ctx.status();
  // asio::ssl::context takes ownership of the SSL_CTX; SSLs made from it hold their own
  // reference, so connections outlive a rebuild (rotation).
  cache.ctx = std::make_shared<asio::ssl::context>(ctx->release());
  cache.creds = *creds;
  cache.roots = std::move(roots);
  Log("proxy").info("pod={} HBONE server context (re)built for {}", pod.DisplayName(),
                    id->ToString());
  return cache.ctx;
}

void InboundHbone::Handle(std::shared_ptr<const PodInfo> pod, asio::ip::tcp::socket client) {
  auto ctx = ContextFor(*pod);
  if (!ctx.ok()) {
    auto src = PeerEndpoint(client.native_handle());
    Log("proxy").warn("dir=inbound-hbone pod={} src={} closing: {}", pod->DisplayName(),
                      EndpointText(src), ctx.status().message());
    asio::error_code ignored;
    client.close(ignored);
    return;
  }
  std::make_shared<HboneConnection>(proxy_, options_, live_, std::move(pod), std::move(client))
      ->Start((*ctx)->native_handle());
}

void InboundHbone::Drain() {
  std::vector<std::shared_ptr<hbone::HboneServerSession>> sessions;
  {
    std::lock_guard lock(live_->mu);
    live_->draining = true;
    for (const auto& w : live_->sessions) {
      if (auto s = w.lock()) sessions.push_back(std::move(s));
    }
    live_->sessions.clear();
  }
  for (auto& s : sessions) {
    auto ex = s->executor();
    asio::post(ex, [s = std::move(s)] { s->GoAway(); });
  }
  Log("proxy").info("drain: GOAWAY sent on {} inbound HBONE sessions", sessions.size());
}

}  // namespace zm::ztunnel
