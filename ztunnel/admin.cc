#include "ztunnel/admin.h"

#include "common/base/strings.h"
#include "ztunnel/metrics.h"

namespace zm::ztunnel {

http::HttpHandler AdminHandler(const Metrics& metrics, const Readiness& readiness) {
  return [&metrics, &readiness](std::string_view method, std::string_view path) {
    const bool known = path == "/metrics" || path == "/healthz/ready";
    if (!known) return http::HttpResponse{.status = 404, .body = "not found\n"};
    if (method != "GET") return http::HttpResponse{.status = 405, .body = "method not allowed\n"};
    if (path == "/metrics") {
      return http::HttpResponse{.status = 200,
                          .body = metrics.Render(),
                          .content_type = "text/plain; version=0.0.4; charset=utf-8"};
    }
    if (readiness.Ready()) return http::HttpResponse{.status = 200, .body = "ready\n"};
    std::string body = "not ready; pending:";
    for (const auto& task : readiness.Pending()) body += StrCat(" ", task);
    body += "\n";
    return http::HttpResponse{.status = 503, .body = body};
  };
}

}  // namespace zm::ztunnel
