#pragma once
// The outbound side of HBONE: an HTTP/2 client session that opens one CONNECT stream per
// proxied connection. See session.h for threading and relay semantics.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/hbone/session.h"

namespace zm::hbone {

class HboneClientSession final : public SessionBase {
 public:
  // `status`: the response status, or an error (session closed, stream refused or reset
  // before the response, too many streams). `stream` is set only for 200: call
  // stream->Start(client_socket, done). On anything else the stream is already reset and
  // the caller resets its client.
  using OpenCallback =
      std::function<void(absl::StatusOr<int> status, std::shared_ptr<HboneStream> stream)>;

  // `transport` is past its TLS handshake (if any). Call Start() on the result.
  static std::shared_ptr<HboneClientSession> Create(std::unique_ptr<Transport> transport,
                                                    SessionOptions options = {});
  HboneClientSession(std::unique_ptr<Transport> transport, SessionOptions options);

  // CONNECT `authority` ("10.0.0.1:80", "[fd00::1]:80") with `headers` (forwarded: for=...,
  // baggage, traceparent; lower-case names). Any thread; `cb` runs on the session's executor.
  void OpenStream(std::string authority, std::vector<Header> headers, OpenCallback cb);
  // The same with the complete header list, pseudo-headers included (tests, waypoints).
  void OpenRequest(std::vector<Header> headers, OpenCallback cb);

  // Streams that may still be opened (on the session's executor).
  size_t available_streams() const;
  // False once closed or told GOAWAY (on the session's executor).
  bool usable() const { return !closed() && !goaway_received(); }

 private:
  void OnHeadersComplete(const std::shared_ptr<HboneStream>& st, const nghttp2_frame* f) override;
  void OnStreamGone(const std::shared_ptr<HboneStream>& st, const std::string& why) override;
};

}  // namespace zm::hbone
