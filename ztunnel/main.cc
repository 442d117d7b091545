// ztunnel: the per-node L4 proxy of zmesh. Thin main: flags, threads,
// signals. See ztunnel/README.md.

#include <CLI/CLI.hpp>
#include <asio.hpp>
#include <csignal>
#include <functional>
#include <mutex>
#include <iostream>
#include <string>

#include "common/base/log.h"
#include "common/base/strings.h"
#include "common/config/config_client.h"
#include "common/base/ready_file.h"
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
  std::string ready_file_path;
  int drain_seconds = 20;
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
  app.add_option("--ready-file", ready_file_path,
                 "file that exists while ztunnel is ready (for an exec readiness probe)");
  app.add_option("--drain-seconds", drain_seconds,
                 "on SIGTERM, how long connections in flight may take to finish")
      ->check(CLI::Range(0, 3600))
      ->capture_default_str();
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
  // Pods (ZDS) only once the mesh is known: a listener that joins an old ztunnel's
  // SO_REUSEPORT group (a surge upgrade) takes connections at once and could route none.
  std::function<void()> on_first_config;
  std::once_flag first_config;
  zm::config::ConfigClient config(
      {.target = config_address, .node = node, .client_name = "ztunnel"},
      [&mesh, &readiness, &authorizer, &last_policy_warnings, &on_first_config,
       &first_config](const zm::config::ConfigClient::Update& u) {
        mesh.Update(u.snapshot);
        readiness.Done(kConfigTask);
        std::call_once(first_config, [&] { on_first_config(); });
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
  ZdsClient zds(control, {.socket_path = zds_socket}, identities);
  zm::http::HttpServer http(control, AdminHandler(metrics, readiness, &certs));
  // The metrics port may still be held by a predecessor that is draining on this node (a
  // surge upgrade: both run in the node's network namespace): retry until it lets go.
  asio::steady_timer metrics_retry(control);
  int metrics_attempts = 0;
  std::function<void()> listen_metrics = [&] {
    auto port = http.Listen(*metrics_ep);
    if (port.ok()) {
      if (metrics_attempts > 0) {
        zm::Log("ztunnel").info("metrics: listening on {} after {} retries",
                                metrics_ep->ToString(), metrics_attempts);
      }
      return;
    }
    if (metrics_attempts % 30 == 0) {
      zm::Log("ztunnel").warn("metrics: {}; retrying every second (a draining ztunnel of the "
                              "previous version may still hold it)",
                              port.status().message());
    }
    ++metrics_attempts;
    metrics_retry.expires_after(std::chrono::seconds(1));
    metrics_retry.async_wait([&](const asio::error_code& ec) {
      if (!ec) listen_metrics();
    });
  };
  listen_metrics();

  zm::ReadyFile ready_file(ready_file_path);
  ready_file.Follow([&readiness] { return readiness.Ready(); });

  // SIGTERM: drain (DESIGN §5). Stop accepting at once: with SO_REUSEPORT a successor's
  // listeners in the same pod netns take every new connection, and without one new
  // connections fail closed. Inbound HBONE sessions get GOAWAY, so peers open their next
  // streams on a new connection. Connections in flight finish, up to --drain-seconds; a second
  // signal ends the wait.
  static constexpr const char* kDrainTask = "draining";
  bool draining = false;
  auto drain_deadline = std::chrono::steady_clock::now();
  auto drain_start = drain_deadline;
  asio::steady_timer drain_timer(control);
  auto exit_now = [&] {
    config.Stop();
    metrics_retry.cancel();
    drain_timer.cancel();
    workers.Stop();
    control.stop();
  };
  std::function<void()> check_drained = [&] {
    const int64_t left = metrics.InFlightConnections();
    const auto now = std::chrono::steady_clock::now();
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now - drain_start).count();
    if (left <= 0) {
      zm::Log("ztunnel").info("drained: no connection in flight after {} ms; exiting", ms);
      exit_now();
      return;
    }
    if (now >= drain_deadline) {
      zm::Log("ztunnel").warn("drain deadline ({} s) reached: closing {} connections in flight",
                              drain_seconds, left);
      exit_now();
      return;
    }
    drain_timer.expires_after(std::chrono::milliseconds(100));
    drain_timer.async_wait([&](const asio::error_code& ec) {
      if (!ec) check_drained();
    });
  };
  asio::signal_set signals(control, SIGTERM, SIGINT);
  std::function<void(const asio::error_code&, int)> on_signal = [&](const asio::error_code& ec,
                                                                    int sig) {
    if (ec) return;
    if (draining) {
      zm::Log("ztunnel").info("signal {} while draining: exiting now ({} connections in flight)",
                              sig, metrics.InFlightConnections());
      exit_now();
      return;
    }
    draining = true;
    drain_start = std::chrono::steady_clock::now();
    drain_deadline = drain_start + std::chrono::seconds(drain_seconds);
    readiness.AddPending(kDrainTask);
    ready_file.Set(false);
    zds.Stop();
    http.Stop();  // the port is free for a successor at once
    metrics_retry.cancel();
    manager.CloseAll();  // stop accepting: listeners closed
    hbone.Drain();
    zm::Log("ztunnel").info(
        "signal {}: draining: listeners closed, {} connections in flight, waiting up to {} s",
        sig, metrics.InFlightConnections(), drain_seconds);
    signals.async_wait(on_signal);
    check_drained();
  };
  signals.async_wait(on_signal);

  zm::Log("ztunnel").info("node={} zds={} workers={} metrics={}", node, zds_socket, workers.size(),
                          metrics_ep->ToString());
  on_first_config = [&] {
    asio::post(control, [&] {
      if (!draining) zds.Start();
    });
  };
  config.Start();
  control.run();
  return 0;
}
