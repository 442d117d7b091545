#include "common/hbone/server_session.h"

#include <atomic>
#include <string>

#include "common/base/log.h"
#include "common/base/strings.h"
#include "common/hbone/authority.h"

namespace zm::hbone {

std::optional<std::string> ConnectRequest::Find(std::string_view name) const {
  for (const auto& h : headers) {
    if (h.name == name) return h.value;
  }
  return std::nullopt;
}

struct Responder::State {
  std::weak_ptr<HboneServerSession> session;
  std::shared_ptr<HboneStream> stream;
  std::atomic<bool> answered{false};

  ~State() {
    if (answered) return;
    auto s = session.lock();
    if (!s) return;
    asio::post(s->executor(), [s, st = std::move(stream)] {
      Log("hbone").warn("conn={} stream={} CONNECT dropped unanswered: 503", s->id(), st->id());
      s->Respond(st, 503, nullptr, nullptr);
    });
  }
};

void Responder::Accept(asio::ip::tcp::socket upstream, HboneStream::Done done) {
  Accept(TcpByteStream(std::move(upstream)), std::move(done));
}

void Responder::Accept(std::unique_ptr<ByteStream> upstream, HboneStream::Done done) {
  if (state_->answered.exchange(true)) {
    Log("hbone").error("Responder answered twice");
    return;
  }
  auto s = state_->session.lock();
  if (!s) {
    upstream->Reset();
    if (done) done(StreamResult{.result = "session-closed"});
    return;
  }
  asio::dispatch(s->executor(), [s, st = state_->stream, up = std::move(upstream),
                                 done = std::move(done)]() mutable {
    s->Respond(st, 200, std::move(up), std::move(done));
  });
}

std::weak_ptr<HboneStream> Responder::stream() const { return state_->stream; }

void Responder::Reject(int status) {
  if (state_->answered.exchange(true)) {
    Log("hbone").error("Responder answered twice");
    return;
  }
  auto s = state_->session.lock();
  if (!s) return;
  asio::dispatch(s->executor(), [s, st = state_->stream, status] {
    s->Respond(st, status, nullptr, nullptr);
  });
}

std::shared_ptr<HboneServerSession> HboneServerSession::Create(std::unique_ptr<Transport> transport,
                                                               std::string peer_identity,
                                                               SessionOptions options,
                                                               OnConnect on_connect) {
  return std::make_shared<HboneServerSession>(std::move(transport), std::move(peer_identity),
                                              options, std::move(on_connect));
}

HboneServerSession::HboneServerSession(std::unique_ptr<Transport> transport,
                                       std::string peer_identity, SessionOptions options,
                                       OnConnect on_connect)
    : SessionBase(std::move(transport), options, /*server=*/true),
      peer_identity_(std::move(peer_identity)),
      on_connect_(std::move(on_connect)) {}

void HboneServerSession::OnHeadersComplete(const std::shared_ptr<HboneStream>& st,
                                           const nghttp2_frame* f) {
  if (f->headers.cat != NGHTTP2_HCAT_REQUEST) {
    // Trailers on a tunnel make no sense.
    ResetStream(st, NGHTTP2_PROTOCOL_ERROR, "peer-error", "unexpected trailers");
    return;
  }
  std::string method, authority, error;
  int methods = 0, authorities = 0;
  ConnectRequest req;
  for (auto& h : st->headers_) {
    if (h.name == ":method") {
      methods++;
      method = h.value;
    } else if (h.name == ":authority") {
      authorities++;
      authority = h.value;
    } else if (!h.name.empty() && h.name[0] == ':') {
      if (error.empty()) error = StrCat("unexpected pseudo-header ", h.name);
    } else {
      req.headers.push_back(h);
    }
  }
  if (st->headers_bad_) {
    error = st->headers_error_;
  } else if (methods != 1) {
    error = methods == 0 ? "missing :method" : "duplicate :method";
  } else if (method != "CONNECT") {
    error = StrCat("method ", method, " is not CONNECT");
  } else if (authorities != 1) {
    error = authorities == 0 ? "missing :authority" : "duplicate :authority";
  }
  absl::StatusOr<Endpoint> target = absl::InvalidArgumentError("unset");
  if (error.empty()) {
    target = ParseAuthority(authority);
    if (!target.ok()) error = std::string(target.status().message());
  }
  st->headers_.clear();
  if (!error.empty()) {
    Log("hbone").info("conn={} stream={} 400: {}", id_, st->id_, error);
    Respond(st, 400, nullptr, nullptr);
    return;
  }
  req.target = *target;
  req.authority = std::move(authority);
  req.peer_identity = peer_identity_;
  req.session_id = id_;
  req.stream_id = st->id_;
  auto state = std::make_shared<Responder::State>();
  state->session = std::static_pointer_cast<HboneServerSession>(shared_from_this());
  state->stream = st;
  Log("hbone").debug("conn={} stream={} CONNECT {} from {}", id_, st->id_, req.authority,
                     peer_identity_);
  asio::post(executor(), [cb = on_connect_, req = std::move(req), r = Responder(std::move(state))] {
    cb(req, r);
  });
}

void HboneServerSession::Respond(const std::shared_ptr<HboneStream>& st, int status,
                                 std::unique_ptr<ByteStream> upstream,
                                 HboneStream::Done done) {
  if (st->finished_ || closed()) {
    // The client reset the stream (or the session died) while we were deciding.
    if (upstream) upstream->Reset();
    if (done) {
      StreamResult r = st->result_;
      if (r.result == "ok") r.result = "session-closed";
      asio::post(executor(), [done = std::move(done), r] { done(r); });
    }
    return;
  }
  std::string code = std::to_string(status);
  nghttp2_nv nv[] = {
      {(uint8_t*)":status", (uint8_t*)code.data(), 7, code.size(), NGHTTP2_NV_FLAG_NONE}};
  if (status == 200 && upstream) {
    nghttp2_data_provider dp = DataProvider(st.get());
    nghttp2_submit_response(session_, st->id_, nv, 1, &dp);
    Log("hbone").debug("conn={} stream={} 200", id_, st->id_);
    Attach(st, std::move(upstream), std::move(done));
    return;
  }
  nghttp2_submit_response(session_, st->id_, nv, 1, nullptr);
  // The client may still be sending: stop it with RST_STREAM(NO_ERROR) once the response is
  // out (queued now, nghttp2 would mark the stream closing and drop the HEADERS).
  if (!st->peer_eof_) st->rst_after_headers_ = true;
  st->result_.result = "rejected";
  st->result_.detail = code;
  Finish(st);
  SendPending();
}

}  // namespace zm::hbone
