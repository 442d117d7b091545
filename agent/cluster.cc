#include "agent/cluster.h"

#include "common/base/log.h"
#include "common/base/status.h"
#include "common/base/strings.h"

namespace zm::agent {
namespace {

spdlog::logger& L() {
  static spdlog::logger& l = Log("agent");
  return l;
}

constexpr char kCniInstalledTask[] = "cni-installed";

}  // namespace

absl::StatusOr<std::unique_ptr<ClusterMode>> ClusterMode::Connect(ClusterOptions options) {
  std::unique_ptr<ClusterMode> c(new ClusterMode(std::move(options)));
  ZM_ASSIGN_OR_RETURN(c->client_, kube::KubeClient::Create(c->options_.kube));
  L().info("cluster mode: API server {} ({})", c->options_.kube.server, c->options_.kube.source);
  c->source_ = kube::KubeSource::Start(
      *c->client_, [self = c.get()](auto snapshot) { self->Deliver(std::move(snapshot)); }, {});
  return c;
}

void ClusterMode::Deliver(std::shared_ptr<const k8s::ManifestSnapshot> snapshot) {
  std::lock_guard lock(sink_mu_);
  if (sink_) sink_(std::move(snapshot));
}

std::shared_ptr<const k8s::ManifestSnapshot> ClusterMode::Follow(
    k8s::ObjectSource::Callback sink) {
  std::lock_guard lock(sink_mu_);  // a snapshot published now waits, then goes to `sink`
  sink_ = std::move(sink);
  return source_->Current();
}

ClusterMode::~ClusterMode() { Stop(); }

bool ClusterMode::WaitForSync(const std::function<bool()>& stopping) {
  int waited_s = 0;
  while (!source_->WaitForSync(std::chrono::milliseconds(500))) {
    if (stopping()) return false;
    if (++waited_s % 20 == 0) {
      std::string kinds;
      for (const std::string& k : source_->Unsynced())
        kinds += StrCat(kinds.empty() ? "" : ", ", k);
      L().warn("waiting for the API server: not synced yet: {}", kinds);
    }
  }
  return true;
}

void ClusterMode::Install(Agent& agent) {
  auto done = InstallCni(options_.cni);
  if (!done.ok()) {
    L().error(
        "CNI plugin not installed: {} (pods in enrolled namespaces cannot be enrolled at "
        "creation; retried when {} changes)",
        done.status().message(), options_.cni.conf_dir);
    agent.SetTaskPending(kCniInstalledTask, true);
    return;
  }
  if (done->binary_written) {
    L().info("CNI: installed {}/{}", options_.cni.bin_dir, cni::kPluginType);
  }
  agent.SetTaskPending(kCniInstalledTask, false);
}

absl::Status ClusterMode::Attach(Agent& agent) {
  status_ = std::make_unique<StatusWriter>(*client_, [src = source_.get()](const StatusTarget& t) {
    return src->ObservedStatus(t.ns, t.name, t.uid);
  });
  status_->Start();
  agent.SetStatusListener([writer = status_.get()](std::vector<StatusTarget> statuses) {
    writer->Post(std::move(statuses));
  });

  // The CNI configuration: watched first, so a change during the first install is not missed.
  agent.SetTaskPending(kCniInstalledTask, true);
  ZM_ASSIGN_OR_RETURN(conf_watcher_,
                      k8s::DirWatcher::Watch(options_.cni.conf_dir, "CNI configuration directory", {}));
  Install(agent);
  conf_watcher_->Start([this, &agent] { Install(agent); });

  ZM_ASSIGN_OR_RETURN(cni_server_, CniServer::Listen(options_.cni_socket));
  cni_thread_ = std::thread([this, &agent] {
    absl::Status st = cni_server_->Serve([&agent](cni::PodRequest request, CniServer::Reply reply) {
      agent.PostCni(std::move(request), std::move(reply));
    });
    if (!st.ok()) L().error("CNI socket: {}", st.message());
  });
  L().info("CNI socket {}; plugin in {}, chained in {}", options_.cni_socket, options_.cni.bin_dir,
           options_.cni.conf_dir);
  return absl::OkStatus();
}

void ClusterMode::Stop() {
  if (cni_server_) cni_server_->Shutdown();
  if (cni_thread_.joinable()) cni_thread_.join();
  conf_watcher_.reset();
  if (status_) status_->Stop();
  if (source_) source_->Stop();
  std::lock_guard lock(sink_mu_);
  sink_ = nullptr;
}

}  // namespace zm::agent
