// The agent's answers to zmesh-cni (DESIGN §3 "no bypass window"), with the real control loop, a
// real ZDS socket and a scripted ztunnel, and fakes for the maps and the pod netns: an ADD is
// answered only once the pod is enrolled (ztunnel acked, maps written), a pod outside the mesh
// passes at once, a pod the informer has not delivered yet waits for it, a timeout says why, DEL
// un-enrolls, CHECK reports, and a restart adopts a pod enrolled through its ADD.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <future>
#include <thread>

#include "agent/agent.h"
#include "common/base/unix_socket.h"
#include "common/mesh/workload.h"
#include "common/zds/zds.h"
#include "tests/testutil/fake_datapath.h"
#include "tests/testutil/temp_dir.h"
#include "tests/testutil/wait.h"

namespace zm::agent {
namespace {

using ::testing::HasSubstr;

constexpr char kNode[] = "node-a";

// Netns by path: any fd stands in for one; each path has its cookie.
class FakeNetns : public PodNetns {
 public:
  absl::StatusOr<Fd> Open(const std::string& netns) override {
    std::lock_guard lock(mu_);
    auto it = cookies_.find(netns);
    if (it == cookies_.end()) return absl::NotFoundError("open netns " + netns + ": ENOENT");
    Fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    by_fd_[fd.get()] = it->second;
    return fd;
  }
  absl::StatusOr<uint64_t> Cookie(int fd) override {
    std::lock_guard lock(mu_);
    return by_fd_.at(fd);
  }
  absl::Status InstallRouting(int) override { return absl::OkStatus(); }
  void Add(const std::string& path, uint64_t cookie) {
    std::lock_guard lock(mu_);
    cookies_[path] = cookie;
  }

 private:
  std::mutex mu_;
  std::map<std::string, uint64_t> cookies_;
  std::map<int, uint64_t> by_fd_;
};

// A ztunnel on the ZDS socket: Hello, then an Ack (with a listener for Adds) for every request.
class ScriptedZtunnel {
 public:
  explicit ScriptedZtunnel(const std::string& path) {
    auto c = ConnectUnix(path, SOCK_SEQPACKET);
    EXPECT_TRUE(c.ok()) << c.status();
    conn_ = std::move(*c);
    EXPECT_TRUE(zds::SendDatagram(conn_.get(), zds::EncodeHello({})).ok());
    thread_ = std::thread([this] {
      while (true) {
        auto d = zds::RecvDatagram(conn_.get());
        if (!d.ok()) return;
        auto req = zds::DecodeRequest(std::move(*d));
        if (!req.ok()) return;
        if (std::holds_alternative<zds::AddWorkload>(*req)) {
          ++adds;
          Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
          if (!zds::SendAck(conn_.get(), "", {listener.get()}).ok()) return;
        } else if (!zds::SendAck(conn_.get(), "").ok()) {
          return;
        }
      }
    });
  }
  ~ScriptedZtunnel() {
    ::shutdown(conn_.get(), SHUT_RDWR);
    thread_.join();
  }
  std::atomic<int> adds{0};

 private:
  Fd conn_;
  std::thread thread_;
};

k8s::Namespace Ns(std::string name, bool ambient) {
  k8s::Namespace ns{.name = std::move(name)};
  if (ambient) ns.labels[std::string(mesh::kDataplaneModeLabel)] = "ambient";
  return ns;
}

// As the API server has it at CNI ADD time: scheduled, no IP, no netns.
k8s::Pod Pod(std::string ns, std::string name) {
  return {.uid = "u-" + name,
          .name = name,
          .namespace_name = std::move(ns),
          .service_account = "sa-" + name,
          .node_name = kNode,
          .phase = "Pending"};
}

std::shared_ptr<const k8s::ManifestSnapshot> Objects(std::vector<k8s::Pod> pods) {
  auto s = std::make_shared<k8s::ManifestSnapshot>();
  s->namespaces = {Ns("demo", true), Ns("legacy", false)};
  std::sort(pods.begin(), pods.end(), [](const k8s::Pod& a, const k8s::Pod& b) {
    return std::tie(a.namespace_name, a.name) < std::tie(b.namespace_name, b.name);
  });
  s->pods = std::move(pods);
  return s;
}

cni::PodRequest Add(const std::string& ns, const std::string& name, int64_t timeout_ms = 10000) {
  return {.command = cni::Command::kAdd,
          .container_id = "c-" + name,
          .netns = "/var/run/netns/" + name,
          .ifname = "eth0",
          .pod_namespace = ns,
          .pod_name = name,
          .pod_uid = "u-" + name,
          .ips = {"10.0.0.7"},
          .timeout_ms = timeout_ms};
}

class AgentCniTest : public ::testing::Test {
 protected:
  void SetUp() override {
    netns_.Add("/var/run/netns/web", 1001);
    netns_.Add("/var/run/netns/late", 1002);
    netns_.Add("/var/run/netns/old", 1003);
    StartAgent(Objects({Pod("demo", "web"), Pod("legacy", "old")}));
  }
  void TearDown() override { StopAgent(); }

  void StartAgent(std::shared_ptr<const k8s::ManifestSnapshot> objects) {
    auto zds = ZdsServer::Listen(dir_.File("zds.sock"));
    ASSERT_TRUE(zds.ok()) << zds.status();
    zds_ = std::move(*zds);
    agent_ = std::make_unique<Agent>(
        AgentOptions{.node = kNode, .cni_state_file = dir_.File("state/cni-pods.json")}, datapath_,
        *zds_, netns_);
    agent_->SetStatusListener([this](std::vector<StatusTarget> s) {
      std::lock_guard lock(mu_);
      statuses_ = std::move(s);
    });
    ASSERT_TRUE(agent_->Start(std::move(objects)).ok());
    run_ = std::thread([this] { agent_->Run(); });
  }
  void StopAgent() {
    if (!agent_) return;
    agent_->Stop();
    run_.join();
    ztunnel_.reset();
    agent_.reset();
    zds_.reset();
  }
  void ConnectZtunnel() {
    ztunnel_ = std::make_unique<ScriptedZtunnel>(dir_.File("zds.sock"));
    auto conn = zds_->Accept();
    ASSERT_TRUE(conn.ok());
    agent_->PostZtunnel(std::move(*conn));
  }
  std::future<cni::PodReply> Post(cni::PodRequest r) {
    auto p = std::make_shared<std::promise<cni::PodReply>>();
    agent_->PostCni(std::move(r), [p](const cni::PodReply& reply) { p->set_value(reply); });
    return p->get_future();
  }
  static bool Answered(std::future<cni::PodReply>& f, std::chrono::milliseconds within) {
    return f.wait_for(within) == std::future_status::ready;
  }
  std::optional<std::string> Status(const std::string& name) {
    std::lock_guard lock(mu_);
    for (const auto& t : statuses_) {
      if (t.name == name) return t.value;
    }
    return std::nullopt;
  }
  bool Captured(uint64_t cookie) { return datapath_.netns.contains(cookie); }

  testutil::TempDir dir_{"zmesh-agent-cni"};
  testutil::FakeDatapath datapath_;
  FakeNetns netns_;
  std::unique_ptr<ZdsServer> zds_;
  std::unique_ptr<Agent> agent_;
  std::unique_ptr<ScriptedZtunnel> ztunnel_;
  std::thread run_;
  std::mutex mu_;
  std::vector<StatusTarget> statuses_;
};

TEST_F(AgentCniTest, AddIsAnsweredOnlyOnceThePodIsEnrolled) {
  auto answer = Post(Add("demo", "web"));
  // No ztunnel: the pod cannot be enrolled, so no answer (the runtime keeps the sandbox waiting).
  ASSERT_TRUE(testutil::WaitFor([&] { return agent_->View()->cni_waiting == 1; }));
  EXPECT_FALSE(Answered(answer, std::chrono::milliseconds(300)));
  EXPECT_FALSE(Captured(1001));
  ASSERT_TRUE(testutil::WaitFor([&] { return Status("web") == "pending"; }));

  ConnectZtunnel();
  ASSERT_TRUE(Answered(answer, std::chrono::seconds(10)));
  cni::PodReply r = answer.get();
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.state, "enrolled");
  // By the time the answer went out: ztunnel had it, and the maps capture it with the CNI's IP.
  EXPECT_EQ(ztunnel_->adds, 1);
  EXPECT_TRUE(Captured(1001));
  EXPECT_TRUE(datapath_.pod_ips.contains(*IpAddr::Parse("10.0.0.7")));
  EXPECT_TRUE(datapath_.links.contains(1001));
  ASSERT_TRUE(testutil::WaitFor([&] { return Status("web") == "enrolled"; }));
}

TEST_F(AgentCniTest, APodOutsideTheMeshPassesAtOnce) {
  auto answer = Post(Add("legacy", "old"));
  ASSERT_TRUE(Answered(answer, std::chrono::seconds(5)));
  cni::PodReply r = answer.get();
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.state, "not-in-mesh");
  EXPECT_FALSE(Captured(1003));
  // Not known from the API yet, but its namespace is not in the mesh: no need to wait.
  auto unknown = Post(Add("legacy", "brand-new"));
  ASSERT_TRUE(Answered(unknown, std::chrono::seconds(5)));
  EXPECT_EQ(unknown.get().state, "not-in-mesh");
}

TEST_F(AgentCniTest, APodTheInformerHasNotDeliveredYetWaitsForIt) {
  ConnectZtunnel();
  auto answer = Post(Add("demo", "late"));
  EXPECT_FALSE(Answered(answer, std::chrono::milliseconds(300)));  // service account unknown
  agent_->PostManifests(Objects({Pod("demo", "web"), Pod("legacy", "old"), Pod("demo", "late")}));
  ASSERT_TRUE(Answered(answer, std::chrono::seconds(10)));
  cni::PodReply r = answer.get();
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.state, "enrolled");
  EXPECT_TRUE(Captured(1002));
}

TEST_F(AgentCniTest, ATimeoutSaysWhatTheAddWaitedFor) {
  auto answer = Post(Add("demo", "web", /*timeout_ms=*/200));
  ASSERT_TRUE(Answered(answer, std::chrono::seconds(5)));
  cni::PodReply r = answer.get();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.retry);
  EXPECT_THAT(r.error, HasSubstr("demo/web: not enrolled in time: waiting for ztunnel"));
}

TEST_F(AgentCniTest, DelUnenrollsAndCheckReports) {
  ConnectZtunnel();
  auto added = Post(Add("demo", "web"));
  ASSERT_TRUE(Answered(added, std::chrono::seconds(10)));
  ASSERT_TRUE(added.get().ok);
  cni::PodRequest check = Add("demo", "web");
  check.command = cni::Command::kCheck;
  auto checked = Post(check);
  ASSERT_TRUE(Answered(checked, std::chrono::seconds(5)));
  EXPECT_EQ(checked.get().state, "enrolled");

  cni::PodRequest del = Add("demo", "web");
  del.command = cni::Command::kDel;
  del.netns.clear();
  auto deleted = Post(del);
  ASSERT_TRUE(Answered(deleted, std::chrono::seconds(5)));
  cni::PodReply r = deleted.get();
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.state, "removed");
  EXPECT_FALSE(Captured(1001));  // un-enrolled before the answer
  EXPECT_FALSE(datapath_.links.contains(1001));

  auto after = Post(check);
  ASSERT_TRUE(Answered(after, std::chrono::seconds(5)));
  cni::PodReply c = after.get();
  EXPECT_FALSE(c.ok);
  EXPECT_THAT(c.error, HasSubstr("demo/web"));
}

TEST_F(AgentCniTest, ARestartAdoptsPodsEnrolledThroughTheirAdd) {
  ConnectZtunnel();
  auto added = Post(Add("demo", "web"));
  ASSERT_TRUE(Answered(added, std::chrono::seconds(10)));
  ASSERT_TRUE(added.get().ok);
  StopAgent();
  datapath_.ops.clear();
  // The API server knows the IP by now; the netns only the agent's state file remembers.
  k8s::Pod web = Pod("demo", "web");
  web.pod_ips = {"10.0.0.7"};
  web.phase = "Running";
  StartAgent(Objects({web, Pod("legacy", "old")}));
  EXPECT_TRUE(Captured(1001));  // adopted, not un-enrolled
  for (const std::string& op : datapath_.ops) {
    EXPECT_THAT(op, ::testing::Not(HasSubstr("DeleteNetns"))) << "capture was interrupted";
  }
}

}  // namespace
}  // namespace zm::agent
