// waypoint: zmesh's L7 proxy for a namespace (DESIGN §6). Thin main: flags, threads, signals.
// See README.md.

#include <CLI/CLI.hpp>
#include <asio.hpp>
#include <csignal>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "common/base/clock.h"
#include "common/base/log.h"
#include "common/base/strings.h"
#include "common/http/http_server.h"
#include "common/jwt/jwks_fetcher.h"
#include "common/k8s/manifest_watcher.h"
#include "waypoint/mesh_config.h"
#include "waypoint/server.h"
#include "ztunnel/identity/ca_client.h"
#include "ztunnel/identity/cert_manager.h"

namespace {

int Fail(const std::string& what) {
  zm::Log("waypoint").critical("{}", what);
  std::cerr << "waypoint: " << what << "\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace zm::waypoint;
  CLI::App app{"zmesh waypoint: L7 proxy (RequestAuthentication, L7 AuthorizationPolicy)"};
  std::string name = "waypoint";
  std::string ns;
  std::string service_account = "waypoint";
  std::string manifests;
  bool in_cluster = false;
  std::string ca_address, ca_root_cert, ca_token_file;
  std::string trust_domain = "cluster.local";
  std::string root_namespace(zm::mesh::kDefaultRootNamespace);
  std::string default_policy = "upstream";
  std::string listen = "0.0.0.0:15008";
  std::string metrics_addr = "0.0.0.0:15020";
  std::string readiness_addr = "0.0.0.0:15021";
  std::string admin_addr = "127.0.0.1:15000";
  size_t workers_n = 2;
  std::string log_level = "info", log_format = "text";
  std::string jwks_ca_file;
  std::string mesh_config;
  app.add_option("--name", name, "the waypoint's name: its Service and Gateway")
      ->capture_default_str();
  app.add_option("--namespace", ns, "the waypoint's namespace")->required();
  app.add_option("--service-account", service_account, "the service account it runs as")
      ->capture_default_str();
  app.add_option("--manifests", manifests,
                 "local mode: directory of Kubernetes YAML (pods, services, policies), re-read "
                 "when it changes");
  app.add_flag("--in-cluster", in_cluster, "cluster mode: watch the API server (not built yet)");
  app.add_option("--ca-address", ca_address,
                 "gRPC target of the CA: unix:PATH (the agent's, local mode) or HOST:PORT")
      ->required();
  app.add_option("--ca-root-cert", ca_root_cert,
                 "PEM mesh root the CA must chain to (TLS); required unless --ca-address is unix:");
  app.add_option("--ca-token-file", ca_token_file,
                 "file sent as `authorization: Bearer <content>` to the CA, re-read on every call");
  app.add_option("--trust-domain", trust_domain)->capture_default_str();
  app.add_option("--root-namespace", root_namespace, "the mesh-wide policy namespace")
      ->capture_default_str();
  app.add_option("--default-policy", default_policy,
                 "zero-trust: requests without a verified end-user JWT are denied")
      ->check(CLI::IsMember({"upstream", "zero-trust"}))
      ->capture_default_str();
  app.add_option("--jwks-ca-file", jwks_ca_file,
                 "PEM bundle that jwksUri servers must chain to (default: the system's)");
  app.add_option("--mesh-config", mesh_config,
                 "Istio MeshConfig YAML: its extensionProviders (envoyExtAuthzHttp) serve CUSTOM "
                 "policies");
  app.add_option("--listen", listen, "HOST:PORT of the HBONE server")->capture_default_str();
  app.add_option("--metrics-addr", metrics_addr, "HOST:PORT of /metrics")->capture_default_str();
  app.add_option("--readiness-addr", readiness_addr, "HOST:PORT of /healthz/ready")
      ->capture_default_str();
  app.add_option("--admin-addr", admin_addr, "HOST:PORT of the admin endpoint (/config_dump)")
      ->capture_default_str();
  app.add_option("--workers", workers_n, "worker threads")->check(CLI::Range(1, 256));
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|critical|off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--log-format", log_format, "text|json")->check(CLI::IsMember({"text", "json"}));
  CLI11_PARSE(app, argc, argv);
  zm::ConfigureLogging(log_level,
                       log_format == "json" ? zm::LogFormat::kJson : zm::LogFormat::kText);
  std::signal(SIGPIPE, SIG_IGN);

  if (in_cluster) {
    return Fail(
        "--in-cluster: the waypoint's Kubernetes watch is not built yet; run it with "
        "--manifests DIR (local mode)");
  }
  if (manifests.empty()) return Fail("--manifests DIR is required (local mode)");
  std::vector<ExtAuthzProvider> providers;
  if (!mesh_config.empty()) {
    std::ifstream in(mesh_config);
    if (!in) return Fail(zm::StrCat("--mesh-config ", mesh_config, ": cannot read it"));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto parsed = ParseMeshConfigProviders(text, mesh_config);
    if (!parsed.ok()) return Fail(std::string(parsed.status().message()));
    providers = std::move(*parsed);
    for (const auto& p : providers) {
      zm::Log("waypoint").info("CUSTOM provider {}: {} {}:{}", p.name,
                               p.kind == ExtAuthzProvider::Kind::kHttp ? "http" : "grpc",
                               p.service, p.port);
    }
  }
  auto self = zm::tls::SpiffeId::ForServiceAccount(trust_domain, ns, service_account);
  if (!self.ok()) return Fail(zm::StrCat("identity: ", self.status().message()));
  auto listen_ep = zm::Endpoint::Parse(listen);
  auto metrics_ep = zm::Endpoint::Parse(metrics_addr);
  auto readiness_ep = zm::Endpoint::Parse(readiness_addr);
  auto admin_ep = zm::Endpoint::Parse(admin_addr);
  for (const auto* ep : {&listen_ep, &metrics_ep, &readiness_ep, &admin_ep}) {
    if (!ep->ok()) return Fail(std::string(ep->status().message()));
  }

  // The waypoint's one identity, from the CA, kept fresh by the certificate manager.
  zm::ztunnel::GrpcCaClient ca(ca_address,
                               {.root_cert_file = ca_root_cert, .token_file = ca_token_file});
  if (!ca.status().ok()) return Fail(std::string(ca.status().message()));
  zm::ztunnel::CertManager certs(ca, zm::SystemClock::Get(), {.trust_domain = trust_domain});
  certs.AddRef(*self);
  certs.Start();

  // JWKS: inline documents are MeshConfig's (L7Policies::Build); a jwksUri gets one fetcher per
  // URI (background refresh, stale on error), shared by every rule naming it.
  zm::jwt::JwksFetcherRegistry fetchers({.ca_file = jwks_ca_file});
  zm::mesh::JwksProvider jwks = [&fetchers](const zm::jwt::JwtRuleSpec& rule) {
    return fetchers.ForRule(rule);
  };
  MeshConfig config(root_namespace, zm::mesh::WaypointRef{.ns = ns, .name = name}, jwks,
                    zm::SystemClock::Get());
  const bool zero_trust = default_policy == "zero-trust";
  // The agent's own watcher (inotify, coalesced bursts) and translation: one code path.
  auto watcher = zm::k8s::ManifestWatcher::Start(
      manifests, [&config, &fetchers, zero_trust](std::shared_ptr<const zm::k8s::ManifestSnapshot> objects) {
        auto snap = std::make_shared<zm::mesh::Snapshot>(zm::mesh::BuildSnapshot(*objects));
        for (const std::string& e : snap->errors) zm::Log("config").error("manifests: {}", e);
        if (zero_trust) snap->default_policy = zm::mesh::DefaultPolicy::kZeroTrust;
        config.Update(std::move(snap));
        for (const std::string& uri : fetchers.Sweep()) {
          zm::Log("jwt").info("JWKS {}: no rule uses it any more", uri);
        }
      });
  if (!watcher.ok()) return Fail(zm::StrCat("--manifests: ", watcher.status().message()));

  asio::io_context control(1);
  std::vector<std::unique_ptr<asio::io_context>> worker_ctxs;
  std::vector<asio::io_context*> worker_ptrs;
  for (size_t i = 0; i < workers_n; ++i) {
    worker_ctxs.push_back(std::make_unique<asio::io_context>(1));
    worker_ptrs.push_back(worker_ctxs.back().get());
  }
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  for (auto& c : worker_ctxs) guards.push_back(asio::make_work_guard(*c));
  std::vector<std::thread> threads;
  for (auto& c : worker_ctxs) threads.emplace_back([ctx = c.get()] { ctx->run(); });
  auto stop_workers = [&] {
    guards.clear();
    for (auto& c : worker_ctxs) c->stop();
    for (auto& t : threads) t.join();
    threads.clear();
  };

  Metrics metrics;
  WaypointServer server(control, worker_ptrs, config,
                        CredentialSource{.get = [&certs, id = *self] { return certs.Get(id); },
                                         .roots = [&certs] { return certs.RootPems(); }},
                        *self,
                        ServerOptions{.trust_domain = trust_domain, .ext_authz = providers},
                        metrics);
  auto port = server.Listen(*listen_ep);
  if (!port.ok()) {
    stop_workers();
    return Fail(std::string(port.status().message()));
  }
  auto ready = [&] { return config.Current() != nullptr && certs.Get(*self).ok(); };
  zm::http::HttpServer metrics_http(control, [&](std::string_view, std::string_view path) {
    if (path == "/metrics") {
      return zm::http::HttpResponse{.status = 200,
                                    .body = metrics.Render(),
                                    .content_type = "text/plain; version=0.0.4"};
    }
    return zm::http::HttpResponse{.status = 404, .body = "not found\n"};
  });
  zm::http::HttpServer readiness_http(control, [&](std::string_view, std::string_view path) {
    if (path == "/healthz/ready") {
      return ready() ? zm::http::HttpResponse{.status = 200, .body = "ready\n"}
                     : zm::http::HttpResponse{.status = 503,
                                              .body = "not ready: waiting for the mesh "
                                                      "configuration and the certificate\n"};
    }
    return zm::http::HttpResponse{.status = 404, .body = "not found\n"};
  });
  zm::http::HttpServer admin_http(control, [&](std::string_view, std::string_view path) {
    if (path == "/config_dump") {
      nlohmann::ordered_json j;
      j["waypoint"] = zm::StrCat(ns, "/", name);
      j["identity"] = self->ToString();
      auto view = config.Current();
      j["mesh_version"] = view ? view->generation : 0;
      j["warnings"] = view ? view->policies->warnings() : std::vector<std::string>{};
      nlohmann::ordered_json c = nlohmann::json::array();
      for (const auto& s : certs.Status()) {
        c.push_back({{"identity", s.identity},
                     {"has_certificate", s.has_cert},
                     {"failures", s.failures},
                     {"last_error", s.last_error}});
      }
      j["certificates"] = c;
      nlohmann::ordered_json fetched = nlohmann::json::array();
      for (const auto& f : fetchers.Status()) {
        fetched.push_back({{"uri", f.uri},
                           {"keys", f.keys},
                           {"fetches", f.fetches},
                           {"consecutive_failures", f.consecutive_failures},
                           {"last_error", f.last_error}});
      }
      j["jwks"] = fetched;
      return zm::http::HttpResponse{
          .status = 200, .body = j.dump(2) + "\n", .content_type = "application/json"};
    }
    if (path == "/metrics") return zm::http::HttpResponse{.status = 200, .body = metrics.Render()};
    return zm::http::HttpResponse{.status = 404, .body = "not found\n"};
  });
  for (auto [srv, ep] : {std::pair{&metrics_http, &*metrics_ep},
                         std::pair{&readiness_http, &*readiness_ep},
                         std::pair{&admin_http, &*admin_ep}}) {
    if (auto p = srv->Listen(*ep); !p.ok()) {
      server.Stop();
      stop_workers();
      return Fail(std::string(p.status().message()));
    }
  }

  asio::signal_set signals(control, SIGTERM, SIGINT);
  signals.async_wait([&](const asio::error_code& ec, int sig) {
    if (ec) return;
    zm::Log("waypoint").info("signal {}: stopping", sig);
    server.Stop();
    metrics_http.Stop();
    readiness_http.Stop();
    admin_http.Stop();
    control.stop();
  });
  zm::Log("waypoint").info("waypoint {}/{} as {}: HBONE on {}, metrics {}, readiness {}, admin {}",
                           ns, name, self->ToString(), listen_ep->ToString(),
                           metrics_ep->ToString(), readiness_ep->ToString(), admin_ep->ToString());
  control.run();
  watcher->reset();
  stop_workers();
  return 0;
}
