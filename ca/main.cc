// zmesh-ca: the cluster-mode certificate authority. See ca/README.md.
#include <fmt/chrono.h>
#include <fmt/ranges.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "ca/cluster_server.h"
#include "ca/kube_mode.h"
#include "ca/node_authorizer.h"
#include "ca/token_auth.h"
#include "common/base/log.h"
#include "common/base/strings.h"
#include "common/ca/root.h"
#include "common/kube/config.h"

namespace zm::ca {
namespace {

struct Flags {
  std::string listen = "127.0.0.1:15012";
  std::string state_dir = "/var/lib/zmesh-ca";
  std::string ca_cert;
  std::string ca_key;
  std::string trust_domain = "cluster.local";
  std::vector<std::string> dns_names;
  std::string tokens;
  std::string manifests;
  // Kubernetes mode.
  std::string kubeconfig;
  bool in_cluster = false;
  std::string root_secret = "zmesh-system/zmesh-ca-root";
  std::string ztunnel_service_account = "zmesh-system/ztunnel";
  bool kube_mode() const { return in_cluster || !kubeconfig.empty(); }
};

int Fail(const absl::Status& st) {
  Log("ca").critical("{}", st.message());
  return 1;
}

// Blocks until SIGTERM or SIGINT, then stops the server.
int ServeUntilSignal(ClusterCaServer& server) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
  Log("ca").info("signal {}: stopping", sig);
  server.Shutdown();
  return 0;
}

void LogServing(const Flags& flags, const ClusterCaOptions& options, ClusterCaServer& server,
                std::string_view root, std::string_view callers) {
  auto& log = Log("ca");
  std::string host = flags.listen.substr(0, flags.listen.rfind(':'));
  log.info("zmesh-ca: root {} for trust domain {}; serving certificate for {} until {:%FT%TZ}",
           root, flags.trust_domain, fmt::join(options.dns_names, ","),
           fmt::gmtime(std::chrono::system_clock::to_time_t(server.serving().not_after)));
  log.info("zmesh-ca: {}; listening on {}:{} (TLS)", callers, host, server.port());
}

ClusterCaOptions ServerOptions(const Flags& flags) {
  ClusterCaOptions options{.listen = flags.listen};
  if (!flags.dns_names.empty()) options.dns_names = flags.dns_names;
  return options;
}

int RunFiles(const Flags& flags) {
  RootFiles files = RootFilesIn(flags.state_dir);
  if (!flags.ca_cert.empty()) files = {.cert = flags.ca_cert, .key = flags.ca_key};
  auto root = LoadOrCreateRoot(files, flags.trust_domain, SystemClock::Get());
  if (!root.ok()) return Fail(root.status());

  auto tokens = StaticTokenFile::Load(flags.tokens);
  if (!tokens.ok()) return Fail(tokens.status());
  if ((*tokens)->size() == 0)
    Log("ca").warn("token file {} holds no token: every caller is refused", flags.tokens);
  auto pods = ManifestNodeAuthorizer::Open(flags.manifests, flags.trust_domain);
  if (!pods.ok()) return Fail(pods.status());

  ClusterCaOptions options = ServerOptions(flags);
  auto server = ClusterCaServer::Start(*root, **tokens, **pods, options);
  if (!server.ok()) return Fail(server.status());
  LogServing(flags, options, **server, files.cert,
             StrCat("tokens ", flags.tokens, ", manifests ", flags.manifests));
  return ServeUntilSignal(**server);
}

int RunKube(const Flags& flags) {
  auto config = kube::LoadConfig(flags.in_cluster, flags.kubeconfig);
  if (!config.ok()) return Fail(config.status());
  auto client = kube::KubeClient::Create(*config);
  if (!client.ok()) return Fail(client.status());
  KubeModeOptions kube{.trust_domain = flags.trust_domain};
  auto secret = ParseNamespacedName(flags.root_secret, "--root-secret");
  if (!secret.ok()) return Fail(secret.status());
  kube.root_secret = *secret;
  auto ztunnel = ParseNamespacedName(flags.ztunnel_service_account, "--ztunnel-service-account");
  if (!ztunnel.ok()) return Fail(ztunnel.status());
  kube.ztunnel_service_account = *ztunnel;
  Log("ca").info("zmesh-ca: Kubernetes API from {} ({})", config->source, config->server);
  auto mode = KubeMode::Start(**client, kube);
  if (!mode.ok()) return Fail(mode.status());

  ClusterCaOptions options = ServerOptions(flags);
  auto server =
      ClusterCaServer::Start((*mode)->root(), (*mode)->authenticator(), (*mode)->pods(), options);
  if (!server.ok()) return Fail(server.status());
  LogServing(flags, options, **server, StrCat("Secret ", kube.root_secret.ToString()),
             StrCat("callers by TokenReview (audience ", kube.audience,
                    "; ztunnels: ", kube.ztunnel_service_account.ToString(), ")"));
  int rc = ServeUntilSignal(**server);
  (*mode)->pods().Stop();
  return rc;
}

}  // namespace
}  // namespace zm::ca

int main(int argc, char** argv) {
  // Block the stop signals in every thread (gRPC's included); main waits for them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  CLI::App app{"zmesh-ca: the cluster-mode CA (IstioCertificateService over TLS)"};
  zm::ca::Flags flags;
  std::string log_level = "info";
  std::string log_format = "text";
  app.add_option("--listen", flags.listen, "host:port to serve on (TLS only)")
      ->capture_default_str();
  auto* state_dir = app.add_option("--state-dir", flags.state_dir,
                                   "root kept in <dir>/ca/root-{cert,key}.pem, created on first "
                                   "start (key mode 0600)")
                        ->capture_default_str();
  auto* ca_cert = app.add_option("--ca-cert", flags.ca_cert,
                                 "root certificate (instead of --state-dir; with --ca-key)");
  auto* ca_key = app.add_option("--ca-key", flags.ca_key, "root key, mode 0600 (with --ca-cert)");
  ca_cert->needs(ca_key)->excludes(state_dir);
  ca_key->needs(ca_cert)->excludes(state_dir);
  app.add_option("--trust-domain", flags.trust_domain)->capture_default_str();
  app.add_option("--dns-name", flags.dns_names,
                 "a DNS SAN of the serving certificate (repeatable; default "
                 "zmesh-ca.zmesh-system.svc)");
  auto* tokens = app.add_option("--tokens", flags.tokens,
                                "file mode: token file, lines TOKEN,NODE; re-read when it changes");
  auto* manifests = app.add_option("--manifests", flags.manifests,
                                   "file mode: directory of Kubernetes YAML: which pods run on "
                                   "which node");
  auto* kubeconfig = app.add_option("--kubeconfig", flags.kubeconfig,
                                    "Kubernetes mode: the API server from this kubeconfig "
                                    "(current context); callers by TokenReview, pods from the API, "
                                    "the root in a Secret");
  auto* in_cluster = app.add_flag("--in-cluster", flags.in_cluster,
                                  "Kubernetes mode with the pod's own service account");
  auto* root_secret =
      app.add_option("--root-secret", flags.root_secret,
                     "Kubernetes mode: NAMESPACE/NAME of the Secret holding the root (tls.crt, "
                     "tls.key), created on first start")
          ->capture_default_str();
  auto* ztunnel_sa =
      app.add_option("--ztunnel-service-account", flags.ztunnel_service_account,
                     "Kubernetes mode: NAMESPACE/NAME of ztunnel's service account; its "
                     "pod-bound tokens get the identities of pods on the pod's node, any other "
                     "service account only its own identity")
          ->capture_default_str();
  kubeconfig->excludes(in_cluster);
  for (auto* file_only : {tokens, manifests, state_dir, ca_cert, ca_key}) {
    file_only->excludes(kubeconfig)->excludes(in_cluster);
  }
  app.add_option("--log-level", log_level)->capture_default_str();
  app.add_option("--log-format", log_format, "text|json")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (!flags.kube_mode() && (flags.tokens.empty() || flags.manifests.empty())) {
    std::fprintf(stderr,
                 "zmesh-ca: give --tokens and --manifests (file mode), or --kubeconfig or "
                 "--in-cluster (Kubernetes mode)\n");
    return 2;
  }
  if (!flags.kube_mode() && (root_secret->count() > 0 || ztunnel_sa->count() > 0)) {
    std::fprintf(stderr,
                 "zmesh-ca: --root-secret and --ztunnel-service-account need --kubeconfig or "
                 "--in-cluster\n");
    return 2;
  }

  zm::ConfigureLogging(log_level,
                       log_format == "json" ? zm::LogFormat::kJson : zm::LogFormat::kText);
  return flags.kube_mode() ? zm::ca::RunKube(flags) : zm::ca::RunFiles(flags);
}
