#include "agent/admin.h"

#include <nlohmann/json.hpp>

#include "common/base/strings.h"

namespace zm::agent {

http::HttpResponse HandleAdmin(const AgentView& view, std::string_view method, std::string_view path) {
  if (method != "GET") return {.status = 405, .body = "only GET\n"};
  if (path == "/healthz/ready") {
    if (view.ready) return {.status = 200, .body = "ready\n"};
    std::string body = "not ready; pending:\n";
    for (const auto& t : view.pending_tasks) body += StrCat("  ", t, "\n");
    return {.status = 503, .body = body};
  }
  if (path == "/metrics") {
    size_t enrolled = 0, pending = 0;
    for (const auto& p : view.pods) (p.enrolled ? enrolled : pending)++;
    std::string out;
    out += "# HELP zmesh_agent_enrolled_pods Pods of this node whose traffic is captured.\n";
    out += "# TYPE zmesh_agent_enrolled_pods gauge\n";
    out += StrCat("zmesh_agent_enrolled_pods ", enrolled, "\n");
    out += "# HELP zmesh_agent_pending_pods Pods that should be enrolled but are not yet.\n";
    out += "# TYPE zmesh_agent_pending_pods gauge\n";
    out += StrCat("zmesh_agent_pending_pods ", pending, "\n");
    out += "# HELP zmesh_agent_manifest_errors Objects or files rejected in the manifests.\n";
    out += "# TYPE zmesh_agent_manifest_errors gauge\n";
    out += StrCat("zmesh_agent_manifest_errors ", view.manifest_errors, "\n");
    out += "# HELP zmesh_agent_ztunnel_connected 1 when a ztunnel is connected over ZDS.\n";
    out += "# TYPE zmesh_agent_ztunnel_connected gauge\n";
    out += StrCat("zmesh_agent_ztunnel_connected ", view.ztunnel_connected ? 1 : 0, "\n");
    out += "# HELP zmesh_agent_cni_adds_waiting CNI ADDs waiting for their pod's enrollment.\n";
    out += "# TYPE zmesh_agent_cni_adds_waiting gauge\n";
    out += StrCat("zmesh_agent_cni_adds_waiting ", view.cni_waiting, "\n");
    out += "# HELP zmesh_agent_reconciles_total Reconciliations of the node's pods.\n";
    out += "# TYPE zmesh_agent_reconciles_total counter\n";
    out += StrCat("zmesh_agent_reconciles_total ", view.reconciles, "\n");
    return {.status = 200, .body = out, .content_type = "text/plain; version=0.0.4"};
  }
  if (path == "/pods") {
    nlohmann::json pods = nlohmann::json::array();
    for (const auto& p : view.pods) {
      pods.push_back({{"pod", p.pod}, {"uid", p.uid}, {"enrolled", p.enrolled},
                      {"error", p.error}});
    }
    return {.status = 200, .body = nlohmann::json{{"pods", pods}}.dump(2) + "\n",
            .content_type = "application/json"};
  }
  return {.status = 404, .body = "not found\n"};
}

}  // namespace zm::agent
