// Fuzz target: arbitrary bytes as one downstream connection (HTTP/1.x or HTTP/2 after the
// preface) through ServeHttp, with an upstream that answers with bytes from the input too, so
// both parsers of both protocols see hostile input.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "common/base/log.h"
#include "tests/waypoint/http/fuzz/http_fuzz.h"
#include "waypoint/http/http.h"

namespace zm::waypoint::fuzz {
namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "http fuzz invariant broken: %s\n", what);
    std::abort();
  }
}

class Filter : public RequestFilter {
 public:
  Filter(asio::any_io_executor ex, uint8_t flags) : ex_(std::move(ex)), flags_(flags) {}
  void Decide(RequestHead& head, std::function<void(Decision)> done) override {
    Decision d;
    if (flags_ & kFuzzDeny) {
      d.forward = false;
      d.status = 403;
      d.body = "RBAC: access denied";
      d.response_headers = {{"x-denied", "1"}};
    }
    if (flags_ & kFuzzRewrite) {
      head.path = "/rewritten" + head.path;
      head.Set("x-fuzz", "1");
      head.Remove("authorization");
    }
    if (flags_ & kFuzzInlineFilter) {
      done(std::move(d));
    } else {
      asio::post(ex_, [done = std::move(done), d = std::move(d)]() mutable { done(std::move(d)); });
    }
  }

 private:
  asio::any_io_executor ex_;
  uint8_t flags_;
};

// Writes `data` to `s` (in pieces of `piece` bytes), then shuts the sending side down.
void WriteAll(std::shared_ptr<hbone::ByteStream> s, std::shared_ptr<std::string> data, size_t off,
              size_t piece) {
  if (off >= data->size()) {
    s->ShutdownSend();
    return;
  }
  size_t n = std::min(piece, data->size() - off);
  s->AsyncWriteSome({asio::buffer(data->data() + off, n)},
                    [s, data, off, piece](const asio::error_code& ec, size_t written) {
                      if (ec) return;
                      WriteAll(s, data, off + written, piece);
                    });
}

// Reads and counts until EOF or an error.
void Drain(std::shared_ptr<hbone::ByteStream> s, std::shared_ptr<std::string> buf, size_t* count) {
  s->AsyncReadSome(asio::buffer(buf->data(), buf->size()),
                   [s, buf, count](const asio::error_code& ec, size_t n) {
                     if (ec) {
                       s->Close();
                       return;
                     }
                     *count += n;
                     Drain(s, buf, count);
                   });
}

}  // namespace

FuzzResult RunFuzzCase(const uint8_t* data, size_t size) {
  uint8_t flags = 0;
  std::string down_bytes, up_bytes;
  if (size < 3) {
    down_bytes.assign(reinterpret_cast<const char*>(data), size);
  } else {
    flags = data[0];
    size_t len = std::min<size_t>((size_t{data[1]} << 8) | data[2], size - 3);
    down_bytes.assign(reinterpret_cast<const char*>(data + 3), len);
    up_bytes.assign(reinterpret_cast<const char*>(data + 3 + len), size - 3 - len);
  }
  FuzzResult result;
  size_t upstream_read = 0;
  static const bool debug = [] {
    if (std::getenv("HTTP_FUZZ_DEBUG")) ConfigureLogging("debug");
    return std::getenv("HTTP_FUZZ_DEBUG") != nullptr;
  }();
  (void)debug;
  {
    asio::io_context ioc;
    auto ex = ioc.get_executor();
    auto [server_end, client_raw] = hbone::MakePipe(ex, 16 * 1024);
    std::shared_ptr<hbone::ByteStream> client(std::move(client_raw));
    auto up_data = std::make_shared<std::string>(std::move(up_bytes));
    UpstreamOpener open = [ex, flags, up_data, &upstream_read](auto cb) {
      if (flags & kFuzzOpenFails) {
        cb(absl::UnavailableError("fuzz: no upstream"));
        return;
      }
      auto [engine_end, backend_raw] = hbone::MakePipe(ex, 16 * 1024);
      std::shared_ptr<hbone::ByteStream> backend(std::move(backend_raw));
      // The backend answers with the input's upstream bytes, whatever it is asked.
      WriteAll(backend, up_data, 0, 4096);
      Drain(backend, std::make_shared<std::string>(4096, '\0'), &upstream_read);
      cb(std::move(engine_end));
    };
    HttpOptions options;
    options.max_request_headers_bytes = 4096;
    options.max_headers = 20;
    ServeHttp(std::move(server_end), open, std::make_shared<Filter>(ex, flags), options,
              [&](const RequestLog& log) {
                Check(log.status == 0 || (log.status >= 100 && log.status <= 599), "status");
                if (std::getenv("HTTP_FUZZ_DEBUG")) {
                  std::fprintf(stderr, "%s %s %s -> %d local=%d detail=%s\n", log.h2 ? "h2" : "h1",
                               log.method.c_str(), log.path.c_str(), log.status, log.local,
                               log.detail.c_str());
                }
                ++result.requests;
                if (log.status / 100 == 2) {
                  Check(!(flags & kFuzzDeny), "2xx while everything is denied");
                  if (log.detail.empty()) ++result.status_2xx;  // not cut short
                }
                if (log.status / 100 == 4) ++result.status_4xx;
              });
    WriteAll(client, std::make_shared<std::string>(std::move(down_bytes)), 0,
             (flags & kFuzzTrickle) ? 7 : 64 * 1024);
    Drain(client, std::make_shared<std::string>(64 * 1024, '\0'), &result.client_bytes);
    // Until nothing is ready (timers are not waited for), then close the client and let
    // everything wind down; what is still parked goes with the io_context.
    for (int round = 0; round < 100000 && ioc.poll() > 0; ++round) ioc.restart();
    ioc.restart();
    client->Close();
    for (int round = 0; round < 100000 && ioc.poll() > 0; ++round) ioc.restart();
  }
  return result;
}

}  // namespace zm::waypoint::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  zm::waypoint::fuzz::RunFuzzCase(data, size);
  return 0;
}
