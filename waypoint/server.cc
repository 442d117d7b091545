#include "waypoint/server.h"

#include <openssl/ssl.h>

#include "common/base/log.h"
#include "common/base/strings.h"
#include "common/http/asio_util.h"
#include "common/hbone/byte_stream.h"
#include "common/hbone/client_session.h"
#include "common/hbone/server_session.h"
#include "common/hbone/tls_transport.h"
#include "waypoint/filter.h"

namespace zm::waypoint {
namespace {

// `forwarded: for=198.18.1.100` or `for="[fd00::1]"` (RFC 7239, as ztunnel writes it).
std::optional<IpAddr> ForwardedFor(const hbone::ConnectRequest& req) {
  auto value = req.Find("forwarded");
  if (!value) return std::nullopt;
  std::string_view v = *value;
  size_t at = v.find("for=");
  if (at == std::string_view::npos) return std::nullopt;
  v.remove_prefix(at + 4);
  v = v.substr(0, v.find_first_of(";,"));
  if (!v.empty() && v.front() == '"') v = v.substr(1, v.size() >= 2 ? v.size() - 2 : 0);
  if (!v.empty() && v.front() == '[') v = v.substr(1, v.find(']') - 1);
  auto ip = IpAddr::Parse(v);
  if (!ip.ok()) return std::nullopt;
  return *ip;
}

std::string WithoutScheme(const std::string& spiffe) {
  return spiffe.starts_with("spiffe://") ? spiffe.substr(9) : spiffe;
}

}  // namespace

struct WaypointServer::Worker {
  asio::io_context& ctx;
  std::unique_ptr<hbone::HbonePool> pool;
};

WaypointServer::WaypointServer(asio::io_context& accept, std::vector<asio::io_context*> workers,
                               const MeshConfig& config, CredentialSource credentials,
                               tls::SpiffeId self, ServerOptions options, Metrics& metrics)
    : accept_ctx_(accept),
      acceptor_(accept),
      config_(config),
      credentials_(std::move(credentials)),
      self_(std::move(self)),
      options_(std::move(options)),
      metrics_(metrics) {
  for (asio::io_context* ctx : workers) {
    auto w = std::make_unique<Worker>(Worker{*ctx, nullptr});
    // A new upstream connection: TCP to the destination's ztunnel, then TLS as the waypoint,
    // expecting the destination's identity.
    auto factory = [this, ctx](const hbone::PoolKey& key,
                               std::function<void(hbone::HbonePool::SessionOr)> done) {
      std::shared_ptr<tls::SslCtxPtr> server, client;
      if (absl::Status st = RefreshContexts(server, client); !st.ok()) {
        done(st);
        return;
      }
      std::vector<tls::SpiffeId> expected;
      for (const std::string& id : key.destination_identities) {
        auto parsed = tls::SpiffeId::Parse(id);
        if (!parsed.ok()) {
          done(parsed.status());
          return;
        }
        expected.push_back(std::move(*parsed));
      }
      auto socket = std::make_shared<asio::ip::tcp::socket>(*ctx);
      auto timer = std::make_shared<asio::steady_timer>(*ctx, options_.handshake_timeout);
      timer->async_wait([socket](const asio::error_code& ec) {
        if (!ec) socket->close();
      });
      socket->async_connect(
          ToAsio(key.destination),
          [this, socket, timer, client, expected = std::move(expected), peer = key.destination,
           done = std::move(done)](const asio::error_code& ec) mutable {
            timer->cancel();
            if (ec) {
              done(absl::UnavailableError(
                  StrCat("HBONE to ", peer.ToString(), ": connect: ", ec.message())));
              return;
            }
            hbone::StartTlsClientSession(std::move(*socket), client->get(), std::move(expected),
                                         options_.handshake_timeout, options_.session, peer,
                                         std::move(done));
          });
    };
    w->pool = std::make_unique<hbone::HbonePool>(ctx->get_executor(), factory, options_.pool);
    w->pool->StartIdleSweep(std::chrono::seconds(30));
    workers_.push_back(std::move(w));
  }
}

WaypointServer::~WaypointServer() = default;

absl::Status WaypointServer::RefreshContexts(std::shared_ptr<tls::SslCtxPtr>& server,
                                             std::shared_ptr<tls::SslCtxPtr>& client) {
  auto creds = credentials_.get();
  if (!creds.ok()) {
    return absl::Status(creds.status().code(), StrCat("no certificate for ", self_.ToString(),
                                                      " yet: ", creds.status().message()));
  }
  std::vector<std::string> roots = credentials_.roots();
  std::lock_guard lock(contexts_.mu);
  if (!contexts_.server || contexts_.creds != *creds || contexts_.roots != roots) {
    auto bundle = tls::RootBundle::FromPems(roots);
    if (!bundle.ok()) return bundle.status();
    auto s = tls::MakeServerContext(**creds, *bundle, options_.trust_domain);
    if (!s.ok()) return s.status();
    auto c = tls::MakeClientContext(**creds, *bundle, options_.trust_domain);
    if (!c.ok()) return c.status();
    // SSLs made from a context hold their own reference: live connections survive a rotation.
    contexts_.server = std::make_shared<tls::SslCtxPtr>(std::move(*s));
    contexts_.client = std::make_shared<tls::SslCtxPtr>(std::move(*c));
    contexts_.creds = *creds;
    contexts_.roots = std::move(roots);
    Log("waypoint").info("TLS contexts (re)built for {}", self_.ToString());
  }
  server = contexts_.server;
  client = contexts_.client;
  return absl::OkStatus();
}

absl::StatusOr<uint16_t> WaypointServer::Listen(const Endpoint& addr) {
  asio::error_code ec;
  auto ep = ToAsio(addr);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return absl::UnavailableError(StrCat("listen on ", addr.ToString(), ": ", ec.message()));
  Accept();
  return acceptor_.local_endpoint().port();
}

void WaypointServer::Stop() {
  asio::post(accept_ctx_, [this] {
    asio::error_code ignored;
    acceptor_.close(ignored);
  });
  for (auto& w : workers_) {
    asio::post(w->ctx, [pool = w->pool.get()] { pool->Shutdown(); });
  }
}

void WaypointServer::Accept() {
  Worker& w = *workers_[next_worker_++ % workers_.size()];
  acceptor_.async_accept(w.ctx, [this, &w](const asio::error_code& ec,
                                           asio::ip::tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      asio::dispatch(w.ctx, [this, &w, s = std::make_shared<asio::ip::tcp::socket>(
                                           std::move(socket))]() mutable {
        Serve(w, std::move(*s));
      });
    } else {
      Log("waypoint").warn("accept: {}", ec.message());
    }
    Accept();
  });
}

void WaypointServer::Serve(Worker& worker, asio::ip::tcp::socket socket) {
  const uint64_t conn = next_id_++;
  asio::error_code ec;
  auto remote = socket.remote_endpoint(ec);
  const std::string src = ec ? "?" : StrCat(remote.address().to_string(), ":", remote.port());
  std::shared_ptr<tls::SslCtxPtr> server, client;
  if (absl::Status st = RefreshContexts(server, client); !st.ok()) {
    Log("waypoint").warn("conn={} src={} closing: {}", conn, src, st.message());
    socket.close(ec);
    return;
  }
  tls::SslPtr ssl(SSL_new(server->get()));
  if (!ssl) {
    socket.close(ec);
    return;
  }
  ++metrics_.connections_total;
  ++metrics_.connections_open;
  hbone::TlsTransport::Handshake(
      std::make_unique<hbone::TlsTransport>(std::move(socket), std::move(ssl),
                                            hbone::TlsTransport::Role::kServer),
      options_.handshake_timeout,
      [this, &worker, conn, src,
       server](absl::StatusOr<std::unique_ptr<hbone::TlsTransport>> transport) {
        if (!transport.ok()) {
          --metrics_.connections_open;
          Log("waypoint").info("conn={} src={} {}", conn, src, transport.status().message());
          return;
        }
        auto peer = tls::PeerIdentity((*transport)->ssl());
        if (!peer.ok()) {
          --metrics_.connections_open;
          Log("waypoint").warn("conn={} src={} no peer identity: {}", conn, src,
                               peer.status().message());
          (*transport)->Close();
          return;
        }
        const std::string peer_id = peer->ToString();
        Log("waypoint").info("conn={} src={} peer={} TLS established", conn, src, peer_id);
        auto session = hbone::HboneServerSession::Create(
            std::move(*transport), peer_id, options_.session,
            [this, &worker, conn, peer_id](hbone::ConnectRequest req, hbone::Responder resp) {
              OnConnect(worker, conn, peer_id, std::move(req), std::move(resp));
            });
        session->SetOnClosed([this, conn](const std::string& reason) {
          --metrics_.connections_open;
          Log("waypoint").debug("conn={} session closed: {}", conn, reason);
        });
        session->Start();
      });
}

void WaypointServer::OnConnect(Worker& worker, uint64_t conn, const std::string& peer_id,
                               hbone::ConnectRequest req, hbone::Responder resp) {
  ++metrics_.streams_total;
  auto refuse = [&](int status, const std::string& why) {
    ++metrics_.streams_refused;
    Log("waypoint").warn("conn={} stream={} peer={} CONNECT {}: {}, {}", conn, req.stream_id,
                         peer_id, req.authority, why, status);
    resp.Reject(status);
  };
  auto view = config_.Current();
  if (!view) return refuse(503, "no mesh configuration yet");
  const mesh::Workload* dst = view->snapshot->FindWorkloadByIp(req.target.ip);
  if (dst == nullptr) return refuse(400, "not the address of a mesh workload");
  const std::string self_key = StrCat(config_.self().ns, "/", config_.self().name);
  if (dst->waypoint != self_key) {
    return refuse(400, StrCat(dst->key(), " does not use waypoint ", self_key));
  }
  auto dst_id = tls::SpiffeId::ForServiceAccount(options_.trust_domain, dst->ns,
                                                 dst->service_account);
  if (!dst_id.ok()) return refuse(503, std::string(dst_id.status().message()));

  StreamContext context{.principal = WithoutScheme(peer_id),
                        .source_ip = ForwardedFor(req),
                        .target = req.target,
                        .session = conn,
                        .stream = req.stream_id};
  // The CONNECT's provenance headers travel on to the destination.
  std::vector<hbone::Header> headers;
  for (const hbone::Header& h : req.headers) {
    if (h.name == "forwarded" || h.name == "baggage" || h.name == "traceparent") {
      headers.push_back(h);
    }
  }
  auto executor = worker.ctx.get_executor();
  auto [downstream, engine_side] = hbone::MakePipe(executor);
  resp.Accept(std::move(downstream));

  hbone::PoolKey key{.source = "waypoint",
                     .source_identity = self_.ToString(),
                     .destination_identities = {dst_id->ToString()},
                     .destination = Endpoint{.ip = req.target.ip,
                                             .port = options_.upstream_hbone_port}};
  UpstreamOpener open = [pool = worker.pool.get(), key, authority = req.target.ToString(),
                         headers, executor](auto done) {
    pool->OpenStream(
        key, authority, headers,
        [done, executor](absl::StatusOr<int> status, std::shared_ptr<hbone::HboneStream> stream) {
          if (!status.ok()) return done(status.status());
          if (*status != 200 || !stream) {
            return done(absl::UnavailableError(StrCat("the destination answered ", *status)));
          }
          auto [relay, upstream] = hbone::MakePipe(executor);
          stream->Start(std::move(relay), nullptr);
          done(std::move(upstream));
        });
  };
  auto filter = std::make_shared<L7Filter>(config_, context, metrics_, options_.ext_authz,
                                           *options_.grpc_ext_authz, executor);
  ServeHttp(std::move(engine_side), std::move(open), filter, options_.http,
            [this, context, dst_key = dst->key(), peer = context.principal.value_or("-")](
                const RequestLog& l) {
              metrics_.CountRequest(l.status);
              Log("access").info(
                  "conn={} stream={} src={} peer={} dst={} workload={} {} {} {} h2={} status={} "
                  "local={} bytes_in={} bytes_out={} duration_us={}{}{}",
                  context.session, context.stream,
                  context.source_ip ? context.source_ip->ToString() : "-", peer,
                  context.target.ToString(), dst_key, l.method, l.authority, l.path,
                  l.h2 ? "true" : "false", l.status, l.local ? "true" : "false",
                  l.request_body_bytes, l.response_body_bytes, l.duration.count(),
                  l.detail.empty() ? "" : " detail=", l.detail);
            });
}

}  // namespace zm::waypoint
