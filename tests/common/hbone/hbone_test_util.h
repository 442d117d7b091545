#pragma once
// In-process HBONE harness for the tests: one io_context on a thread (the "worker"), an HBONE
// server on 127.0.0.1:0 whose default OnConnect dials the :authority, a blocking upstream
// listener, and a blocking "app" side, so each test sees app <-> client session <-> server
// session <-> upstream. Every wait has a deadline; nothing sleeps.

#include <fcntl.h>
#include <gtest/gtest.h>

#include <asio.hpp>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/base/strings.h"
#include "common/http/asio_util.h"
#include "tests/ztunnel/test_helpers.h"
#include "common/hbone/client_session.h"
#include "common/hbone/server_session.h"

namespace zm::hbone::testing {

using namespace std::chrono_literals;
using asio::ip::tcp;
using zm::ztunnel::testing::AcceptWithin;
using zm::ztunnel::testing::Connect4;
using zm::ztunnel::testing::kDeadline;
using zm::ztunnel::testing::Listen4;
using zm::ztunnel::testing::LocalPort;
using zm::ztunnel::testing::ReadResult;
using zm::ztunnel::testing::ReadUntilEnd;
using zm::ztunnel::testing::SendAll;
using zm::ztunnel::testing::WaitFor;

inline constexpr char kPeerIdentity[] = "spiffe://cluster.local/ns/test/sa/client";

// Deterministic content: byte i of a stream seeded with `seed`.
inline std::string Pattern(size_t size, uint32_t seed, size_t offset = 0) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) {
    uint64_t x = (offset + i) * 2654435761u + seed;
    s[i] = static_cast<char>((x >> 13) ^ (x >> 5));
  }
  return s;
}

struct OpenResult {
  absl::StatusOr<int> status = absl::UnknownError("no answer");
  std::shared_ptr<HboneStream> stream;
};

// A stream relayed end to end: `app` is the captured client's socket, `upstream` the
// destination's accepted socket.
struct Tunnel {
  Fd app;
  Fd upstream;
  std::shared_ptr<HboneStream> stream;
  std::shared_future<StreamResult> client_done;
};

class HboneHarness {
 public:
  HboneHarness() : guard_(asio::make_work_guard(ioc_)), acceptor_(ioc_) {}
  ~HboneHarness() { Stop(); }

  void StartServer(SessionOptions options = {}) {
    server_options_ = options;
    upstream_listener_ = Listen4(128);
    local_listener_ = Listen4(128);
    thread_ = std::thread([this] { ioc_.run(); });
    Run([&] {
      tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
      acceptor_.open(ep.protocol());
      acceptor_.bind(ep);
      acceptor_.listen();
      server_port_ = acceptor_.local_endpoint().port();
      AcceptLoop();
      return 0;
    });
  }

  void Stop() {
    if (!thread_.joinable()) return;
    Run([&] {
      asio::error_code ignored;
      acceptor_.close(ignored);
      for (auto& s : server_sessions_) s->Close("test over");
      for (auto& c : clients_) c->Close("test over");
      return 0;
    });
    guard_.reset();
    ioc_.stop();
    thread_.join();
  }

  // Runs `f` on the worker and returns its result.
  template <typename F>
  auto Run(F f) -> decltype(f()) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto fut = task.get_future();
    asio::post(ioc_, [&task] { task(); });
    if (fut.wait_for(kDeadline) != std::future_status::ready) {
      ADD_FAILURE() << "worker did not answer in time";
      std::abort();
    }
    return fut.get();
  }

  std::shared_ptr<HboneClientSession> NewClient(SessionOptions options = {}) {
    auto c = Run([&] {
      tcp::socket s(ioc_);
      s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_port_));
      auto c = HboneClientSession::Create(MakeTransport(std::move(s)), options);
      c->Start();
      return c;
    });
    clients_.push_back(c);
    return c;
  }

  std::future<OpenResult> OpenAsync(const std::shared_ptr<HboneClientSession>& c,
                                    std::string authority, std::vector<Header> headers = {}) {
    auto p = std::make_shared<std::promise<OpenResult>>();
    auto f = p->get_future();
    c->OpenStream(std::move(authority), std::move(headers),
                  [p](absl::StatusOr<int> status, std::shared_ptr<HboneStream> st) {
                    p->set_value(OpenResult{status, std::move(st)});
                  });
    return f;
  }

  static OpenResult Wait(std::future<OpenResult>& f) {
    if (f.wait_for(kDeadline) != std::future_status::ready) {
      return OpenResult{absl::DeadlineExceededError("no response in time"), nullptr};
    }
    return f.get();
  }

  OpenResult Open(const std::shared_ptr<HboneClientSession>& c, std::string authority,
                  std::vector<Header> headers = {}) {
    auto f = OpenAsync(c, std::move(authority), std::move(headers));
    return Wait(f);
  }

  OpenResult OpenRaw(const std::shared_ptr<HboneClientSession>& c, std::vector<Header> headers) {
    auto p = std::make_shared<std::promise<OpenResult>>();
    auto f = p->get_future();
    c->OpenRequest(std::move(headers),
                   [p](absl::StatusOr<int> status, std::shared_ptr<HboneStream> st) {
                     p->set_value(OpenResult{status, std::move(st)});
                   });
    return Wait(f);
  }

  std::string UpstreamAuthority() const {
    return zm::StrCat("127.0.0.1:", LocalPort(upstream_listener_.get()));
  }

  // Attaches an accepted app connection to `stream`; returns the app's end.
  Fd AttachApp(const std::shared_ptr<HboneStream>& stream, std::shared_future<StreamResult>* done) {
    Fd app = Connect4(LocalPort(local_listener_.get()));
    Fd local = AcceptWithin(local_listener_.get());
    auto p = std::make_shared<std::promise<StreamResult>>();
    *done = p->get_future().share();
    Run([&] {
      tcp::socket s(ioc_);
      s.assign(tcp::v4(), local.release());
      stream->Start(std::move(s), [p](const StreamResult& r) { p->set_value(r); });
      return 0;
    });
    return app;
  }

  Tunnel OpenTunnel(const std::shared_ptr<HboneClientSession>& c,
                    std::vector<Header> headers = {}) {
    Tunnel t;
    OpenResult r = Open(c, UpstreamAuthority(), std::move(headers));
    EXPECT_TRUE(r.status.ok() && *r.status == 200) << r.status.status();
    if (!r.stream) return t;
    t.stream = r.stream;
    t.upstream = AcceptWithin(upstream_listener_.get());
    t.app = AttachApp(r.stream, &t.client_done);
    return t;
  }

  // Server-side knobs and observations.
  using OnConnectFn = std::function<void(ConnectRequest, Responder)>;
  void SetOnConnect(OnConnectFn f) {
    std::lock_guard l(mu_);
    on_connect_ = std::move(f);
  }
  std::vector<ConnectRequest> requests() {
    std::lock_guard l(mu_);
    return requests_;
  }
  std::vector<StreamResult> server_results() {
    std::lock_guard l(mu_);
    return server_results_;
  }
  std::vector<std::string> closed_reasons() {
    std::lock_guard l(mu_);
    return closed_reasons_;
  }
  std::shared_ptr<HboneServerSession> server_session(size_t i) {
    return Run([&] { return i < server_sessions_.size() ? server_sessions_[i] : nullptr; });
  }
  size_t server_session_count() {
    return Run([&] { return server_sessions_.size(); });
  }

  // The default decision: dial the target; 503 when that fails, 200 once it succeeded.
  void DialAndAccept(const ConnectRequest& req, Responder r) {
    auto sock = std::make_shared<tcp::socket>(ioc_);
    sock->async_connect(ToAsio(req.target), [this, sock, r](const asio::error_code& ec) mutable {
      if (ec) {
        r.Reject(503);
        return;
      }
      r.Accept(std::move(*sock), [this](const StreamResult& res) {
        std::lock_guard l(mu_);
        server_results_.push_back(res);
      });
    });
  }

  asio::io_context& ioc() { return ioc_; }
  uint16_t server_port() const { return server_port_; }
  int upstream_listener() const { return upstream_listener_.get(); }
  int local_listener() const { return local_listener_.get(); }

 private:
  void AcceptLoop() {
    acceptor_.async_accept([this](const asio::error_code& ec, tcp::socket s) {
      if (ec) return;
      auto session =
          HboneServerSession::Create(MakeTransport(std::move(s)), kPeerIdentity, server_options_,
                                     [this](ConnectRequest req, Responder r) {
                                       OnConnectFn f;
                                       {
                                         std::lock_guard l(mu_);
                                         requests_.push_back(req);
                                         f = on_connect_;
                                       }
                                       if (f) {
                                         f(std::move(req), std::move(r));
                                       } else {
                                         DialAndAccept(req, std::move(r));
                                       }
                                     });
      session->SetOnClosed([this](const std::string& reason) {
        std::lock_guard l(mu_);
        closed_reasons_.push_back(reason);
      });
      session->Start();
      server_sessions_.push_back(session);
      AcceptLoop();
    });
  }

  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  uint16_t server_port_ = 0;
  SessionOptions server_options_;
  Fd upstream_listener_, local_listener_;
  std::vector<std::shared_ptr<HboneServerSession>> server_sessions_;  // worker only
  std::vector<std::shared_ptr<HboneClientSession>> clients_;
  std::mutex mu_;
  OnConnectFn on_connect_;
  std::vector<ConnectRequest> requests_;
  std::vector<StreamResult> server_results_;
  std::vector<std::string> closed_reasons_;
};

}  // namespace zm::hbone::testing
