#include "ztunnel/outbound_hbone.h"

#include <openssl/rand.h>

#include <cstdint>
#include <random>

#include "common/base/log.h"
#include "common/base/strings.h"
#include "common/tls/hbone_tls.h"
#include "common/hbone/tls_transport.h"
#include "ztunnel/sockets.h"

namespace zm::ztunnel {
namespace {

OutboundRoute Refuse(FailureReason reason, std::string detail) {
  OutboundRoute r;
  r.kind = OutboundRoute::Kind::kRefuse;
  r.refuse_reason = reason;
  r.detail = std::move(detail);
  return r;
}

// The workload's address of the same family as `like`, else its first one.
std::optional<IpAddr> AddressOf(const mesh::Workload& w, const IpAddr& like) {
  for (const IpAddr& ip : w.ips) {
    if (ip.is_v4() == like.is_v4()) return ip;
  }
  if (w.ips.empty()) return std::nullopt;
  return w.ips.front();
}

// To a workload's address: HBONE when it is in the mesh (through its waypoint when it has one),
// else plain TCP.
OutboundRoute ToWorkload(const MeshView& mesh, const mesh::Workload* w, const Endpoint& target,
                         std::string_view trust_domain,
                         const std::function<size_t(size_t)>& pick) {
  OutboundRoute r;
  r.target = target;
  if (w == nullptr) return r;  // not a mesh workload: passthrough
  r.destination_workload = w->name;
  r.destination_namespace = w->ns;
  if (w->tunnel_protocol != mesh::TunnelProtocol::kHbone) return r;
  auto id = tls::SpiffeId::ForServiceAccount(trust_domain, w->ns, w->service_account);
  if (!id.ok()) {
    return Refuse(FailureReason::kHboneConnect,
                  StrCat("workload ", w->key(), " has no valid identity: ", id.status().message()));
  }
  r.kind = OutboundRoute::Kind::kHbone;
  r.next_hop = Endpoint{.ip = target.ip, .port = kPortHbone};
  auto waypoint = mesh::ResolveWaypoint(mesh.snapshot(), *w, pick);
  if (!waypoint.ok()) {
    // Never around the waypoint the destination asked for.
    return Refuse(FailureReason::kNoEndpoint, std::string(waypoint.status().message()));
  }
  if (*waypoint) {
    const mesh::Workload& wp = *(*waypoint)->workload;
    auto wp_id = tls::SpiffeId::ForServiceAccount(trust_domain, wp.ns, wp.service_account);
    if (!wp_id.ok()) {
      return Refuse(FailureReason::kHboneConnect, StrCat("waypoint ", wp.key(),
                                                         " has no valid identity: ",
                                                         wp_id.status().message()));
    }
    r.waypoint = (*waypoint)->service;
    r.next_hop = Endpoint{.ip = (*waypoint)->ip, .port = kPortHbone};
    r.identities.push_back(std::move(*wp_id));
    return r;
  }
  r.identities.push_back(std::move(*id));
  return r;
}

std::string Hex(const unsigned char* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[p[i] >> 4]);
    out.push_back(kDigits[p[i] & 15]);
  }
  return out;
}

size_t RandomIndex(size_t n) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_int_distribution<size_t>(0, n - 1)(rng);
}

}  // namespace

OutboundRoute DecideOutboundRoute(const MeshView* mesh, const Endpoint& dst,
                                  std::string_view trust_domain,
                                  const std::function<size_t(size_t)>& pick) {
  if (mesh == nullptr) {
    return Refuse(FailureReason::kNoConfig, "no mesh configuration from the agent yet");
  }
  if (const mesh::Service* svc = mesh->ServiceByVip(dst.ip)) {
    const mesh::ServicePort* port = svc->FindPort(dst.port);
    if (port == nullptr) {
      return Refuse(FailureReason::kNoEndpoint,
                    StrCat("service ", svc->key(), " has no TCP port ", dst.port));
    }
    const size_t port_index = static_cast<size_t>(port - svc->ports.data());
    struct Candidate {
      const mesh::Workload* workload;
      Endpoint target;
    };
    std::vector<Candidate> candidates;
    for (const mesh::ServiceEndpoint& ep : svc->endpoints) {
      if (port_index >= ep.target_ports.size() || ep.target_ports[port_index] == 0) continue;
      const mesh::Workload* w = mesh->WorkloadByUid(ep.workload_uid);
      if (w == nullptr || w->terminal()) continue;
      auto ip = AddressOf(*w, dst.ip);
      if (!ip) continue;
      candidates.push_back({w, Endpoint{.ip = *ip, .port = ep.target_ports[port_index]}});
    }
    if (candidates.empty()) {
      return Refuse(FailureReason::kNoEndpoint,
                    StrCat("service ", svc->key(), " port ", dst.port, " has no ready endpoint"));
    }
    const Candidate& c = candidates[pick(candidates.size()) % candidates.size()];
    OutboundRoute r = ToWorkload(*mesh, c.workload, c.target, trust_domain, pick);
    r.service = svc->key();
    return r;
  }
  if (mesh->IpAmbiguous(dst.ip)) {
    // Identity is never guessed: neither HBONE to one of them nor plaintext.
    return Refuse(FailureReason::kNoEndpoint,
                  StrCat("address ", dst.ip.ToString(), " is claimed by several workloads"));
  }
  return ToWorkload(*mesh, mesh->WorkloadByIp(dst.ip), dst, trust_domain, pick);
}

std::vector<hbone::Header> OutboundHeaders(const PodInfo& source,
                                           const std::optional<IpAddr>& source_ip) {
  std::vector<hbone::Header> h;
  // RFC 7239: an IPv6 node is quoted and bracketed.
  if (source_ip) {
    h.push_back({"forwarded", source_ip->is_v4()
                                  ? StrCat("for=", source_ip->ToString())
                                  : StrCat("for=\"[", source_ip->ToString(), "]\"")});
  }
  h.push_back({"baggage", StrCat("k8s.namespace.name=", source.ns, ",k8s.pod.name=", source.name)});
  unsigned char ids[24];
  if (RAND_bytes(ids, sizeof(ids)) == 1) {
    h.push_back({"traceparent", StrCat("00-", Hex(ids, 16), "-", Hex(ids + 16, 8), "-00")});
  }
  return h;
}

OutboundHbone::OutboundHbone(Proxy& proxy, const MeshState& mesh,
                             HboneCredentialSource credentials, OutboundHboneOptions options)
    : proxy_(proxy),
      mesh_(mesh),
      credentials_(std::move(credentials)),
      options_(std::move(options)) {}

OutboundHbone::~OutboundHbone() = default;

void OutboundHbone::AddWorker(asio::io_context& ctx) {
  auto w = std::make_unique<Worker>();
  w->ctx = &ctx;
  Worker* raw = w.get();
  w->pool = std::make_unique<hbone::HbonePool>(
      ctx.get_executor(),
      [this, raw](const hbone::PoolKey& key, std::function<void(hbone::HbonePool::SessionOr)> done) {
        Connect(*raw, key, std::move(done));
      },
      options_.pool);
  hbone::HbonePool* pool = w->pool.get();
  auto period = options_.idle_sweep;
  asio::post(ctx, [pool, period] { pool->StartIdleSweep(period); });
  workers_.push_back(std::move(w));
}

OutboundRoute OutboundHbone::Route(const PodInfo& source, const Endpoint& dst) const {
  auto view = mesh_.Current();
  OutboundRoute r = DecideOutboundRoute(view.get(), dst, options_.trust_domain, RandomIndex);
  r.next_hop.port = options_.hbone_port;
  if (view) {
    if (const mesh::Workload* self = view->WorkloadByUid(source.uid)) {
      r.source_ip = AddressOf(*self, r.target.ip);
    }
  }
  return r;
}

OutboundHbone::Worker* OutboundHbone::WorkerOf(const asio::any_io_executor& ex) {
  asio::execution_context* ctx = &ex.context();
  for (auto& w : workers_) {
    if (static_cast<asio::execution_context*>(w->ctx) == ctx) return w.get();
  }
  return nullptr;
}

size_t OutboundHbone::ConnectionCount(const asio::any_io_executor& ex) {
  Worker* w = WorkerOf(ex);
  return w == nullptr ? 0 : w->pool->connection_count();
}

void OutboundHbone::Open(std::shared_ptr<const PodInfo> pod, const OutboundRoute& route,
                         const asio::any_io_executor& ex,
                         hbone::HboneClientSession::OpenCallback cb) {
  Worker* w = WorkerOf(ex);
  if (w == nullptr) {
    cb(absl::InternalError("no HBONE pool on this worker"), nullptr);
    return;
  }
  auto id = tls::SpiffeId::ForServiceAccount(options_.trust_domain, pod->ns, pod->service_account);
  if (!id.ok()) {
    cb(absl::FailedPreconditionError(
           StrCat("source pod has no valid identity: ", id.status().message())),
       nullptr);
    return;
  }
  hbone::PoolKey key;
  // The pod object, not just its uid: a pod re-added with a new netns gets new connections.
  key.source = StrCat(pod->uid, "@", reinterpret_cast<uintptr_t>(pod.get()));
  key.source_identity = id->ToString();
  for (const auto& expected : route.identities) {
    key.destination_identities.push_back(expected.ToString());
  }
  key.destination = route.next_hop;
  if (w->sources.size() > 256) {
    std::erase_if(w->sources, [](const auto& kv) { return kv.second.expired(); });
  }
  w->sources[key.source] = pod;
  w->pool->OpenStream(std::move(key), route.target.ToString(),
                      OutboundHeaders(*pod, route.source_ip), std::move(cb));
}

absl::StatusOr<std::shared_ptr<asio::ssl::context>> OutboundHbone::ClientContext(
    Worker& w, const tls::SpiffeId& id) {
  auto creds = credentials_.get(id);
  if (!creds.ok()) {
    return absl::Status(creds.status().code(), StrCat("no certificate for ", id.ToString(),
                                                      " yet: ", creds.status().message()));
  }
  std::vector<std::string> roots = credentials_.roots();
  ClientTls& cache = w.tls[id.ToString()];
  if (cache.ctx && cache.creds == *creds && cache.roots == roots) return cache.ctx;
  auto bundle = tls::RootBundle::FromPems(roots);
  if (!bundle.ok()) return bundle.status();
  auto ctx = tls::MakeClientContext(**creds, *bundle, options_.trust_domain);
  if (!ctx.ok()) return ctx.status();
  cache.ctx = std::make_shared<asio::ssl::context>(ctx->release());
  cache.creds = *creds;
  cache.roots = std::move(roots);
  Log("proxy").info("HBONE client context (re)built for {}", id.ToString());
  return cache.ctx;
}

void OutboundHbone::Connect(Worker& w, const hbone::PoolKey& key,
                            std::function<void(hbone::HbonePool::SessionOr)> done) {
  ConnectWhenReady(w, key, std::move(done),
                   std::chrono::steady_clock::now() + options_.certificate_wait);
}

void OutboundHbone::ConnectWhenReady(Worker& w, const hbone::PoolKey& key,
                                     std::function<void(hbone::HbonePool::SessionOr)> done,
                                     std::chrono::steady_clock::time_point deadline) {
  auto it = w.sources.find(key.source);
  std::shared_ptr<const PodInfo> pod = it == w.sources.end() ? nullptr : it->second.lock();
  if (!pod) {
    done(absl::UnavailableError("the source pod is gone"));
    return;
  }
  auto source_id = tls::SpiffeId::Parse(key.source_identity);
  if (!source_id.ok()) {
    done(source_id.status());
    return;
  }
  auto ctx = ClientContext(w, *source_id);
  if (!ctx.ok()) {
    // A pod's first certificate is fetched when the pod is added; a connection made right then
    // waits for it (briefly) rather than failing.
    if (absl::IsUnavailable(ctx.status()) && std::chrono::steady_clock::now() < deadline) {
      auto timer = std::make_shared<asio::steady_timer>(*w.ctx, std::chrono::milliseconds(50));
      timer->async_wait([this, &w, key, done = std::move(done), deadline,
                         timer](const asio::error_code&) mutable {
        ConnectWhenReady(w, key, std::move(done), deadline);
      });
      return;
    }
    done(ctx.status());
    return;
  }
  std::vector<tls::SpiffeId> expected;
  for (const auto& text : key.destination_identities) {
    auto id = tls::SpiffeId::Parse(text);
    if (!id.ok()) {
      done(id.status());
      return;
    }
    expected.push_back(std::move(*id));
  }
  proxy_.ConnectUpstream(
      *pod, Direction::kOutbound, key.destination, IpAddr{}, w.ctx->get_executor(),
      [this, ctx = *ctx, expected = std::move(expected), peer = key.destination,
       done = std::move(done)](std::optional<UpstreamFailure> failure,
                               asio::ip::tcp::socket socket) mutable {
        if (failure) {
          done(absl::UnavailableError(
              StrCat("HBONE to ", peer.ToString(), ": connect failed: ", failure->detail)));
          return;
        }
        hbone::StartTlsClientSession(std::move(socket), ctx->native_handle(),
                                     std::move(expected), options_.handshake_timeout,
                                     options_.session, peer, std::move(done));
      });
}

}  // namespace zm::ztunnel
