#include "ztunnel/admin.h"

#include <nlohmann/json.hpp>

#include "common/base/strings.h"
#include "ztunnel/identity/cert_manager.h"
#include "ztunnel/metrics.h"

namespace zm::ztunnel {
namespace {

std::string Rfc3339(std::chrono::system_clock::time_point t) {
  if (t.time_since_epoch().count() == 0) return "";
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

std::string CertsJson(const CertManager& certs) {
  nlohmann::json out = nlohmann::json::array();
  for (const CertStatus& c : certs.Status()) {
    out.push_back({{"identity", c.identity},
                   {"refs", c.refs},
                   {"has_cert", c.has_cert},
                   {"not_after", Rfc3339(c.not_after)},
                   {"next_refresh", Rfc3339(c.next_attempt)},
                   {"failures", c.failures},
                   {"last_error", c.last_error}});
  }
  return out.dump(2) + "\n";
}

http::HttpHandler AdminHandler(const Metrics& metrics, const Readiness& readiness,
                               const CertManager* certs) {
  return [&metrics, &readiness, certs](std::string_view method, std::string_view path) {
    const bool known = path == "/metrics" || path == "/healthz/ready" ||
                       (certs != nullptr && path == "/debug/certs");
    if (!known) return http::HttpResponse{.status = 404, .body = "not found\n"};
    if (method != "GET") return http::HttpResponse{.status = 405, .body = "method not allowed\n"};
    if (path == "/metrics") {
      return http::HttpResponse{.status = 200,
                                .body = metrics.Render(),
                                .content_type = "text/plain; version=0.0.4; charset=utf-8"};
    }
    if (path == "/debug/certs") {
      return http::HttpResponse{
          .status = 200, .body = CertsJson(*certs), .content_type = "application/json"};
    }
    if (readiness.Ready()) return http::HttpResponse{.status = 200, .body = "ready\n"};
    std::string body = "not ready; pending:";
    for (const auto& task : readiness.Pending()) body += StrCat(" ", task);
    body += "\n";
    return http::HttpResponse{.status = 503, .body = body};
  };
}

}  // namespace zm::ztunnel
