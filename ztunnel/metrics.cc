#include "ztunnel/metrics.h"

#include "common/base/strings.h"

namespace zm::ztunnel {
namespace {

std::string Escape(std::string_view v) {
  if (v.empty()) return "unknown";
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string LabelText(const TcpLabels& l) {
  return StrCat("reporter=\"", l.direction == Direction::kOutbound ? "source" : "destination",
                "\",source_workload=\"", Escape(l.source_workload),
                "\",source_workload_namespace=\"", Escape(l.source_namespace),
                "\",destination_workload=\"", Escape(l.destination_workload),
                "\",destination_workload_namespace=\"", Escape(l.destination_namespace), "\"");
}

}  // namespace

std::string_view FailureName(FailureReason r) {
  switch (r) {
    case FailureReason::kNoOrigDst:
      return "no-orig-dst";
    case FailureReason::kLoopGuard:
      return "loop-guard";
    case FailureReason::kConnectRefused:
      return "connect-refused";
    case FailureReason::kConnectTimeout:
      return "connect-timeout";
    case FailureReason::kConnectError:
      return "connect-error";
    case FailureReason::kUpstreamSocket:
      return "upstream-socket";
    case FailureReason::kNoConfig:
      return "no-config";
    case FailureReason::kNoEndpoint:
      return "no-endpoint";
    case FailureReason::kHboneConnect:
      return "hbone-connect";
    case FailureReason::kHboneRejected:
      return "hbone-rejected";
    case FailureReason::kMtlsRequired:
      return "mtls-required";
    case FailureReason::kPolicyDenied:
      return "policy-denied";
    case FailureReason::kCount:
      break;
  }
  return "unknown";
}

std::string_view DirectionName(Direction d) {
  return d == Direction::kOutbound ? "outbound" : "inbound";
}

std::shared_ptr<TcpSeries> Metrics::Tcp(const TcpLabels& labels) {
  std::lock_guard lock(mu_);
  auto& slot = tcp_[labels];
  if (!slot) slot = std::make_shared<TcpSeries>();
  return slot;
}

void Metrics::CountDenial(const DenialLabels& labels) {
  std::lock_guard lock(mu_);
  ++denials_[labels];
}

uint64_t Metrics::Denials(const DenialLabels& labels) const {
  std::lock_guard lock(mu_);
  auto it = denials_.find(labels);
  return it == denials_.end() ? 0 : it->second;
}

std::string Metrics::Render() const {
  std::string out;
  struct Family {
    const char* name;
    const char* help;
    std::atomic<uint64_t> TcpSeries::*field;
  };
  static constexpr Family kFamilies[] = {
      {"istio_tcp_connections_opened_total", "Connections opened.", &TcpSeries::opened},
      {"istio_tcp_connections_closed_total", "Connections closed.", &TcpSeries::closed},
      {"istio_tcp_sent_bytes_total", "Bytes sent by the client towards the server.",
       &TcpSeries::sent_bytes},
      {"istio_tcp_received_bytes_total", "Bytes received by the client from the server.",
       &TcpSeries::received_bytes},
  };
  {
    std::lock_guard lock(mu_);
    for (const Family& f : kFamilies) {
      out += StrCat("# HELP ", f.name, " ", f.help, "\n# TYPE ", f.name, " counter\n");
      for (const auto& [labels, series] : tcp_) {
        out += StrCat(f.name, "{", LabelText(labels), "} ",
                      (series.get()->*f.field).load(std::memory_order_relaxed), "\n");
      }
    }
    out +=
        "# HELP zmesh_authorization_denials_total Connections denied by AuthorizationPolicy "
        "(policy=\"unknown\": no ALLOW policy matched).\n"
        "# TYPE zmesh_authorization_denials_total counter\n";
    for (const auto& [l, n] : denials_) {
      out += StrCat("zmesh_authorization_denials_total{hop=\"ztunnel\",policy=\"", Escape(l.policy),
                    "\",destination_workload=\"", Escape(l.destination_workload),
                    "\",destination_workload_namespace=\"", Escape(l.destination_namespace), "\"} ",
                    n, "\n");
    }
  }
  out +=
      "# HELP zmesh_ztunnel_connection_failures_total Connections ztunnel could not proxy.\n"
      "# TYPE zmesh_ztunnel_connection_failures_total counter\n";
  for (size_t i = 0; i < failures_.size(); ++i) {
    out += StrCat("zmesh_ztunnel_connection_failures_total{reason=\"",
                  FailureName(static_cast<FailureReason>(i)), "\"} ",
                  failures_[i].load(std::memory_order_relaxed), "\n");
  }
  out += StrCat(
      "# HELP zmesh_ztunnel_workloads Workloads (pods) ztunnel has listeners for.\n"
      "# TYPE zmesh_ztunnel_workloads gauge\nzmesh_ztunnel_workloads ",
      workloads_.load(std::memory_order_relaxed), "\n");
  out += StrCat(
      "# HELP zmesh_ztunnel_connections_in_flight Connections accepted and not yet ended.\n"
      "# TYPE zmesh_ztunnel_connections_in_flight gauge\nzmesh_ztunnel_connections_in_flight ",
      in_flight_.load(std::memory_order_relaxed), "\n");
  return out;
}

void Readiness::AddPending(std::string task) {
  std::lock_guard lock(mu_);
  pending_.insert(std::move(task));
}

void Readiness::Done(const std::string& task) {
  std::lock_guard lock(mu_);
  pending_.erase(task);
}

bool Readiness::Ready() const {
  std::lock_guard lock(mu_);
  return pending_.empty();
}

std::set<std::string> Readiness::Pending() const {
  std::lock_guard lock(mu_);
  return pending_;
}

}  // namespace zm::ztunnel
