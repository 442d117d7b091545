#include "waypoint/metrics.h"

#include "common/base/strings.h"

namespace zm::waypoint {

void Metrics::CountRequest(int status) {
  std::lock_guard lock(mu_);
  ++requests_[status];
}

void Metrics::CountDenial(const std::string& kind) {
  std::lock_guard lock(mu_);
  ++denials_[kind];
}

std::string Metrics::Render() const {
  std::string out;
  out += "# HELP istio_requests_total Requests the waypoint answered or forwarded.\n";
  out += "# TYPE istio_requests_total counter\n";
  std::lock_guard lock(mu_);
  for (const auto& [status, n] : requests_) {
    out += StrCat("istio_requests_total{reporter=\"waypoint\",response_code=\"", status, "\"} ",
                  n, "\n");
  }
  out += "# HELP zmesh_waypoint_denials_total Requests the waypoint refused, by reason.\n";
  out += "# TYPE zmesh_waypoint_denials_total counter\n";
  for (const auto& [kind, n] : denials_) {
    out += StrCat("zmesh_waypoint_denials_total{reason=\"", kind, "\"} ", n, "\n");
  }
  out += "# TYPE zmesh_waypoint_connections_total counter\n";
  out += StrCat("zmesh_waypoint_connections_total ", connections_total.load(), "\n");
  out += "# TYPE zmesh_waypoint_connections_open gauge\n";
  out += StrCat("zmesh_waypoint_connections_open ", connections_open.load(), "\n");
  out += "# TYPE zmesh_waypoint_streams_total counter\n";
  out += StrCat("zmesh_waypoint_streams_total ", streams_total.load(), "\n");
  out += "# TYPE zmesh_waypoint_streams_refused_total counter\n";
  out += StrCat("zmesh_waypoint_streams_refused_total ", streams_refused.load(), "\n");
  return out;
}

}  // namespace zm::waypoint
