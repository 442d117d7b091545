#pragma once
// The waypoint's HTTP engine (DESIGN §6): serves the HTTP/1.x or HTTP/2 (prior knowledge) that a
// client speaks inside one HBONE CONNECT stream, asks the filter chain about every request, and
// forwards the allowed ones to the destination over one upstream byte stream (a new HBONE
// stream in production). See README.md for threads, limits and the security rules.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/hbone/byte_stream.h"

namespace zm::waypoint {

struct HttpHeader {
  std::string name;
  std::string value;
  bool operator==(const HttpHeader&) const = default;
};

struct RequestHead {
  bool h2 = false;  // HTTP/2 prior knowledge
  std::string method;
  std::string path;       // as received (origin-form, query included); the filter may rewrite it
  std::string authority;  // Host / :authority
  std::string scheme = "http";
  // Regular headers (no pseudo-headers, no hop-by-hop or framing headers: those are the
  // engine's); names compare case-insensitively.
  std::vector<HttpHeader> headers;

  // The first value of `name`, or nullopt. The view is valid until `headers` changes.
  std::optional<std::string_view> Find(std::string_view name) const;
  // Removes every header called `name`; returns how many.
  size_t Remove(std::string_view name);
  // Replaces every `name` header by one with `value` (appended if there was none).
  void Set(std::string_view name, std::string_view value);
};

struct Decision {
  bool forward = true;
  int status = 0;                            // !forward: local response status
  std::string body;                          // !forward: text/plain body
  std::vector<HttpHeader> response_headers;  // e.g. www-authenticate
};

// The waypoint's filter chain; may edit `head` (remove/set headers, rewrite the path) before
// it is forwarded. Asynchronous (an external authorizer may be asked); `done` must be called
// exactly once, on the connection's executor (inline from Decide is fine).
class RequestFilter {
 public:
  virtual ~RequestFilter() = default;
  virtual void Decide(RequestHead& head, std::function<void(Decision)> done) = 0;
};

// Opens the upstream byte stream of one downstream connection (an HBONE stream in production, a
// TCP socket in tests). Called lazily at the first forwarded request and again only after the
// previous upstream ended (closed by the peer, `Connection: close`, GOAWAY, an error); the
// callback runs on the connection's executor. Failure -> the request gets 503.
using UpstreamOpener =
    std::function<void(std::function<void(absl::StatusOr<std::unique_ptr<hbone::ByteStream>>)>)>;

// One per request, for the access log and istio_requests_total.
struct RequestLog {
  std::string method, path, authority;  // path and authority as forwarded (after the filter)
  bool h2 = false;
  int status = 0;      // 0: no response (the connection or stream died first)
  bool local = false;  // answered by the waypoint
  uint64_t request_body_bytes = 0, response_body_bytes = 0;
  std::chrono::microseconds duration{0};
  // "" when all went well; otherwise what happened ("filter", "bad-request: ...",
  // "upstream-open: ...", "upstream-reset", "downstream-reset", ...).
  std::string detail;
};

struct HttpOptions {
  size_t max_request_headers_bytes = 60 * 1024;  // beyond: 431
  size_t max_headers = 100;                      // beyond: 431
  std::chrono::milliseconds idle_timeout{300'000};
  std::chrono::milliseconds header_timeout{30'000};  // a request head must arrive within this
  // HTTP/2 (both sessions).
  uint32_t h2_max_concurrent_streams = 100;
  uint32_t h2_stream_window = 1 << 20;
  uint32_t h2_connection_window = 4 << 20;
};

// Serves one downstream connection until it ends; everything runs on downstream->executor().
// `on_request` is called once per request that got as far as a request head (or a 400/431).
void ServeHttp(std::unique_ptr<hbone::ByteStream> downstream, UpstreamOpener open,
               std::shared_ptr<RequestFilter> filter, HttpOptions options,
               std::function<void(const RequestLog&)> on_request);

}  // namespace zm::waypoint
