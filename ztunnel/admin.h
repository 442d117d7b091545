#pragma once
// ztunnel's metrics port routes: GET /metrics, GET /healthz/ready; 404 otherwise.

#include "common/http/http_server.h"

namespace zm::ztunnel {

class Metrics;
class Readiness;

http::HttpHandler AdminHandler(const Metrics& metrics, const Readiness& readiness);

}  // namespace zm::ztunnel
