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

#include "absl/strings/str_join.h"
#include "common/base/clock.h"
#include "common/base/log.h"
#include "common/base/strings.h"
#include "common/http/http_server.h"
#include "common/jwt/jwks_fetcher.h"
#include "common/k8s/manifest_watcher.h"
#include "common/kube/client.h"
#include "common/kube/config.h"
#include "common/kube/kube_source.h"
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

// Cluster mode's part of /config_dump: the API server and each informer's state.
nlohmann::ordered_json DumpKubeSource(const zm::kube::KubeSource& source,
                                      const zm::kube::Config& config) {
  nlohmann::ordered_json informers = nlohmann::json::array();
  for (const auto& [kind, st] : source.Stats()) {
    informers.push_back({{"kind", kind},
                         {"lists", st.lists},
                         {"watches", st.watches},
                         {"failures", st.failures},
                         {"rejected", st.rejected},
                         {"last_error", st.last_error}});
  }
  return {{"mode", "cluster"},
          {"server", config.server},
          {"config", config.source},
          {"synced", source.HasSynced()},
          {"unsynced", source.Unsynced()},
          {"informers", informers}};
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
  std::string kubeconfig, kube_context;
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
  app.add_option("--kubeconfig", kubeconfig,
                 "cluster mode: the API server and credentials from this kubeconfig file");
  app.add_option("--kube-context", kube_context,
                 "the kubeconfig context to use (default: its current-context)");
  app.add_flag("--in-cluster", in_cluster,
               "cluster mode: the API server and token of the pod's service account");
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

  const bool cluster = in_cluster || !kubeconfig.empty();
  if (!manifests.empty() + !kubeconfig.empty() + in_cluster != 1) {
    return Fail(
        "exactly one of --manifests DIR (local mode), --kubeconfig FILE or --in-cluster (cluster "
        "mode) is required");
  }
  if (!kube_context.empty() && kubeconfig.empty()) return Fail("--kube-context needs --kubeconfig");
  // Cluster mode: the API server's address and credentials first, so that a missing service
  // account or a broken kubeconfig stops the start at once, naming what is wrong.
  std::optional<zm::kube::Config> kube_config;
  if (cluster) {
    auto loaded = zm::kube::LoadConfig(in_cluster, kubeconfig, kube_context);
    if (!loaded.ok()) return Fail(std::string(loaded.status().message()));
    kube_config = *std::move(loaded);
  }
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
  // The objects, from the agent's own sources and translation (one code path): a manifest
  // directory (inotify, coalesced bursts) or the API server's informers, which give nothing
  // before every kind has synced (until then the waypoint is not ready and refuses streams).
  auto on_objects = [&config, &fetchers,
                     zero_trust](std::shared_ptr<const zm::k8s::ManifestSnapshot> objects) {
    auto snap = std::make_shared<zm::mesh::Snapshot>(zm::mesh::BuildSnapshot(*objects));
    for (const std::string& e : snap->errors) zm::Log("config").error("objects: {}", e);
    if (zero_trust) snap->default_policy = zm::mesh::DefaultPolicy::kZeroTrust;
    config.Update(std::move(snap));
    for (const std::string& uri : fetchers.Sweep()) {
      zm::Log("jwt").info("JWKS {}: no rule uses it any more", uri);
    }
  };
  std::unique_ptr<zm::k8s::ManifestWatcher> watcher;
  std::unique_ptr<zm::kube::KubeClient> kube_client;
  std::unique_ptr<zm::kube::KubeSource> kube_source;
  if (cluster) {
    auto client = zm::kube::KubeClient::Create(*kube_config);
    if (!client.ok()) return Fail(zm::StrCat("API client: ", client.status().message()));
    kube_client = *std::move(client);
    zm::Log("waypoint")
        .info("cluster mode: API server {} ({})", kube_config->server, kube_config->source);
    kube_source = zm::kube::KubeSource::Start(*kube_client, on_objects, {});
  } else {
    auto started = zm::k8s::ManifestWatcher::Start(manifests, on_objects);
    if (!started.ok()) return Fail(zm::StrCat("--manifests: ", started.status().message()));
    watcher = *std::move(started);
  }
  // What readiness still waits for; empty when ready.
  auto waiting_for = [&]() -> std::vector<std::string> {
    std::vector<std::string> out;
    if (kube_source && !kube_source->HasSynced()) {
      out.push_back(zm::StrCat("the API server's objects (not synced: ",
                               absl::StrJoin(kube_source->Unsynced(), ", "), ")"));
    } else if (config.Current() == nullptr) {
      out.push_back("the mesh configuration");
    }
    if (!certs.Get(*self).ok()) out.push_back("the certificate");
    return out;
  };

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
  listen_ep->port = *port;  // the port taken, when asked for port 0
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
      std::vector<std::string> waiting = waiting_for();
      if (waiting.empty()) return zm::http::HttpResponse{.status = 200, .body = "ready\n"};
      return zm::http::HttpResponse{
          .status = 503,
          .body = zm::StrCat("not ready: waiting for ", absl::StrJoin(waiting, "; "), "\n")};
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
      j["source"] = kube_source ? DumpKubeSource(*kube_source, *kube_config)
                                : nlohmann::ordered_json{{"mode", "manifests"}, {"dir", manifests}};
      j["policies"] = view ? DumpPolicies(*view) : nlohmann::ordered_json::object();
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
    auto p = srv->Listen(*ep);
    if (!p.ok()) {
      server.Stop();
      stop_workers();
      return Fail(std::string(p.status().message()));
    }
    ep->port = *p;
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
  if (kube_source) kube_source->Stop();
  watcher.reset();
  stop_workers();
  return 0;
}
