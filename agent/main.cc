// zmesh-agent: the node agent (local mode: --manifests; cluster mode: --kubeconfig or
// --in-cluster). See agent/README.md and ARCHITECTURE.md.
#include <sys/stat.h>
#include <unistd.h>

#include <signal.h>

#include <CLI/CLI.hpp>
#include <asio.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "agent/admin.h"
#include "agent/agent.h"
#include "agent/cluster.h"
#include "agent/enrollment.h"
#include "agent/inpod_routing.h"
#include "agent/node_lease.h"
#include "common/k8s/manifest_watcher.h"
#include "agent/pod_netns.h"
#include "bpf/pinned_datapath.h"
#include "common/base/log.h"
#include "common/base/netns.h"
#include "common/base/ready_file.h"
#include "common/base/signals.h"
#include "common/ca/ca_service.h"
#include "common/ca/root.h"
#include "common/ca/uds_server.h"
#include "common/config/config_server.h"
#include "common/http/http_server.h"
#include "common/kube/config.h"
#include "common/mesh/workload.h"

#ifndef ZMESH_BUILD_ID
#define ZMESH_BUILD_ID "dev"
#endif

namespace zm::agent {
namespace {

int Fail(const absl::Status& st) {
  Log("agent").critical("{}", st.message());
  return 1;
}

// Where the objects come from (exactly one).
struct SourceOptions {
  std::string manifests;   // local mode
  std::string kubeconfig;  // cluster mode, from a kubeconfig file
  std::string kube_context;
  bool in_cluster = false;  // cluster mode, with the pod's service account
  bool cluster() const { return in_cluster || !kubeconfig.empty(); }
};

// How the leading agent ended: a stop signal, or a newcomer took the node over.
struct LeaderExit {
  int code = 0;
  bool handing_over = false;  // NodeLease::BeginStop() said so: CompleteHandover() is due
  bool signalled = false;
  Fd ztunnel_conn;  // kept open while standing by (its ztunnel must not reconnect)
};

// `synced_cluster`: cluster mode, connected and synced (RunAgent); null in local mode.
LeaderExit RunLeader(AgentOptions opts, const SourceOptions& source,
                     std::unique_ptr<ClusterMode> synced_cluster, NodeLease& lease,
                     const std::string& ready_file_path) {
  auto& log = Log("agent");
  auto Fail = [](const absl::Status& st) { return LeaderExit{.code = agent::Fail(st)}; };
  if (absl::Status st = bpf::EnsureBpffs(); !st.ok()) return Fail(st);
  auto datapath = bpf::PinnedDatapath::Open(
      {.pin_dir = opts.pin_dir, .cgroup_root = opts.cgroup_root, .build_id = ZMESH_BUILD_ID});
  if (!datapath.ok()) return Fail(datapath.status());
  if ((*datapath)->migrated()) log.warn("pinned maps of another ABI were migrated");
  if (auto gc = (*datapath)->GcDefunctSkLookupLinks(); gc.ok() && !gc->empty()) {
    log.info("gc: removed {} sk_lookup links of namespaces that are gone", gc->size());
  }
  auto zds = ZdsServer::Listen(opts.zds_socket);
  if (!zds.ok()) return Fail(zds.status());
  RealPodNetns netns;
  Agent agent(opts, **datapath, **zds, netns);
  // Declared after the Agent, so that any return stops it (and its deliveries) before the Agent
  // goes.
  std::unique_ptr<ClusterMode> cluster = std::move(synced_cluster);

  // Objects first: recovery needs to know what is still wanted.
  std::shared_ptr<const k8s::ManifestSnapshot> initial;
  std::unique_ptr<k8s::ManifestWatcher> watcher;
  if (cluster) {
    initial = cluster->Follow([&](auto snap) { agent.PostManifests(std::move(snap)); });
  } else {
    auto started = k8s::ManifestWatcher::Start(opts.manifests, [&](auto snap) {
      if (!initial) {
        initial = snap;  // the first call happens inside Start(), before Agent::Start()
        return;
      }
      agent.PostManifests(std::move(snap));
    });
    if (!started.ok()) return Fail(started.status());
    watcher = std::move(*started);
    if (!initial) initial = watcher->Current();
  }
  if (absl::Status st = agent.Start(initial); !st.ok()) return Fail(st);
  if (cluster) {
    if (absl::Status st = cluster->Attach(agent); !st.ok()) return Fail(st);
  }

  // The local-mode CA: the connected ztunnel gets the identities of this node's pods only.
  auto root = ca::LoadOrCreateRoot({.cert = opts.ca_cert, .key = opts.ca_key}, opts.trust_domain,
                                   SystemClock::Get());
  if (!root.ok()) return Fail(root.status());
  // An RPC may arrive before Start() returns: the callbacks read the server through an atomic.
  std::atomic<ca::UdsGrpcServer*> ca_server_ptr{nullptr};
  auto caller_of = [&](grpc::ServerContext* ctx) -> absl::StatusOr<ca::Caller> {
    ca::UdsGrpcServer* s = ca_server_ptr.load();
    if (s == nullptr) return absl::UnavailableError("CA starting");
    return s->CallerOf(ctx);
  };
  std::unique_ptr<ca::UdsGrpcServer> ca_server;
  ca::CaService ca_service(
      *root, caller_of,
      [&](const ca::Caller& caller, const tls::SpiffeId& id) {
        // The kernel's word on where the caller lives (a waypoint pod's netns), read now.
        std::optional<uint64_t> netns_inode;
        struct stat st{};
        if (stat(StrCat("/proc/", caller.pid, "/ns/net").c_str(), &st) == 0) {
          netns_inode = static_cast<uint64_t>(st.st_ino);
        }
        return AuthorizeCertificate(*agent.View(), caller.pid, netns_inode, id.ns, id.sa);
      });
  auto started = ca::UdsGrpcServer::Start(opts.ca_socket, {&ca_service});
  if (!started.ok()) return Fail(started.status());
  ca_server = std::move(*started);
  ca_server_ptr = ca_server.get();

  // The config stream: ztunnel gets the mesh (workloads, services, PeerAuthentication).
  std::atomic<ca::UdsGrpcServer*> config_server_ptr{nullptr};
  config::ConfigServer config_service({.describe_peer = [&](grpc::ServerContext* ctx) {
    ca::UdsGrpcServer* s = config_server_ptr.load();
    auto who = s ? s->CallerOf(ctx) : absl::StatusOr<ca::Caller>(absl::UnavailableError(""));
    return who.ok() ? who->description : ctx->peer();
  }});
  auto config_started = ca::UdsGrpcServer::Start(opts.config_socket, {config_service.service()});
  if (!config_started.ok()) return Fail(config_started.status());
  std::unique_ptr<ca::UdsGrpcServer> config_server = std::move(*config_started);
  config_server_ptr = config_server.get();
  if (auto current = agent.CurrentMesh()) config_service.Publish(current);
  agent.SetMeshListener([&](std::shared_ptr<const mesh::Snapshot> s) { config_service.Publish(s); });
  log.info("config stream on {}", opts.config_socket);
  log.info("CA: root {} serving {} on {}", opts.ca_cert, opts.trust_domain, opts.ca_socket);

  asio::io_context admin_ctx;
  http::HttpServer admin(admin_ctx, [&](std::string_view method, std::string_view path) {
    return HandleAdmin(*agent.View(), method, path);
  });
  auto admin_addr = Endpoint::Parse(opts.admin_addr);
  if (!admin_addr.ok()) return Fail(admin_addr.status());
  if (auto port = admin.Listen(*admin_addr); !port.ok()) return Fail(port.status());
  std::thread accept_thread([&] {
    while (true) {
      auto conn = (*zds)->Accept();
      if (!conn.ok()) {
        if (!absl::IsCancelled(conn.status())) log.error("zds accept: {}", conn.status().message());
        return;
      }
      agent.PostZtunnel(std::move(*conn));
    }
  });

  // The readiness file follows /healthz/ready (the DaemonSet's probe, common/base/ready_file.h).
  ReadyFile ready_file(ready_file_path);
  ready_file.Follow([&] { return agent.View()->ready; });
  std::thread admin_thread([&] { admin_ctx.run(); });

  // A newer agent on this node (a surge upgrade) asks this one to stand down.
  if (absl::Status st = lease.ServeHandover([&](pid_t) { agent.Stop(); }); !st.ok()) {
    log.error("handover socket: {}; a newer agent will wait for this one to exit", st.message());
  }

  // Signals: stop the control loop; never tear the datapath down (DESIGN §3).
  std::atomic<bool> signalled{false};
  std::atomic<bool> stop_waiting{false};
  std::thread signal_thread([&] {
    const sigset_t set = StopSignals();
    const timespec tick{.tv_sec = 0, .tv_nsec = 200'000'000};
    while (!stop_waiting.load()) {
      const int sig = sigtimedwait(&set, nullptr, &tick);
      if (sig <= 0) continue;
      log.info("signal {}: stopping; capture stays in place on the pinned state", sig);
      signalled = true;
      agent.Stop();
      return;
    }
  });
  log.info("zmesh-agent {} on node {}: {}, pins {}, zds {}, admin {}", ZMESH_BUILD_ID, opts.node,
           source.cluster() ? "cluster mode" : StrCat("manifests ", opts.manifests), opts.pin_dir,
           opts.zds_socket, opts.admin_addr);
  agent.Run();
  LeaderExit exit{.handing_over = lease.BeginStop()};
  if (exit.handing_over) log.info("standing down: closing every socket of this agent");
  if (cluster) cluster->Stop();

  (*zds)->Shutdown();
  accept_thread.join();
  if (exit.handing_over) exit.ztunnel_conn = (*zds)->TakeConnection();
  config_service.Shutdown();
  config_server.reset();
  ca_server.reset();
  asio::post(admin_ctx, [&] {
    admin.Stop();
    admin_ctx.stop();  // after Stop(), on the loop's own thread
  });
  admin_thread.join();
  stop_waiting = true;
  signal_thread.join();
  exit.signalled = signalled.load();
  watcher.reset();
  return exit;  // the ZDS socket, the datapath and the agent go with this scope
}

int RunAgent(AgentOptions opts, const SourceOptions& source, ClusterOptions cluster_opts,
             const std::string& ready_file_path) {
  auto& log = Log("agent");
  // Cluster mode: the API server's objects first. No decision, and no readiness, on a partial
  // view of the cluster; and in a surge upgrade the old agent keeps the node until this one has
  // them, so that the node is without an acting agent only for the moments of the handover.
  std::unique_ptr<ClusterMode> cluster;
  if (source.cluster()) {
    auto config = kube::LoadConfig(source.in_cluster, source.kubeconfig, source.kube_context);
    if (!config.ok()) return Fail(config.status());
    cluster_opts.kube = *std::move(config);
    auto connected = ClusterMode::Connect(std::move(cluster_opts));
    if (!connected.ok()) return Fail(connected.status());
    cluster = std::move(*connected);
    if (!cluster->WaitForSync(TakePendingStopSignal)) {
      log.info("stopped before the API server's objects were synced");
      return 0;
    }
  }
  // One agent acts on a node at a time; a newer one (a surge upgrade) takes over.
  auto lease = NodeLease::Acquire(opts.node_run_dir, TakePendingStopSignal);
  if (absl::IsCancelled(lease.status())) {
    log.info("{}", lease.status().message());
    return 0;
  }
  if (!lease.ok()) return Fail(lease.status());
  LeaderExit exit = RunLeader(std::move(opts), source, std::move(cluster), **lease,
                              ready_file_path);
  if (!exit.handing_over) return exit.code;
  (*lease)->CompleteHandover();
  if (exit.signalled) return 0;
  // Stood down. Exiting would close the ZDS connection and our ztunnel, still draining, would
  // look for an agent; it learns to stop from its own SIGTERM, which comes with ours.
  log.info("stood down: the new agent leads this node; waiting for SIGTERM");
  const sigset_t set = StopSignals();
  int sig = 0;
  sigwait(&set, &sig);
  log.info("signal {}: exiting", sig);
  return 0;
}

int Uninstall(const std::string& pin_dir, const std::string& node, const std::string& manifests,
              const std::string& cni_bin_dir, const std::string& cni_conf_dir,
              const std::string& state_dir) {
  auto& log = Log("agent");
  // The CNI plugin first: with the capture gone, a pod must no longer wait for an agent.
  if (!cni_conf_dir.empty() || !cni_bin_dir.empty()) {
    if (cni_conf_dir.empty() || cni_bin_dir.empty()) {
      return Fail(
          absl::InvalidArgumentError("uninstall: --cni-conf-dir and --cni-bin-dir go together"));
    }
    if (absl::Status st = UninstallCni(cni_bin_dir, cni_conf_dir); !st.ok()) return Fail(st);
    log.info("uninstalled: zmesh-cni removed from {} and {}", cni_conf_dir, cni_bin_dir);
  }
  // The in-pod routing of the pods this node enrolled, when the manifests say where they are.
  if (!manifests.empty()) {
    k8s::ManifestStore store(manifests);
    if (absl::Status st = store.Reload(); st.ok()) {
      mesh::Snapshot snap = mesh::BuildSnapshot(store.Snapshot());
      for (const auto& d : DecideEnrollment(snap, node)) {
        if (!d.workload || d.workload->netns.empty()) continue;
        auto fd = OpenNetns(d.workload->netns);
        if (fd.ok() && RemoveDeliveryRouting(fd->get()).ok()) {
          log.info("cleared the delivery routing in the netns of {}", d.key());
        }
      }
    } else {
      log.warn("uninstall: manifests {}: {}", manifests, st.message());
    }
  }
  absl::Status st = bpf::PinnedDatapath::Uninstall(pin_dir);
  if (!st.ok()) return Fail(st);
  log.info("uninstalled: every link and map under {} removed", pin_dir);
  // The sandboxes zmesh-cni reported (kept on the host across agent pods, cluster mode).
  const std::string cni_state = state_dir + "/cni-pods.json";
  if (::unlink(cni_state.c_str()) == 0) {
    log.info("uninstalled: {} removed", cni_state);
  } else if (errno != ENOENT) {
    log.warn("uninstall: {}: {}", cni_state, std::strerror(errno));
  }
  return 0;
}

}  // namespace
}  // namespace zm::agent

int main(int argc, char** argv) {
  // Block the stop signals in every thread; a dedicated thread waits for them.
  zm::BlockStopSignals();

  CLI::App app{"zmesh-agent: enrolls the pods of labelled namespaces and loads the capture layer"};
  zm::agent::AgentOptions opts;
  std::string pin_root = "/sys/fs/bpf/zmesh";
  std::string log_level = "info";
  std::string log_format = "text";
  app.add_option("--node", opts.node, "this node's name")->required();
  zm::agent::SourceOptions source;
  app.add_option("--manifests", source.manifests, "directory of Kubernetes YAML (local mode)");
  app.add_option("--kubeconfig", source.kubeconfig,
                 "cluster mode: the API server and credentials from this kubeconfig file");
  app.add_option("--kube-context", source.kube_context,
                 "the kubeconfig context to use (default: its current-context)");
  app.add_flag("--in-cluster", source.in_cluster,
               "cluster mode: the API server and token of the pod's service account");
  zm::agent::ClusterOptions cluster;
  cluster.cni.bin_dir = "/opt/cni/bin";
  cluster.cni.conf_dir = "/etc/cni/net.d";
  app.add_option("--cni-bin-dir", cluster.cni.bin_dir,
                 "cluster mode: where zmesh-cni is installed (the runtime's CNI binary directory)")
      ->capture_default_str();
  app.add_option("--cni-conf-dir", cluster.cni.conf_dir,
                 "cluster mode: the CNI configuration directory; zmesh-cni is chained last in "
                 "its first network configuration")
      ->capture_default_str();
  app.add_option("--cni-socket", cluster.cni_socket,
                 "cluster mode: where zmesh-cni asks the agent (default "
                 "/var/run/zmesh/<node>/cni.sock)");
  app.add_option("--cni-plugin", cluster.cni.plugin_binary,
                 "cluster mode: the zmesh-cni binary to install (default: beside zmesh-agent)");
  app.add_option("--cni-timeout", cluster.cni.timeout_seconds,
                 "cluster mode: seconds a CNI ADD waits for the pod's enrollment")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  app.add_option("--cgroup-root", opts.cgroup_root, "cgroup v2 directory to attach to");
  app.add_option("--pin-root", pin_root, "bpffs directory; pins go to <pin-root>/<node>")
      ->capture_default_str();
  app.add_option("--zds-socket", opts.zds_socket,
                 "ZDS socket (default /var/run/zmesh/<node>/zds.sock)");
  app.add_option("--admin-addr", opts.admin_addr, "admin/metrics address")
      ->default_str("127.0.0.1:15030");
  app.add_option("--node-run-dir", opts.node_run_dir,
                 "the node's lease and handover socket: one agent acts on a node at a time "
                 "(default /var/run/zmesh/<node>)");
  std::string ready_file;
  app.add_option("--ready-file", ready_file,
                 "file that exists while the agent is ready (for an exec readiness probe)");
  std::string state_dir;
  app.add_option("--state-dir", state_dir, "where the agent keeps state (default /var/lib/zmesh/<node>)");
  app.add_option("--ca-cert", opts.ca_cert, "CA root certificate (created on first start; default <state-dir>/ca/root-cert.pem)");
  app.add_option("--ca-key", opts.ca_key, "CA root key, mode 0600 (default <state-dir>/ca/root-key.pem)");
  app.add_option("--ca-socket", opts.ca_socket, "CA socket for ztunnel (default /var/run/zmesh/<node>/ca.sock)");
  app.add_option("--trust-domain", opts.trust_domain)->capture_default_str();
  app.add_option("--config-socket", opts.config_socket,
                 "config stream socket for ztunnel (default /var/run/zmesh/<node>/config.sock)");
  std::string default_policy = "upstream";
  app.add_option("--default-policy", default_policy,
                 "upstream (Istio's defaults) or zero-trust (STRICT mTLS mesh-wide; traffic only "
                 "within a namespace unless an AuthorizationPolicy allows another)")
      ->check(CLI::IsMember({"upstream", "zero-trust"}))
      ->capture_default_str();
  app.add_option("--root-namespace", opts.root_namespace,
                 "mesh-wide policy namespace (as ztunnel's; used for warnings)")
      ->capture_default_str();
  app.add_option("--log-level", log_level)->capture_default_str();
  app.add_option("--log-format", log_format, "text|json")->capture_default_str();
  auto* uninstall = app.add_subcommand(
      "uninstall", "remove every program, link and map the agent pinned for --node");
  uninstall->fallthrough();  // `uninstall --node x` sets the top-level --node
  std::string uninstall_manifests, uninstall_cni_bin, uninstall_cni_conf;
  uninstall->add_option("--manifests", uninstall_manifests,
                        "also remove the in-pod routing of the node's pods found here");
  uninstall->add_option("--cni-bin-dir", uninstall_cni_bin,
                        "also remove zmesh-cni from this CNI binary directory");
  uninstall->add_option("--cni-conf-dir", uninstall_cni_conf,
                        "also remove zmesh-cni from the network configurations here");
  CLI11_PARSE(app, argc, argv);

  zm::ConfigureLogging(log_level,
                       log_format == "json" ? zm::LogFormat::kJson : zm::LogFormat::kText);
  if (opts.admin_addr.empty()) opts.admin_addr = "127.0.0.1:15030";
  opts.default_policy = default_policy == "zero-trust" ? zm::mesh::DefaultPolicy::kZeroTrust
                                                       : zm::mesh::DefaultPolicy::kUpstream;
  opts.pin_dir = pin_root + "/" + opts.node;
  if (opts.zds_socket.empty()) opts.zds_socket = "/var/run/zmesh/" + opts.node + "/zds.sock";
  if (opts.ca_socket.empty()) opts.ca_socket = "/var/run/zmesh/" + opts.node + "/ca.sock";
  if (opts.config_socket.empty()) {
    opts.config_socket = "/var/run/zmesh/" + opts.node + "/config.sock";
  }
  if (state_dir.empty()) state_dir = "/var/lib/zmesh/" + opts.node;
  const zm::ca::RootFiles default_root = zm::ca::RootFilesIn(state_dir);
  if (opts.ca_cert.empty()) opts.ca_cert = default_root.cert;
  if (opts.ca_key.empty()) opts.ca_key = default_root.key;
  if (*uninstall) {
    return zm::agent::Uninstall(opts.pin_dir, opts.node, uninstall_manifests, uninstall_cni_bin,
                                uninstall_cni_conf, state_dir);
  }
  const int sources = !source.manifests.empty() + !source.kubeconfig.empty() + source.in_cluster;
  if (sources != 1 || opts.cgroup_root.empty()) {
    std::fprintf(stderr,
                 "zmesh-agent: --cgroup-root and exactly one of --manifests (local mode), "
                 "--kubeconfig or --in-cluster (cluster mode) are required to run\n");
    return 2;
  }
  opts.manifests = source.manifests;
  if (source.cluster()) {
    if (cluster.cni_socket.empty())
      cluster.cni_socket = "/var/run/zmesh/" + opts.node + "/cni.sock";
    cluster.cni.agent_socket = cluster.cni_socket;
    if (cluster.cni.plugin_binary.empty()) {
      // Beside this binary: both ship in the same image.
      std::error_code ec;
      auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
      cluster.cni.plugin_binary = (ec ? std::filesystem::path(argv[0]) : self).parent_path() /
                                  std::string(zm::cni::kPluginType);
    }
    opts.cni_state_file = state_dir + "/cni-pods.json";
  }
  if (opts.node_run_dir.empty()) opts.node_run_dir = "/var/run/zmesh/" + opts.node;
  return zm::agent::RunAgent(opts, source, std::move(cluster), ready_file);
}
