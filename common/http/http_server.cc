#include "common/http/http_server.h"

#include <chrono>

#include "common/base/log.h"
#include "common/base/strings.h"
#include "common/http/asio_util.h"

namespace zm::http {
namespace {

std::string_view Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < 'A' || c > 'Z') return false;
  }
  return true;
}

// Parses "METHOD /path HTTP/1.x"; false when malformed.
bool ParseRequestLine(std::string_view line, std::string_view* method, std::string_view* path) {
  size_t a = line.find(' ');
  if (a == std::string_view::npos) return false;
  size_t b = line.find(' ', a + 1);
  if (b == std::string_view::npos || line.find(' ', b + 1) != std::string_view::npos) {
    return false;
  }
  *method = line.substr(0, a);
  *path = line.substr(a + 1, b - a - 1);
  std::string_view version = line.substr(b + 1);
  if (!IsToken(*method) || path->empty() || path->front() != '/') return false;
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return false;
  for (char c : *path) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  }
  return true;
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(asio::ip::tcp::socket sock, std::shared_ptr<const HttpHandler> handler)
      : sock_(std::move(sock)),
        timer_(sock_.get_executor()),
        buf_(HttpServer::kMaxRequestBytes),
        handler_(std::move(handler)) {}

  void Start() {
    timer_.expires_after(std::chrono::seconds(10));
    timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (!ec) {
        asio::error_code ignored;
        self->sock_.close(ignored);
      }
    });
    asio::async_read_until(
        sock_, buf_, "\r\n\r\n",
        [self = shared_from_this()](const asio::error_code& ec, size_t n) { self->OnRead(ec, n); });
  }

 private:
  void OnRead(const asio::error_code& ec, size_t n) {
    if (ec) {
      // Too long, or the client stopped before a full head: answer 400 if it sent anything.
      if (ec == asio::error::not_found || (buf_.size() > 0 && sock_.is_open())) {
        Respond({.status = 400, .body = "bad request\n"});
      } else {
        Close();
      }
      return;
    }
    std::string head(asio::buffers_begin(buf_.data()), asio::buffers_begin(buf_.data()) + n);
    std::string_view line(head);
    line = line.substr(0, line.find("\r\n"));
    std::string_view method, path;
    if (!ParseRequestLine(line, &method, &path)) {
      Respond({.status = 400, .body = "bad request\n"});
      return;
    }
    path = path.substr(0, path.find('?'));
    Respond((*handler_)(method, path));
  }

  void Respond(HttpResponse r) {
    out_ =
        StrCat("HTTP/1.1 ", r.status, " ", Reason(r.status), "\r\nContent-Type: ", r.content_type,
               "\r\nContent-Length: ", r.body.size(), "\r\nConnection: close\r\n\r\n", r.body);
    asio::async_write(sock_, asio::buffer(out_),
                      [self = shared_from_this()](const asio::error_code& ec, size_t) {
                        if (ec) {
                          self->Close();
                          return;
                        }
                        // Lingering close: FIN first, then discard what the client still
                        // sends until its EOF, so unread bytes do not turn our close into a
                        // RST that could destroy the response (the 10 s timer bounds this).
                        asio::error_code ignored;
                        self->sock_.shutdown(asio::socket_base::shutdown_send, ignored);
                        self->Drain();
                      });
  }

  void Drain() {
    sock_.async_read_some(asio::buffer(drain_),
                          [self = shared_from_this()](const asio::error_code& ec, size_t) {
                            if (ec) {
                              self->Close();
                            } else {
                              self->Drain();
                            }
                          });
  }

  void Close() {
    asio::error_code ignored;
    sock_.shutdown(asio::socket_base::shutdown_both, ignored);
    sock_.close(ignored);
    timer_.cancel();
  }

  asio::ip::tcp::socket sock_;
  asio::steady_timer timer_;
  asio::streambuf buf_;
  std::shared_ptr<const HttpHandler> handler_;
  std::string out_;
  char drain_[4096];
};

}  // namespace

HttpServer::HttpServer(asio::io_context& ctx, HttpHandler handler)
    : handler_(std::make_shared<const HttpHandler>(std::move(handler))),
      acceptor_(ctx),
      retry_(ctx) {}

HttpServer::~HttpServer() = default;

absl::StatusOr<uint16_t> HttpServer::Listen(const Endpoint& addr) {
  asio::error_code ec;
  auto ep = ToAsio(addr);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    asio::error_code ignored;
    acceptor_.close(ignored);
    return absl::UnavailableError(
        StrCat("admin listener on ", addr.ToString(), ": ", ec.message()));
  }
  uint16_t port = acceptor_.local_endpoint(ec).port();
  Accept();
  return port;
}

void HttpServer::Stop() {
  asio::error_code ignored;
  acceptor_.close(ignored);
  retry_.cancel();
}

void HttpServer::Accept() {
  acceptor_.async_accept([this](const asio::error_code& ec, asio::ip::tcp::socket sock) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      std::make_shared<Session>(std::move(sock), handler_)->Start();
      Accept();
      return;
    }
    // EMFILE and friends: retry shortly instead of spinning.
    Log("admin").warn("metrics accept: {}", ec.message());
    retry_.expires_after(std::chrono::milliseconds(100));
    retry_.async_wait([this](const asio::error_code& ec) {
      if (!ec && acceptor_.is_open()) Accept();
    });
  });
}

}  // namespace zm::http
