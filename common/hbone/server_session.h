#pragma once
// The inbound side of HBONE (15008): an HTTP/2 server session whose streams are CONNECT
// requests. See session.h for threading and relay semantics.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/ip.h"
#include "common/hbone/session.h"

namespace zm::hbone {

struct ConnectRequest {
  Endpoint target;                     // parsed :authority
  std::string authority;               // as received
  std::vector<hbone::Header> headers;  // regular headers: forwarded, baggage, traceparent, ...
  std::string peer_identity;           // as passed to Create (the verified client SPIFFE ID)
  uint64_t session_id = 0;
  int32_t stream_id = 0;

  // The first value of header `name` (lower case), if present.
  std::optional<std::string> Find(std::string_view name) const;
};

class HboneServerSession;

// The answer to one CONNECT. Copyable; if every copy is dropped unanswered the stream gets
// 503. Methods may be called from any thread.
class Responder {
 public:
  // Sends 200 now and relays between the stream and `upstream` (connected, on the session's
  // io_context). If the stream is gone meanwhile, `upstream` is reset and `done` says why.
  void Accept(asio::ip::tcp::socket upstream, HboneStream::Done done = nullptr);
  // The same with an in-process peer (the waypoint).
  void Accept(std::unique_ptr<ByteStream> upstream, HboneStream::Done done = nullptr);
  // Sends `status` (400, 401, 503, ...) with END_STREAM and ends the stream.
  void Reject(int status);
  // The stream, to Reset() it later (a live connection that policy now denies).
  std::weak_ptr<HboneStream> stream() const;

 private:
  friend class HboneServerSession;
  struct State;
  explicit Responder(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

class HboneServerSession final : public SessionBase {
 public:
  using OnConnect = std::function<void(ConnectRequest, Responder)>;

  // `transport` is past its TLS handshake (if any); `peer_identity` is opaque here.
  // Call Start() on the result.
  static std::shared_ptr<HboneServerSession> Create(std::unique_ptr<Transport> transport,
                                                    std::string peer_identity,
                                                    SessionOptions options, OnConnect on_connect);

  HboneServerSession(std::unique_ptr<Transport> transport, std::string peer_identity,
                     SessionOptions options, OnConnect on_connect);

 private:
  friend class Responder;
  void OnHeadersComplete(const std::shared_ptr<HboneStream>& st, const nghttp2_frame* f) override;
  void OnStreamGone(const std::shared_ptr<HboneStream>&, const std::string&) override {}
  void Respond(const std::shared_ptr<HboneStream>& st, int status,
               std::unique_ptr<ByteStream> upstream, HboneStream::Done done);

  std::string peer_identity_;
  OnConnect on_connect_;
};

}  // namespace zm::hbone
