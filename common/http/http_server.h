#pragma once
// A tiny HTTP/1.1 server on an asio io_context for admin endpoints (/metrics,
// /healthz/ready, ...), shared by ztunnel and the agent. One request per connection (Connection: close); malformed requests get a
// 400; nothing a client sends can crash it.

#include <asio.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/base/ip.h"

namespace zm::http {

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain; charset=utf-8";
};

using HttpHandler = std::function<HttpResponse(std::string_view method, std::string_view path)>;

class HttpServer {
 public:
  HttpServer(asio::io_context& ctx, HttpHandler handler);
  ~HttpServer();
  // Binds and starts accepting; returns the bound port (useful with port 0).
  absl::StatusOr<uint16_t> Listen(const Endpoint& addr);
  // Stops accepting; must run on the io_context's thread (or before it runs).
  void Stop();

  static constexpr size_t kMaxRequestBytes = 8192;

 private:
  void Accept();

  std::shared_ptr<const HttpHandler> handler_;
  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer retry_;
};

}  // namespace zm::http
