#pragma once
// Harness for the waypoint HTTP engine tests: a worker thread running an io_context, the engine
// serving one end of an in-process pipe (the test drives the other end with blocking calls), a
// Python backend (tests/waypoint/http/backend.py: HTTP/1.1 and h2c) reached over real TCP,
// a scriptable filter, and a TCP listener for real clients (curl, nghttp). Every wait has a
// deadline; nothing sleeps.

#include <gtest/gtest.h>
#include <http_parser.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "waypoint/http/http.h"

extern char** environ;

namespace zm::waypoint::testing {

using namespace std::chrono_literals;
inline constexpr auto kDeadline = 20s;

// The Python backend, started once per test binary.
class Backend {
 public:
  Backend() {
    int in[2], out[2];
    if (::pipe(in) != 0 || ::pipe(out) != 0) std::abort();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    std::string script = std::string(ZMESH_TEST_SOURCE_DIR) + "/backend.py";
    char* argv[] = {const_cast<char*>("/usr/bin/python3"), script.data(), nullptr};
    if (posix_spawn(&pid_, "/usr/bin/python3", &fa, nullptr, argv, environ) != 0) std::abort();
    posix_spawn_file_actions_destroy(&fa);
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    FILE* f = ::fdopen(out[0], "r");
    if (std::fscanf(f, "h1=%hu h2=%hu", &h1_port_, &h2_port_) != 2) std::abort();
    std::fclose(f);
  }
  ~Backend() {
    ::close(stdin_);
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  uint16_t h1_port() const { return h1_port_; }
  uint16_t h2_port() const { return h2_port_; }
  static Backend& Get() {
    static Backend* b = new Backend();  // killed by the atexit below
    static bool registered = [] {
      std::atexit([] { delete b; });
      return true;
    }();
    (void)registered;
    return *b;
  }

 private:
  pid_t pid_ = 0;
  int stdin_ = -1;
  uint16_t h1_port_ = 0, h2_port_ = 0;
};

class Worker {
 public:
  Worker() : guard_(asio::make_work_guard(ioc_)), thread_([this] { ioc_.run(); }) {}
  ~Worker() {
    guard_.reset();
    ioc_.stop();
    thread_.join();
  }
  asio::io_context& ioc() { return ioc_; }
  asio::any_io_executor ex() { return ioc_.get_executor(); }
  template <typename F>
  auto Run(F f) -> decltype(f()) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto fut = task.get_future();
    asio::post(ioc_, [&task] { task(); });
    if (fut.wait_for(kDeadline) != std::future_status::ready) std::abort();
    return fut.get();
  }

 private:
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
};

// A filter whose answer is a function of the head; asynchronous (posted) unless `inline_`.
class FakeFilter : public RequestFilter {
 public:
  explicit FakeFilter(asio::any_io_executor ex) : ex_(std::move(ex)) {}
  std::function<Decision(RequestHead&)> decide = [](RequestHead&) { return Decision{}; };
  bool inline_ = false;
  std::atomic<int> calls{0};
  void Decide(RequestHead& head, std::function<void(Decision)> done) override {
    ++calls;
    Decision d = decide(head);
    if (inline_) {
      done(std::move(d));
      return;
    }
    asio::post(ex_, [done = std::move(done), d = std::move(d)]() mutable { done(std::move(d)); });
  }

 private:
  asio::any_io_executor ex_;
};

// A decision function denying `path` with 403 `RBAC: access denied`, allowing the rest.
inline std::function<Decision(RequestHead&)> DenyPath(std::string path) {
  return [path = std::move(path)](RequestHead& h) {
    Decision d;
    if (h.path == path) {
      d.forward = false;
      d.status = 403;
      d.body = "RBAC: access denied";
    }
    return d;
  };
}

// Opens TCP connections to 127.0.0.1:port, counting them.
struct TcpOpener {
  asio::any_io_executor ex;
  uint16_t port;
  std::shared_ptr<std::atomic<int>> opened = std::make_shared<std::atomic<int>>(0);
  UpstreamOpener Get() {
    return [ex = ex, port = port, opened = opened](auto cb) {
      auto sock = std::make_shared<asio::ip::tcp::socket>(ex);
      sock->async_connect({asio::ip::make_address("127.0.0.1"), port},
                          [sock, cb = std::move(cb), opened](const asio::error_code& ec) {
                            if (ec) {
                              cb(absl::UnavailableError(ec.message()));
                              return;
                            }
                            ++*opened;
                            cb(hbone::TcpByteStream(std::move(*sock)));
                          });
    };
  }
};

struct Logs {
  std::mutex mu;
  std::vector<RequestLog> v;
  std::function<void(const RequestLog&)> Sink() {
    return [this](const RequestLog& l) {
      std::lock_guard lock(mu);
      v.push_back(l);
    };
  }
  std::vector<RequestLog> Get() {
    std::lock_guard lock(mu);
    return v;
  }
};

// The test's end of a pipe whose other end the engine serves. Blocking calls, each with a
// deadline.
class PipeClient {
 public:
  PipeClient(Worker& w, std::unique_ptr<hbone::ByteStream> end) : w_(w), end_(std::move(end)) {}
  ~PipeClient() {
    w_.Run([&] {
      end_->Close();
      return 0;
    });
  }
  // Writes everything (waits for room: back-pressure from the engine).
  bool Write(std::string_view data) {
    std::promise<bool> done;
    auto data_ptr = std::make_shared<std::string>(data);
    asio::post(w_.ex(), [this, data_ptr, &done] { WriteLoop(data_ptr, 0, &done); });
    auto f = done.get_future();
    return f.wait_for(kDeadline) == std::future_status::ready && f.get();
  }
  // Some bytes; "" at EOF; nullopt on reset or timeout.
  std::optional<std::string> Read(std::chrono::milliseconds deadline = kDeadline) {
    std::promise<std::optional<std::string>> p;
    auto fut = p.get_future();
    asio::post(w_.ex(), [this, &p] {
      buf_.resize(256 * 1024);
      end_->AsyncReadSome(asio::buffer(buf_), [this, &p](const asio::error_code& ec, size_t n) {
        if (ec == asio::error::eof) {
          p.set_value(std::string());
        } else if (ec) {
          p.set_value(std::nullopt);
        } else {
          p.set_value(std::string(buf_.data(), n));
        }
      });
    });
    if (fut.wait_for(deadline) != std::future_status::ready) {
      w_.Run([&] {
        end_->Close();  // completes the read with operation_aborted
        return 0;
      });
      fut.wait();
      closed_ = true;
      return std::nullopt;
    }
    return fut.get();
  }
  // Everything until EOF (or reset/deadline: then `clean` is false).
  std::string ReadAll(bool* clean = nullptr) {
    std::string all;
    while (true) {
      auto r = Read();
      if (!r) {
        if (clean) *clean = false;
        return all;
      }
      if (r->empty()) {
        if (clean) *clean = true;
        return all;
      }
      all += *r;
    }
  }
  void ShutdownSend() {
    w_.Run([&] {
      end_->ShutdownSend();
      return 0;
    });
  }
  std::string pending;  // bytes read but not consumed by ReadResponse

 private:
  void WriteLoop(std::shared_ptr<std::string> data, size_t off, std::promise<bool>* done) {
    if (off == data->size()) {
      done->set_value(true);
      return;
    }
    end_->AsyncWriteSome({asio::buffer(data->data() + off, data->size() - off)},
                         [this, data, off, done](const asio::error_code& ec, size_t n) {
                           if (ec) {
                             done->set_value(false);
                             return;
                           }
                           WriteLoop(data, off + n, done);
                         });
  }
  Worker& w_;
  std::unique_ptr<hbone::ByteStream> end_;
  std::vector<char> buf_;
  bool closed_ = false;
};

struct Response {
  bool complete = false;  // a whole response was read
  bool eof = false;       // the connection ended (after the response, or instead of it)
  int status = 0;
  std::vector<HttpHeader> headers;
  std::string body;
  std::vector<HttpHeader> trailers;
  bool keep_alive = false;
  std::string Header(std::string_view name) const {
    for (const auto& h : headers) {
      if (strcasecmp(h.name.c_str(), std::string(name).c_str()) == 0) return h.value;
    }
    return "";
  }
};

// Reads one HTTP/1.x response (client side), with http_parser.
inline Response ReadResponse(PipeClient& c, bool head_request = false) {
  struct Ctx {
    Response r;
    bool done = false;
    bool head = false;
    bool trailers = false;
    bool last_field = false;
  } ctx;
  ctx.head = head_request;
  http_parser p;
  http_parser_init(&p, HTTP_RESPONSE);
  p.data = &ctx;
  http_parser_settings s{};
  s.on_header_field = [](http_parser* p, const char* a, size_t n) {
    auto* c = static_cast<Ctx*>(p->data);
    auto& list = c->trailers ? c->r.trailers : c->r.headers;
    if (!c->last_field) list.push_back({});
    list.back().name.append(a, n);
    c->last_field = true;
    return 0;
  };
  s.on_header_value = [](http_parser* p, const char* a, size_t n) {
    auto* c = static_cast<Ctx*>(p->data);
    auto& list = c->trailers ? c->r.trailers : c->r.headers;
    list.back().value.append(a, n);
    c->last_field = false;
    return 0;
  };
  s.on_headers_complete = [](http_parser* p) {
    auto* c = static_cast<Ctx*>(p->data);
    if (p->status_code / 100 == 1) {
      c->r.headers.clear();
      return 0;
    }
    c->r.status = p->status_code;
    c->r.keep_alive = http_should_keep_alive(p);
    c->trailers = true;
    c->last_field = false;
    return c->head ? 1 : 0;
  };
  s.on_body = [](http_parser* p, const char* a, size_t n) {
    static_cast<Ctx*>(p->data)->r.body.append(a, n);
    return 0;
  };
  s.on_message_complete = [](http_parser* p) {
    auto* c = static_cast<Ctx*>(p->data);
    if (c->r.status == 0) return 0;  // interim
    c->done = true;
    c->r.complete = true;
    http_parser_pause(p, 1);
    return 0;
  };
  auto feed = [&](std::string& data) {
    size_t n = http_parser_execute(&p, &s, data.data(), data.size());
    if (HTTP_PARSER_ERRNO(&p) != HPE_OK && HTTP_PARSER_ERRNO(&p) != HPE_PAUSED) {
      ADD_FAILURE() << "client parser: " << http_errno_name(HTTP_PARSER_ERRNO(&p)) << " after " << n
                    << " in [" << data.substr(0, 200) << "]";
      ctx.done = true;
    }
    data.erase(0, n);
  };
  if (!c.pending.empty()) feed(c.pending);
  while (!ctx.done) {
    auto r = c.Read();
    if (!r || r->empty()) {
      ctx.r.eof = true;
      if (r) http_parser_execute(&p, &s, nullptr, 0);  // close-delimited bodies end here
      break;
    }
    c.pending += *r;
    feed(c.pending);
  }
  return ctx.r;
}

// The engine serving one end of a pipe; the other end is the test's client.
struct Served {
  std::unique_ptr<PipeClient> client;
};
inline std::unique_ptr<PipeClient> ServePipe(Worker& w, UpstreamOpener open,
                                             std::shared_ptr<RequestFilter> filter,
                                             HttpOptions options,
                                             std::function<void(const RequestLog&)> sink,
                                             size_t pipe_capacity = 256 * 1024) {
  auto ends = w.Run([&] {
    auto [a, b] = hbone::MakePipe(w.ex(), pipe_capacity);
    ServeHttp(std::move(a), std::move(open), std::move(filter), options, std::move(sink));
    return std::move(b);
  });
  return std::make_unique<PipeClient>(w, std::move(ends));
}

// A TCP listener on 127.0.0.1 whose connections are served by the engine (for curl, nghttp).
class Listener {
 public:
  Listener(Worker& w, std::function<void(std::unique_ptr<hbone::ByteStream>)> serve)
      : acceptor_(w.ioc()), serve_(std::move(serve)) {
    w.Run([&] {
      asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
      acceptor_.open(ep.protocol());
      acceptor_.set_option(asio::socket_base::reuse_address(true));
      acceptor_.bind(ep);
      acceptor_.listen();
      port_ = acceptor_.local_endpoint().port();
      Accept();
      return 0;
    });
    w_ = &w;
  }
  ~Listener() {
    w_->Run([&] {
      acceptor_.close();
      return 0;
    });
  }
  uint16_t port() const { return port_; }

 private:
  void Accept() {
    acceptor_.async_accept([this](const asio::error_code& ec, asio::ip::tcp::socket s) {
      if (ec) return;
      serve_(hbone::TcpByteStream(std::move(s)));
      Accept();
    });
  }
  asio::ip::tcp::acceptor acceptor_;
  std::function<void(std::unique_ptr<hbone::ByteStream>)> serve_;
  uint16_t port_ = 0;
  Worker* w_ = nullptr;
};

// Runs a shell command, returns its stdout (stderr to the test's stderr).
inline std::string RunCommand(const std::string& cmd, int* status = nullptr) {
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  int rc = ::pclose(f);
  if (status) *status = rc;
  return out;
}

}  // namespace zm::waypoint::testing
