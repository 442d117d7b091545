#include "ztunnel/proxy.h"

#include <sys/socket.h>

#include "common/base/log.h"
#include "common/base/netns.h"
#include "common/base/status.h"
#include "common/base/strings.h"
#include "common/http/asio_util.h"
#include "ztunnel/authorizer.h"
#include "ztunnel/mesh_state.h"
#include "ztunnel/outbound_hbone.h"
#include "ztunnel/relay.h"

namespace zm::ztunnel {
namespace {

using Clock = std::chrono::steady_clock;

// One proxied connection from accept to its access-log line.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Proxy& proxy, Direction dir, std::shared_ptr<const PodInfo> pod,
             asio::ip::tcp::socket client)
      : proxy_(proxy),
        dir_(dir),
        pod_(std::move(pod)),
        id_(proxy.NextId()),
        start_(Clock::now()),
        client_(std::move(client)),
        upstream_(client_.get_executor()) {}

  void Run() {
    const int fd = client_.native_handle();
    if (dir_ == Direction::kOutbound) {
      src_ = PeerEndpoint(fd);
      auto dst = proxy_.config().outbound_dst(fd);
      if (!dst.ok()) {
        Log("proxy").warn("conn={} dir=outbound pod={} no original destination: {}", id_,
                          pod_->DisplayName(), dst.status().message());
        Fail(FailureReason::kNoOrigDst, /*reset=*/false);
        return;
      }
      dst_ = *dst;
      if (OutboundLoopGuard(*dst_)) {
        Log("proxy").warn("conn={} dir=outbound pod={} loop guard: refusing {}", id_,
                          pod_->DisplayName(), dst_->ToString());
        Fail(FailureReason::kLoopGuard, /*reset=*/false);
        return;
      }
      if (OutboundHbone* out = proxy_.outbound()) {
        route_ = out->Route(*pod_, *dst_);
        if (!route_.service.empty()) via_ = StrCat(" service=", route_.service);
        if (!route_.waypoint.empty()) via_ += StrCat(" waypoint=", route_.waypoint);
        switch (route_.kind) {
          case OutboundRoute::Kind::kRefuse:
            Log("proxy").warn("conn={} dir=outbound pod={} dst={} refused: {}", id_,
                              pod_->DisplayName(), dst_->ToString(), route_.detail);
            Fail(route_.refuse_reason, /*reset=*/true);
            return;
          case OutboundRoute::Kind::kHbone:
            OpenHbone(*out);
            return;
          case OutboundRoute::Kind::kPassthrough:
            dst_ = route_.target;  // a VIP's chosen endpoint, else the original destination
            break;
        }
      }
    } else {
      src_ = PeerEndpoint(fd);
      auto dst = proxy_.config().inbound_dst(fd);
      if (!dst.ok() || !src_.ok()) {
        Log("proxy").warn("conn={} dir=inbound pod={} no addresses: {} {}", id_,
                          pod_->DisplayName(), dst.status().message(), src_.status().message());
        Fail(FailureReason::kNoOrigDst, /*reset=*/false);
        return;
      }
      dst_ = *dst;
      if (InboundLoopGuard(*dst_)) {
        Log("proxy").warn("conn={} dir=inbound pod={} loop guard: refusing {}", id_,
                          pod_->DisplayName(), dst_->ToString());
        Fail(FailureReason::kLoopGuard, /*reset=*/false);
        return;
      }
      if (Authorizer* authz = proxy_.authorizer()) {
        auto admission = authz->Admit(
            InboundConnection{.id = id_, .pod = pod_, .src = *src_, .dst = *dst_},
            [weak = weak_from_this(), ex = client_.get_executor()](const std::string& why) {
              asio::dispatch(ex, [weak, why] {
                if (auto self = weak.lock()) self->Revoke(why);
              });
            });
        if (!admission.allowed) {
          // Authorizer logged and counted it; a reset, never an answer.
          CloseRefused();
          return;
        }
        authz_handle_ = admission.handle;
      }
    }
    Connect();
  }

 private:
  // Policy now denies this (inbound) connection: end it with a RST, now or as soon as the
  // upstream connect completes.
  void Revoke(const std::string& why) {
    if (revoked_) return;
    revoked_ = true;
    authz_handle_ = 0;  // the authorizer already forgot it
    if (auto relay = relay_.lock()) relay->Cancel("policy-revoked", why);
  }

  // A refused inbound connection: RST, no access-log line (the authorizer wrote it).
  void CloseRefused() {
    asio::error_code ignored;
    if (client_.is_open()) SetLingerZero(client_.native_handle());
    client_.close(ignored);
  }

  void ReleaseAuthz() {
    if (authz_handle_ == 0) return;
    if (Authorizer* authz = proxy_.authorizer()) authz->Release(authz_handle_);
    authz_handle_ = 0;
  }

  void OpenHbone(OutboundHbone& out) {
    dst_ = route_.target;
    via_ = StrCat(" via=hbone peer=", route_.identities.front().ToString(), via_);
    out.Open(pod_, route_, client_.get_executor(),
             [self = shared_from_this()](absl::StatusOr<int> status,
                                         std::shared_ptr<hbone::HboneStream> stream) {
               self->OnHboneOpen(std::move(status), std::move(stream));
             });
  }

  void OnHboneOpen(absl::StatusOr<int> status, std::shared_ptr<hbone::HboneStream> stream) {
    if (!status.ok()) {
      Log("proxy").warn("conn={} dir=outbound pod={} dst={} HBONE failed: {}", id_,
                        pod_->DisplayName(), dst_->ToString(), status.status().message());
      Fail(FailureReason::kHboneConnect, /*reset=*/true);
      return;
    }
    if (*status != 200 || !stream) {
      Log("proxy").info("conn={} dir=outbound pod={} dst={} HBONE CONNECT answered {}", id_,
                        pod_->DisplayName(), dst_->ToString(), *status);
      Fail(FailureReason::kHboneRejected, /*reset=*/true);
      return;
    }
    auto series = proxy_.metrics().Tcp(Labels());
    series->opened.fetch_add(1, std::memory_order_relaxed);
    stream->Start(std::move(client_), [self = shared_from_this(),
                                       series](const hbone::StreamResult& r) {
      series->sent_bytes.fetch_add(r.bytes_to_stream, std::memory_order_relaxed);
      series->received_bytes.fetch_add(r.bytes_to_socket, std::memory_order_relaxed);
      series->closed.fetch_add(1, std::memory_order_relaxed);
      if (r.result != "ok") {
        Log("proxy").debug("conn={} stream ended: {} ({})", self->id_, r.result, r.detail);
      }
      self->AccessLog(r.bytes_to_stream, r.bytes_to_socket, r.result);
    });
  }

  TcpLabels Labels() const {
    TcpLabels labels{.direction = dir_};
    if (dir_ == Direction::kOutbound) {
      labels.source_workload = pod_->name;
      labels.source_namespace = pod_->ns;
      labels.destination_workload = route_.destination_workload;
      labels.destination_namespace = route_.destination_namespace;
    } else {
      labels.destination_workload = pod_->name;
      labels.destination_namespace = pod_->ns;
    }
    return labels;
  }

  void Connect() {
    proxy_.ConnectUpstream(
        *pod_, dir_, *dst_, src_.ok() ? src_->ip : IpAddr{}, client_.get_executor(),
        [self = shared_from_this()](std::optional<UpstreamFailure> failure,
                                    asio::ip::tcp::socket upstream) {
          self->OnConnect(std::move(failure), std::move(upstream));
        });
  }

  void OnConnect(std::optional<UpstreamFailure> failure, asio::ip::tcp::socket upstream) {
    if (revoked_ && !failure) {
      asio::error_code ignored;
      SetLingerZero(upstream.native_handle());
      upstream.close(ignored);
      // Counted by the authorizer when it revoked the connection.
      SetLingerZero(client_.native_handle());
      client_.close(ignored);
      AccessLog(0, 0, "policy-revoked");
      return;
    }
    if (failure) {
      if (failure->reason == FailureReason::kUpstreamSocket) {
        Log("proxy").warn("conn={} dir={} pod={} upstream socket: {}", id_, DirectionName(dir_),
                          pod_->DisplayName(), failure->detail);
      } else {
        Log("proxy").info("conn={} dir={} pod={} connect to {} failed: {}", id_,
                          DirectionName(dir_), pod_->DisplayName(), dst_->ToString(),
                          failure->detail);
      }
      Fail(failure->reason, /*reset=*/true);
      return;
    }
    upstream_ = std::move(upstream);
    auto series = proxy_.metrics().Tcp(Labels());
    series->opened.fetch_add(1, std::memory_order_relaxed);
    Log("proxy").debug("conn={} dir={} pod={} connected {} -> {}", id_, DirectionName(dir_),
                       pod_->DisplayName(), EndpointText(src_), dst_->ToString());
    relay_ = Relay::Start(std::move(client_), std::move(upstream_), series,
                          [self = shared_from_this(), series](const RelayResult& r) {
                            self->ReleaseAuthz();
                            series->closed.fetch_add(1, std::memory_order_relaxed);
                            if (r.result != "ok") {
                              Log("proxy").debug("conn={} relay ended: {} ({})", self->id_,
                                                 r.result, r.detail);
                            }
                            self->AccessLog(r.bytes_sent, r.bytes_received, r.result);
                          });
  }

  // A connection that never reached its upstream: RST (or plain close) the client.
  void Fail(FailureReason reason, bool reset) {
    ReleaseAuthz();
    proxy_.metrics().CountFailure(reason);
    asio::error_code ignored;
    if (reset && client_.is_open()) SetLingerZero(client_.native_handle());
    client_.close(ignored);
    upstream_.close(ignored);
    AccessLog(0, 0, FailureName(reason));
  }

  void AccessLog(uint64_t sent, uint64_t received, std::string_view result) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start_);
    Log("proxy").info(
        "conn={} dir={} pod={} src={} dst={}{} bytes_sent={} bytes_received={} duration_ms={} "
        "result={}",
        id_, DirectionName(dir_), pod_->DisplayName(), EndpointText(src_),
        dst_ ? dst_->ToString() : "-", via_, sent, received, ms.count(), result);
  }

  Proxy& proxy_;
  Direction dir_;
  std::shared_ptr<const PodInfo> pod_;
  uint64_t id_;
  Clock::time_point start_;
  asio::ip::tcp::socket client_;
  asio::ip::tcp::socket upstream_;
  absl::StatusOr<Endpoint> src_ = absl::UnknownError("unset");
  std::optional<Endpoint> dst_;
  OutboundRoute route_;  // outbound with a router: where it goes and why
  std::string via_;      // access-log fields of the route (" via=hbone peer=... service=...")
  uint64_t authz_handle_ = 0;  // inbound: tracked by the authorizer until it ends
  bool revoked_ = false;
  std::weak_ptr<Relay> relay_;
  InFlight in_flight_{proxy_.metrics()};
};

// One upstream connect attempt with its timeout (Proxy::ConnectUpstream).
class UpstreamConnect : public std::enable_shared_from_this<UpstreamConnect> {
 public:
  UpstreamConnect(const asio::any_io_executor& ex, std::chrono::milliseconds timeout,
                  UpstreamDone done)
      : socket_(ex), timer_(ex), timeout_(timeout), done_(std::move(done)) {}

  void Start(Fd sock, const Endpoint& dst) {
    asio::error_code ec;
    socket_.assign(ProtocolOf(dst), sock.get(), ec);
    if (ec) {
      Finish(UpstreamFailure{FailureReason::kUpstreamSocket, StrCat("assign: ", ec.message())});
      return;
    }
    (void)sock.release();
    timer_.expires_after(timeout_);
    timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (ec || self->finished_) return;
      self->timed_out_ = true;
      asio::error_code ignored;
      self->socket_.cancel(ignored);
    });
    socket_.async_connect(ToAsio(dst), [self = shared_from_this()](const asio::error_code& ec) {
      self->timer_.cancel();
      if (!ec) {
        self->Finish(std::nullopt);
        return;
      }
      FailureReason reason = FailureReason::kConnectError;
      if (self->timed_out_) {
        reason = FailureReason::kConnectTimeout;
      } else if (ec == asio::error::connection_refused) {
        reason = FailureReason::kConnectRefused;
      }
      self->Finish(UpstreamFailure{reason, self->timed_out_ ? "timed out" : ec.message()});
    });
  }

  void Finish(std::optional<UpstreamFailure> failure) {
    finished_ = true;
    if (failure) {
      asio::error_code ignored;
      socket_.close(ignored);
    }
    auto done = std::move(done_);
    done(std::move(failure), std::move(socket_));
  }

 private:
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  std::chrono::milliseconds timeout_;
  UpstreamDone done_;
  bool finished_ = false;
  bool timed_out_ = false;
};

}  // namespace

void Proxy::ConnectUpstream(const PodInfo& pod, Direction dir, const Endpoint& dst,
                            const IpAddr& client_ip, const asio::any_io_executor& ex,
                            UpstreamDone done) {
  UpstreamOptions opts;
  if (dir == Direction::kOutbound) {
    opts.mark = config_.set_marks ? kMarkZtunnel : 0;
  } else {
    opts.mark = config_.set_marks ? kMarkDelivery : 0;
    opts.transparent = config_.transparent_delivery;
    opts.bind_ip = client_ip;
  }
  absl::StatusOr<Fd> sock = absl::UnknownError("unset");
  if (pod.netns) {
    // Hot-path exception to "never setns on an event-loop thread" (DESIGN §5): the upstream
    // socket must belong to the pod's netns (routing, source addresses, the pod's own
    // policy), and a socket keeps the netns it was created in. Creating it here costs two
    // setns calls on this worker thread; a helper-thread round trip per connection would
    // cost a thread switch and a queue, and nothing else runs on this thread meanwhile.
    auto guard = ScopedNetns::Enter(pod.netns.get());
    if (!guard.ok()) {
      sock = guard.status();
    } else {
      sock = CreateUpstreamSocket(dst, opts);
    }
  } else {
    sock = CreateUpstreamSocket(dst, opts);
  }
  auto attempt = std::make_shared<UpstreamConnect>(ex, config_.connect_timeout, std::move(done));
  if (!sock.ok()) {
    attempt->Finish(
        UpstreamFailure{FailureReason::kUpstreamSocket, std::string(sock.status().message())});
    return;
  }
  attempt->Start(std::move(*sock), dst);
}

void Proxy::HandleOutbound(std::shared_ptr<const PodInfo> pod, asio::ip::tcp::socket client) {
  std::make_shared<Connection>(*this, Direction::kOutbound, std::move(pod), std::move(client))
      ->Run();
}

void Proxy::HandleInbound(std::shared_ptr<const PodInfo> pod, asio::ip::tcp::socket client) {
  std::make_shared<Connection>(*this, Direction::kInbound, std::move(pod), std::move(client))
      ->Run();
}

void Proxy::HandleHbone(std::shared_ptr<const PodInfo> pod, asio::ip::tcp::socket client) {
  if (hbone_handler_) {
    hbone_handler_(std::move(pod), std::move(client));
    return;
  }
  uint64_t id = NextId();
  auto peer = PeerEndpoint(client.native_handle());
  Log("proxy").debug("conn={} dir=hbone pod={} src={}: HBONE not served yet, closing", id,
                     pod->DisplayName(), EndpointText(peer));
  asio::error_code ignored;
  client.close(ignored);
}

absl::StatusOr<PodListenerFds> CreatePodListeners(uint32_t mark) {
  PodListenerFds fds;
  ZM_ASSIGN_OR_RETURN(auto lo4, IpAddr::Parse("127.0.0.1"));
  ZM_ASSIGN_OR_RETURN(auto lo6, IpAddr::Parse("::1"));
  ZM_ASSIGN_OR_RETURN(auto any6, IpAddr::Parse("::"));
  ZM_ASSIGN_OR_RETURN(fds.outbound4,
                      CreateListener({.ip = lo4, .port = kPortOutbound}, {.mark = mark}));
  // Best effort: a netns without ::1 (IPv6 disabled) has only the v4 outbound listener.
  auto out6 = CreateListener({.ip = lo6, .port = kPortOutbound}, {.mark = mark, .v6only = true});
  if (out6.ok()) {
    fds.outbound6 = std::move(*out6);
  } else {
    Log("inpod").debug("no [::1]:{} listener: {}", kPortOutbound, out6.status().message());
  }
  ZM_ASSIGN_OR_RETURN(fds.inbound, CreateListener({.ip = any6, .port = kPortInbound},
                                                  {.mark = mark, .v6only = false}));
  ZM_ASSIGN_OR_RETURN(
      fds.hbone, CreateListener({.ip = any6, .port = kPortHbone}, {.mark = mark, .v6only = false}));
  return fds;
}

PodListeners::PodListeners(asio::io_context& ctx, Proxy& proxy, std::shared_ptr<const PodInfo> pod)
    : ctx_(ctx), proxy_(proxy), pod_(std::move(pod)) {}

absl::Status PodListeners::Add(ListenerKind kind, Fd fd) {
  if (!fd) return absl::OkStatus();
  auto family = LocalEndpoint(fd.get());
  if (!family.ok()) return family.status();
  auto entry = std::make_unique<Entry>(Entry{kind, asio::ip::tcp::acceptor(ctx_)});
  asio::error_code ec;
  entry->acceptor.assign(ProtocolOf(*family), fd.get(), ec);
  if (ec) return absl::InternalError(StrCat("asio assign listener: ", ec.message()));
  (void)fd.release();
  entries_.push_back(std::move(entry));
  Accept(entries_.size() - 1);
  return absl::OkStatus();
}

absl::Status PodListeners::Start(PodListenerFds fds) {
  ZM_RETURN_IF_ERROR(Add(ListenerKind::kOutbound, std::move(fds.outbound4)));
  ZM_RETURN_IF_ERROR(Add(ListenerKind::kOutbound, std::move(fds.outbound6)));
  ZM_RETURN_IF_ERROR(Add(ListenerKind::kInbound, std::move(fds.inbound)));
  ZM_RETURN_IF_ERROR(Add(ListenerKind::kHbone, std::move(fds.hbone)));
  return absl::OkStatus();
}

void PodListeners::Accept(size_t i) {
  Entry& e = *entries_[i];
  e.acceptor.async_accept([self = shared_from_this(), i](const asio::error_code& ec,
                                                         asio::ip::tcp::socket sock) {
    if (self->closed_ || ec == asio::error::operation_aborted) return;
    Entry& e = *self->entries_[i];
    if (ec) {
      if (ec == asio::error::invalid_argument || ec == asio::error::bad_descriptor) return;
      // EMFILE and friends: back off briefly instead of spinning.
      Log("proxy").warn("pod={} accept: {}", self->pod_->DisplayName(), ec.message());
      auto timer = std::make_shared<asio::steady_timer>(self->ctx_, std::chrono::milliseconds(100));
      timer->async_wait([self, i, timer](const asio::error_code&) {
        if (!self->closed_) self->Accept(i);
      });
      return;
    }
    switch (e.kind) {
      case ListenerKind::kOutbound:
        self->proxy_.HandleOutbound(self->pod_, std::move(sock));
        break;
      case ListenerKind::kInbound:
        self->proxy_.HandleInbound(self->pod_, std::move(sock));
        break;
      case ListenerKind::kHbone:
        self->proxy_.HandleHbone(self->pod_, std::move(sock));
        break;
    }
    self->Accept(i);
  });
}

void PodListeners::Close(bool shutdown_sockets) {
  closed_ = true;
  for (auto& e : entries_) {
    asio::error_code ignored;
    if (shutdown_sockets && e->acceptor.is_open()) {
      ::shutdown(e->acceptor.native_handle(), SHUT_RDWR);
    }
    e->acceptor.close(ignored);
  }
}

}  // namespace zm::ztunnel
