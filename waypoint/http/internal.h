#pragma once
// Pieces shared by the HTTP/1 and HTTP/2 engines (not part of the public interface).

#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/byte_buffer.h"
#include "waypoint/http/http.h"

namespace zm::waypoint::internal {

using Clock = std::chrono::steady_clock;

inline constexpr std::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

bool EqualsIgnoreCase(std::string_view a, std::string_view b);
// RFC 9110 token characters.
bool IsTokenChar(char c);
// A method the engines accept: a non-empty token of upper-case letters, digits, '-' and '_'
// (policy-semantics §2.4: non-upper-case methods are rejected with 400).
bool IsValidMethod(std::string_view method);
// Field-value characters: no NUL, CR or LF (HTAB and obs-text are allowed).
bool IsValidFieldValue(std::string_view value);
std::string_view TrimOws(std::string_view s);

// Hop-by-hop headers (RFC 9110 §7.6.1): Connection and every header it names, Keep-Alive,
// Proxy-*, TE, Transfer-Encoding, Upgrade, HTTP2-Settings. Removed before the filter sees the
// head, so what the filter sees is what is forwarded.
bool IsHopByHop(std::string_view name);
void StripHopByHop(std::vector<HttpHeader>& headers);

std::string_view ReasonPhrase(int status);

// A local HTTP/1.1 response: status line, content-type text/plain, content-length, the extra
// headers, `connection: close` when `close`.
void AppendLocalResponse(std::string& out, int status, std::string_view body,
                         const std::vector<HttpHeader>& headers, bool close);

// Connection ids for log lines.
uint64_t NextConnId();

// One connection's timeouts with a single timer that is re-armed only when a deadline moves
// earlier than the armed one (a keep-alive connection costs O(1) timer operations per
// header_timeout, not per request). The owner calls Check on expiry.
class Deadlines {
 public:
  explicit Deadlines(asio::any_io_executor ex) : timer_(std::move(ex)) {}
  // Arms (or re-arms earlier) for `at`; `on_fire` runs on expiry (not on cancel) and should
  // call Arm again for the next deadline it still cares about.
  void Arm(Clock::time_point at, std::function<void()> on_fire);
  void Cancel();

 private:
  asio::steady_timer timer_;
  bool armed_ = false;
  Clock::time_point at_{};
  uint64_t gen_ = 0;
};

// Bytes waiting to be sent on one HTTP/2 stream: appended at the back, taken at the front,
// storage reused (no allocation per DATA frame).
class ByteQueue {
 public:
  size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  const char* data() const { return buf_.data() + begin_; }
  void Append(const uint8_t* p, size_t n);
  void Consume(size_t n);
  void Clear() { begin_ = end_ = 0; }

 private:
  ByteBuffer buf_;
  size_t begin_ = 0, end_ = 0;
};

// The engines, entered from ServeHttp after protocol detection. `initial` holds the bytes
// already read from `down` (`initial_len` of them).
struct ServeArgs {
  std::unique_ptr<hbone::ByteStream> down;
  UpstreamOpener open;
  std::shared_ptr<RequestFilter> filter;
  HttpOptions options;
  std::function<void(const RequestLog&)> on_request;
  uint64_t conn_id = 0;
};
void ServeHttp1(ServeArgs args);
void ServeHttp2(ServeArgs args, ByteBuffer initial, size_t initial_len);

}  // namespace zm::waypoint::internal
