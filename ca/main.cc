// zmesh-ca: the cluster-mode certificate authority. See ca/README.md.
#include <fmt/chrono.h>
#include <fmt/ranges.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "ca/cluster_server.h"
#include "ca/node_authorizer.h"
#include "ca/token_auth.h"
#include "common/base/log.h"
#include "common/ca/root.h"

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
};

int Fail(const absl::Status& st) {
  Log("ca").critical("{}", st.message());
  return 1;
}

int Run(const Flags& flags) {
  auto& log = Log("ca");
  RootFiles files = RootFilesIn(flags.state_dir);
  if (!flags.ca_cert.empty()) files = {.cert = flags.ca_cert, .key = flags.ca_key};
  auto root = LoadOrCreateRoot(files, flags.trust_domain, SystemClock::Get());
  if (!root.ok()) return Fail(root.status());

  auto tokens = StaticTokenFile::Load(flags.tokens);
  if (!tokens.ok()) return Fail(tokens.status());
  if ((*tokens)->size() == 0)
    log.warn("token file {} holds no token: every caller is refused", flags.tokens);
  auto pods = ManifestNodeAuthorizer::Open(flags.manifests, flags.trust_domain);
  if (!pods.ok()) return Fail(pods.status());

  ClusterCaOptions options{.listen = flags.listen};
  if (!flags.dns_names.empty()) options.dns_names = flags.dns_names;
  auto server = ClusterCaServer::Start(*root, **tokens, **pods, options);
  if (!server.ok()) return Fail(server.status());
  std::string host = flags.listen.substr(0, flags.listen.rfind(':'));
  log.info("zmesh-ca: root {} for trust domain {}; serving certificate for {} until {:%FT%TZ}",
           files.cert, flags.trust_domain, fmt::join(options.dns_names, ","),
           fmt::gmtime(std::chrono::system_clock::to_time_t((*server)->serving().not_after)));
  log.info("zmesh-ca: tokens {}, manifests {}; listening on {}:{} (TLS)", flags.tokens,
           flags.manifests, host, (*server)->port());

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
  log.info("signal {}: stopping", sig);
  (*server)->Shutdown();
  return 0;
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
  app.add_option("--tokens", flags.tokens, "token file: lines TOKEN,NODE; re-read when it changes")
      ->required();
  app.add_option("--manifests", flags.manifests,
                 "directory of Kubernetes YAML: which pods run on which node")
      ->required();
  app.add_option("--log-level", log_level)->capture_default_str();
  app.add_option("--log-format", log_format, "text|json")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  zm::ConfigureLogging(log_level,
                       log_format == "json" ? zm::LogFormat::kJson : zm::LogFormat::kText);
  return zm::ca::Run(flags);
}
