#pragma once
// The agent's admin port (127.0.0.1:15030): readiness, metrics and the pods' enrollment.

#include <string_view>

#include "agent/agent.h"
#include "common/http/http_server.h"

namespace zm::agent {

// GET /healthz/ready: 200 "ready", or 503 naming the pending tasks and pods.
// GET /metrics: Prometheus text. GET /pods: JSON of every pod's enrollment.
http::HttpResponse HandleAdmin(const AgentView& view, std::string_view method, std::string_view path);

}  // namespace zm::agent
