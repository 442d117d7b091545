#pragma once
// ztunnel's metrics port routes: GET /metrics, GET /healthz/ready, GET /debug/certs (the
// certificate of every local workload identity, as JSON); 404 otherwise.

#include "common/http/http_server.h"

namespace zm::ztunnel {

class CertManager;
class Metrics;
class Readiness;

// `certs` may be null (no /debug/certs then).
http::HttpHandler AdminHandler(const Metrics& metrics, const Readiness& readiness,
                               const CertManager* certs = nullptr);

// The JSON of /debug/certs: [{"identity", "refs", "has_cert", "not_after", "next_refresh",
// "failures", "last_error"}], times in RFC 3339 UTC.
std::string CertsJson(const CertManager& certs);

}  // namespace zm::ztunnel
