// ztunnel: the per-node L4 proxy of zmesh. Thin main: flags, threads,
// signals. See ztunnel/README.md.

#include <CLI/CLI.hpp>
#include <asio.hpp>
#include <csignal>
#include <iostream>
#include <string>

#include "common/base/log.h"
#include "common/base/strings.h"
#include "common/config/config_client.h"
#include "common/http/http_server.h"
#include "ztunnel/admin.h"
#include "ztunnel/authorizer.h"
#include "ztunnel/identity/ca_client.h"
#include "ztunnel/identity/cert_manager.h"
#include "ztunnel/inbound_hbone.h"
#include "ztunnel/mesh_state.h"
#include "ztunnel/metrics.h"
#include "ztunnel/outbound_hbone.h"
#include "ztunnel/proxy.h"
#include "ztunnel/workers.h"
#include "ztunnel/workload_identities.h"
#include "ztunnel/workload_manager.h"
#include "ztunnel/zds_client.h"

int main(int argc, char** argv) {
  using namespace zm::ztunnel;
  CLI::App app{"zmesh ztunnel: per-node L4 proxy"};
  std::string node;
  std::string zds_socket;
  size_t workers_n = 2;
  std::string metrics_addr = "127.0.0.1:15020";
  std::string log_level = "info";
  std::string log_format = "text";
  std::string ca_address;
  std::string config_address;
  std::string trust_domain = "cluster.local";
  std::string root_namespace(zm::mesh::kDefaultRootNamespace);
  std::string ca_root_cert;
  std::string ca_token_file;
  app.add_option("--node", node, "Kubernetes node name")->required();
  app.add_option("--root-namespace", root_namespace,
                 "namespace whose selector-less PeerAuthentication is mesh-wide")
      ->capture_default_str();
  app.add_option("--ca-address", ca_address,
                 "gRPC target of the CA (default unix:/var/run/zmesh/<node>/ca.sock)");
  app.add_option("--ca-root-cert", ca_root_cert,
                 "PEM mesh root the CA must chain to (TLS); required unless --ca-address is unix:");
  app.add_option("--ca-token-file", ca_token_file,
                 "file sent as `authorization: Bearer <content>` to the CA, re-read on every call");
  app.add_option("--trust-domain", trust_domain)->capture_default_str();
  app.add_option("--config-address", config_address,
                 "gRPC target of the agent's config stream (default "
                 "unix:/var/run/zmesh/<node>/config.sock)");
  app.add_option("--zds-socket", zds_socket,
                 "agent's ZDS socket (default /var/run/zmesh/<node>/zds.sock)");
  app.add_option("--workers", workers_n, "worker threads")->check(CLI::Range(1, 256));
  app.add_option("--metrics-addr", metrics_addr, "HOST:PORT of /metrics and /healthz/ready");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|critical|off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--log-format", log_format, "text|json")->check(CLI::IsMember({"text", "json"}));
  CLI11_PARSE(app, argc, argv);
  if (zds_socket.empty()) zds_socket = zm::StrCat("/var/run/zmesh/", node, "/zds.sock");
  if (ca_address.empty()) ca_address = zm::StrCat("unix:/var/run/zmesh/", node, "/ca.sock");
  if (config_address.empty()) {
    config_address = zm::StrCat("unix:/var/run/zmesh/", node, "/config.sock");
  }

  zm::ConfigureLogging(log_level,
                       log_format == "json" ? zm::LogFormat::kJson : zm::LogFormat::kText);
  auto metrics_ep = zm::Endpoint::Parse(metrics_addr);
  if (!metrics_ep.ok()) {
    std::cerr << "--metrics-addr: " << metrics_ep.status().message() << "\n";
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);

  // Control thread = this thread: ZDS client, metrics/readiness HTTP, signals.
  asio::io_context control(1);
  Metrics metrics;
  Readiness readiness;
  Workers workers(workers_n);
  Proxy proxy(ProxyConfig{}, metrics);
  WorkloadManager manager(workers, proxy, metrics, readiness);
  // Certificates for the identities of the pods served, from the CA, on a thread of their own.
  GrpcCaClient ca(ca_address, {.root_cert_file = ca_root_cert, .token_file = ca_token_file});
  if (!ca.status().ok()) {
    zm::Log("ztunnel").critical("{}", ca.status().message());
    workers.Stop();
    return 2;
  }
  CertManager certs(ca, zm::SystemClock::Get(), {.trust_domain = trust_domain});
  certs.Start();
  WorkloadIdentities identities(manager, certs, trust_domain);
  // The mesh from the agent: full snapshot, then deltas, swapped atomically. Outbound routing
  // and PeerAuthentication read it; until the first snapshot both fail closed and ztunnel is
  // not ready.
  MeshState mesh(root_namespace);
  // Inbound authorization; every new view re-checks the live connections (closing those the
  // new policy denies).
  Authorizer authorizer(mesh, metrics);
  static constexpr const char* kConfigTask = "config-snapshot";
  readiness.AddPending(kConfigTask);
  std::vector<std::string> last_policy_warnings;  // config thread only
  zm::config::ConfigClient config(
      {.target = config_address, .node = node, .client_name = "ztunnel"},
      [&mesh, &readiness, &authorizer,
       &last_policy_warnings](const zm::config::ConfigClient::Update& u) {
        mesh.Update(u.snapshot);
        readiness.Done(kConfigTask);
        auto view = mesh.Current();
        zm::Log("config").info(
            "mesh version {} ({}): {} workloads, {} services, {} peer authentications, {} "
            "authorization policies ({} rejected), default policy {}",
            u.version, u.full ? "full" : "delta", u.snapshot->workloads.size(),
            u.snapshot->services.size(), u.snapshot->peer_authentications.size(),
            u.snapshot->authorization_policies.size(),
            u.snapshot->rejected_authorization_policies.size(),
            u.snapshot->default_policy == zm::mesh::DefaultPolicy::kZeroTrust ? "zero-trust"
                                                                              : "upstream");
        if (view && view->policies().warnings() != last_policy_warnings) {
          last_policy_warnings = view->policies().warnings();
          for (const std::string& w : last_policy_warnings) zm::Log("authz").warn("{}", w);
        }
        authorizer.Recheck();
      });
  // Both HBONE ends present the pod's own certificate from the certificate manager.
  HboneCredentialSource credentials{
      .get = [&certs](const zm::tls::SpiffeId& id) { return certs.Get(id); },
      .roots = [&certs] { return certs.RootPems(); }};
  InboundHbone hbone(proxy, credentials, {.trust_domain = trust_domain});
  hbone.Install();
  OutboundHbone outbound(proxy, mesh, credentials, {.trust_domain = trust_domain});
  for (size_t i = 0; i < workers.size(); ++i) outbound.AddWorker(workers.ctx(i));
  outbound.Install();
  proxy.SetMesh(&mesh);
  proxy.SetAuthorizer(&authorizer);
  config.Start();
  ZdsClient zds(control, {.socket_path = zds_socket}, identities);
  zm::http::HttpServer http(control, AdminHandler(metrics, readiness, &certs));
  auto port = http.Listen(*metrics_ep);
  if (!port.ok()) {
    zm::Log("ztunnel").critical("{}", port.status().message());
    config.Stop();
    workers.Stop();  // before the pools go
    return 1;
  }

  asio::signal_set signals(control, SIGTERM, SIGINT);
  signals.async_wait([&](const asio::error_code& ec, int sig) {
    if (ec) return;
    zm::Log("ztunnel").info("signal {}: closing listeners and exiting", sig);
    zds.Stop();
    config.Stop();
    http.Stop();
    manager.CloseAll();  // stop accepting; listeners closed, the agent's dups stay usable
    workers.Stop();
    control.stop();
  });

  zm::Log("ztunnel").info("node={} zds={} workers={} metrics={}", node, zds_socket, workers.size(),
                          metrics_ep->ToString());
  zds.Start();
  control.run();
  return 0;
}
