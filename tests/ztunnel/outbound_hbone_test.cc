// Outbound routing and the HBONE client (ztunnel/outbound_hbone.h), plus PeerAuthentication on
// inbound plaintext. Routing decisions are tested as a pure function; the data path in-process
// on loopback: one Proxy serves a client pod's outbound listener and a server pod's 15008
// (InboundHbone), with certificates from a real mesh CA. The server pod's "own address" is
// 127.0.0.1 and its 15008 is a random port (OutboundHboneOptions::hbone_port).

#include "ztunnel/outbound_hbone.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>

#include "common/base/strings.h"
#include "common/k8s/manifest.h"
#include "common/tls/ca.h"
#include "common/tls/csr.h"
#include "common/tls/pem.h"
#include "tests/ztunnel/test_helpers.h"
#include "ztunnel/authorizer.h"
#include "ztunnel/inbound_hbone.h"
#include "ztunnel/metrics.h"
#include "ztunnel/workers.h"

namespace zm::ztunnel {
namespace {

using namespace zm::ztunnel::testing;

IpAddr Ip(const char* text) { return *IpAddr::Parse(text); }

mesh::Workload MakeWorkload(std::string uid, std::string ns, std::string name, std::string sa,
                            const char* ip, bool hbone) {
  mesh::Workload w;
  w.uid = std::move(uid);
  w.ns = std::move(ns);
  w.name = std::move(name);
  w.service_account = std::move(sa);
  w.node = "node1";
  w.phase = "Running";
  w.ips = {Ip(ip)};
  w.tunnel_protocol = hbone ? mesh::TunnelProtocol::kHbone : mesh::TunnelProtocol::kNone;
  return w;
}

// A Service `ns/name` with one VIP, port `port` -> `target` on each given workload.
mesh::Service MakeService(std::string ns, std::string name, const char* vip, uint16_t port,
                          const std::vector<std::pair<const mesh::Workload*, uint16_t>>& eps) {
  mesh::Service s;
  s.ns = std::move(ns);
  s.name = std::move(name);
  s.vips = {Ip(vip)};
  s.ports = {mesh::ServicePort{.name = "http", .port = port, .target_port = 0}};
  for (const auto& [w, target] : eps) {
    s.endpoints.push_back(mesh::ServiceEndpoint{
        .workload_uid = w->uid, .workload = w->key(), .ips = w->ips, .target_ports = {target}});
  }
  return s;
}

std::shared_ptr<const MeshView> View(mesh::Snapshot snap) {
  return std::make_shared<const MeshView>(std::make_shared<const mesh::Snapshot>(std::move(snap)));
}

size_t First(size_t) { return 0; }
size_t Last(size_t n) { return n - 1; }

// ---- routing decisions ----------------------------------------------------------------------

TEST(DecideOutboundRoute, NoSnapshotYetIsRefused) {
  auto r = DecideOutboundRoute(nullptr, {Ip("198.18.1.10"), 80}, "cluster.local", First);
  EXPECT_EQ(r.kind, OutboundRoute::Kind::kRefuse);
  EXPECT_EQ(r.refuse_reason, FailureReason::kNoConfig);
}

TEST(DecideOutboundRoute, MeshWorkloadGoesOverHboneWithItsIdentity) {
  mesh::Snapshot snap;
  snap.workloads = {MakeWorkload("u1", "demo", "server", "api", "198.18.2.10", true)};
  auto view = View(std::move(snap));
  auto r = DecideOutboundRoute(view.get(), {Ip("198.18.2.10"), 8080}, "cluster.local", First);
  ASSERT_EQ(r.kind, OutboundRoute::Kind::kHbone);
  EXPECT_EQ(r.target.ToString(), "198.18.2.10:8080");
  EXPECT_EQ(r.next_hop.ToString(), "198.18.2.10:15008");
  ASSERT_EQ(r.identities.size(), 1u);
  EXPECT_EQ(r.identities[0].ToString(), "spiffe://cluster.local/ns/demo/sa/api");
  EXPECT_EQ(r.destination_workload, "server");
  EXPECT_EQ(r.destination_namespace, "demo");
}

TEST(DecideOutboundRoute, EmptyServiceAccountIsDefault) {
  mesh::Snapshot snap;
  snap.workloads = {MakeWorkload("u1", "demo", "server", "", "198.18.2.10", true)};
  auto view = View(std::move(snap));
  auto r = DecideOutboundRoute(view.get(), {Ip("198.18.2.10"), 80}, "example.org", First);
  ASSERT_EQ(r.kind, OutboundRoute::Kind::kHbone);
  EXPECT_EQ(r.identities[0].ToString(), "spiffe://example.org/ns/demo/sa/default");
}

TEST(DecideOutboundRoute, WorkloadOutsideTheMeshAndUnknownAddressesPassThrough) {
  mesh::Snapshot snap;
  snap.workloads = {MakeWorkload("u1", "legacy", "web", "default", "198.18.2.20", false)};
  auto view = View(std::move(snap));
  auto r = DecideOutboundRoute(view.get(), {Ip("198.18.2.20"), 80}, "cluster.local", First);
  EXPECT_EQ(r.kind, OutboundRoute::Kind::kPassthrough);
  EXPECT_EQ(r.target.ToString(), "198.18.2.20:80");
  EXPECT_EQ(r.destination_workload, "web");
  r = DecideOutboundRoute(view.get(), {Ip("198.19.0.1"), 443}, "cluster.local", First);
  EXPECT_EQ(r.kind, OutboundRoute::Kind::kPassthrough);
  EXPECT_EQ(r.target.ToString(), "198.19.0.1:443");
  EXPECT_EQ(r.destination_workload, "");
}

TEST(DecideOutboundRoute, TerminalWorkloadIsNotAMeshDestination) {
  mesh::Snapshot snap;
  snap.workloads = {MakeWorkload("u1", "demo", "job", "default", "198.18.2.10", true)};
  snap.workloads[0].phase = "Succeeded";
  auto view = View(std::move(snap));
  auto r = DecideOutboundRoute(view.get(), {Ip("198.18.2.10"), 80}, "cluster.local", First);
  EXPECT_EQ(r.kind, OutboundRoute::Kind::kPassthrough);
}

TEST(DecideOutboundRoute, AnAddressClaimedTwiceIsRefusedNotGuessed) {
  mesh::Snapshot snap;
  snap.workloads = {MakeWorkload("u1", "demo", "a", "a", "198.18.2.10", true),
                    MakeWorkload("u2", "demo", "b", "b", "198.18.2.10", true)};
  auto view = View(std::move(snap));
  auto r = DecideOutboundRoute(view.get(), {Ip("198.18.2.10"), 80}, "cluster.local", First);
  EXPECT_EQ(r.kind, OutboundRoute::Kind::kRefuse);
  EXPECT_NE(r.detail.find("several workloads"), std::string::npos) << r.detail;
}

TEST(DecideOutboundRoute, ServiceVipGoesToAnEndpointsTargetPort) {
  mesh::Snapshot snap;
  snap.workloads = {MakeWorkload("u1", "demo", "a", "api", "198.18.1.10", true),
                    MakeWorkload("u2", "demo", "b", "api", "198.18.2.10", true),
                    MakeWorkload("u3", "demo", "c", "api", "198.18.2.11", false)};
  snap.services = {MakeService("demo", "api", "198.19.100.1", 80,
                               {{&snap.workloads[0], 8080},
                                {&snap.workloads[1], 8080},
                                {&snap.workloads[2], 9090}})};
  auto view = View(std::move(snap));
  auto r = DecideOutboundRoute(view.get(), {Ip("198.19.100.1"), 80}, "cluster.local", First);
  ASSERT_EQ(r.kind, OutboundRoute::Kind::kHbone);
  EXPECT_EQ(r.target.ToString(), "198.18.1.10:8080");
  EXPECT_EQ(r.next_hop.ToString(), "198.18.1.10:15008");
  EXPECT_EQ(r.service, "demo/api");
  EXPECT_EQ(r.destination_workload, "a");
  // An endpoint outside the mesh is reached in plain TCP, still on its target port.
  r = DecideOutboundRoute(view.get(), {Ip("198.19.100.1"), 80}, "cluster.local", Last);
  EXPECT_EQ(r.kind, OutboundRoute::Kind::kPassthrough);
  EXPECT_EQ(r.target.ToString(), "198.18.2.11:9090");
  EXPECT_EQ(r.service, "demo/api");
}

TEST(DecideOutboundRoute, ServiceWithoutThePortOrReadyEndpointsIsRefused) {
  mesh::Snapshot snap;
  snap.workloads = {MakeWorkload("u1", "demo", "a", "api", "198.18.1.10", true)};
  snap.workloads[0].phase = "Failed";
  snap.services = {MakeService("demo", "api", "198.19.100.1", 80, {{&snap.workloads[0], 8080}}),
                   MakeService("demo", "empty", "198.19.100.2", 80, {})};
  auto view = View(std::move(snap));
  auto r = DecideOutboundRoute(view.get(), {Ip("198.19.100.1"), 81}, "cluster.local", First);
  EXPECT_EQ(r.kind, OutboundRoute::Kind::kRefuse);
  EXPECT_EQ(r.refuse_reason, FailureReason::kNoEndpoint);
  EXPECT_NE(r.detail.find("no TCP port 81"), std::string::npos) << r.detail;
  r = DecideOutboundRoute(view.get(), {Ip("198.19.100.1"), 80}, "cluster.local", First);
  EXPECT_EQ(r.kind, OutboundRoute::Kind::kRefuse);
  EXPECT_NE(r.detail.find("no ready endpoint"), std::string::npos) << r.detail;
  r = DecideOutboundRoute(view.get(), {Ip("198.19.100.2"), 80}, "cluster.local", First);
  EXPECT_EQ(r.kind, OutboundRoute::Kind::kRefuse);
}

TEST(OutboundHeaders, ForwardedBaggageAndAFreshTraceparent) {
  PodInfo pod;
  pod.ns = "demo";
  pod.name = "client";
  auto h = OutboundHeaders(pod, Ip("198.18.1.10"));
  std::map<std::string, std::string> m;
  for (const auto& x : h) m[x.name] = x.value;
  EXPECT_EQ(m["forwarded"], "for=198.18.1.10");
  EXPECT_EQ(m["baggage"], "k8s.namespace.name=demo,k8s.pod.name=client");
  ASSERT_EQ(m["traceparent"].size(), 55u) << m["traceparent"];
  EXPECT_EQ(m["traceparent"].substr(0, 3), "00-");
  auto again = OutboundHeaders(pod, Ip("fd00::1"));
  for (const auto& x : again) {
    if (x.name == "forwarded") {
      EXPECT_EQ(x.value, "for=\"[fd00::1]\"");
    }
    if (x.name == "traceparent") {
      EXPECT_NE(x.value, m["traceparent"]);
    }
  }
}

// ---- the data path, in-process --------------------------------------------------------------

constexpr char kServerId[] = "spiffe://cluster.local/ns/demo/sa/server";
constexpr char kClientId[] = "spiffe://cluster.local/ns/demo/sa/client";

class OutboundHboneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/zm-outbound-hbone-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto ca = tls::CertificateAuthority::LoadOrCreate(dir_ + "/root-cert.pem",
                                                      dir_ + "/root-key.pem", "cluster.local",
                                                      SystemClock::Get());
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_.emplace(std::move(*ca));
    creds_[kServerId] = Issue(kServerId);
    creds_[kClientId] = Issue(kClientId);

    app_ = Listen4(64);
    app_port_ = LocalPort(app_.get());
    echo_ = std::thread([this] { EchoLoop(); });

    ProxyConfig config{.set_marks = false, .transparent_delivery = false};
    // Outbound: the "original destination" is whatever the test says; inbound plaintext: the app.
    config.outbound_dst = [this](int) -> absl::StatusOr<Endpoint> {
      std::lock_guard lock(mu_);
      return dst_;
    };
    config.inbound_dst = [this](int) -> absl::StatusOr<Endpoint> {
      return Endpoint{Ip("127.0.0.1"), app_port_};
    };
    proxy_ = std::make_unique<Proxy>(std::move(config), metrics_);
    HboneCredentialSource source{
        .get = [this](const tls::SpiffeId& id)
            -> absl::StatusOr<std::shared_ptr<const tls::Credentials>> {
          auto it = creds_.find(id.ToString());
          if (it == creds_.end()) return absl::NotFoundError("no such identity");
          return it->second;
        },
        .roots = [this] { return std::vector<std::string>{ca_->RootPem()}; }};
    inbound_ = std::make_unique<InboundHbone>(*proxy_, source);
    inbound_->Install();

    // The server pod's 15008: a listener on a random port, owned by worker 1.
    server_pod_ = Pod("uid-server", "server", "server");
    PodListenerFds server_fds;
    server_fds.hbone = *CreateListener({.ip = Ip("127.0.0.1"), .port = 0}, {.mark = 0});
    server_fds.inbound = *CreateListener({.ip = Ip("127.0.0.1"), .port = 0}, {.mark = 0});
    hbone_port_ = LocalPort(server_fds.hbone.get());
    plaintext_port_ = LocalPort(server_fds.inbound.get());
    server_listeners_ = std::make_shared<PodListeners>(workers_.ctx(1), *proxy_, server_pod_);
    ASSERT_TRUE(workers_.RunOn(1, [&] { return server_listeners_->Start(std::move(server_fds)); })
                    .ok());

    outbound_ = std::make_unique<OutboundHbone>(*proxy_, mesh_, source,
                                                OutboundHboneOptions{.hbone_port = hbone_port_});
    outbound_->AddWorker(workers_.ctx(0));
    outbound_->AddWorker(workers_.ctx(1));
    outbound_->Install();
    proxy_->SetMesh(&mesh_);
    proxy_->SetAuthorizer(&authz_);

    // The client pod's 15001, owned by worker 0.
    client_pod_ = Pod("uid-client", "client", "client");
    PodListenerFds client_fds;
    client_fds.outbound4 = *CreateListener({.ip = Ip("127.0.0.1"), .port = 0}, {.mark = 0});
    outbound_port_ = LocalPort(client_fds.outbound4.get());
    client_listeners_ = std::make_shared<PodListeners>(workers_.ctx(0), *proxy_, client_pod_);
    ASSERT_TRUE(workers_.RunOn(0, [&] { return client_listeners_->Start(std::move(client_fds)); })
                    .ok());
    SetDestination({Ip("127.0.0.1"), app_port_});
  }

  void TearDown() override {
    if (client_listeners_) workers_.RunOn(0, [&] { client_listeners_->Close(true); });
    if (server_listeners_) workers_.RunOn(1, [&] { server_listeners_->Close(true); });
    workers_.Stop();
    outbound_.reset();
    ::shutdown(app_.get(), SHUT_RDWR);
    stop_ = true;
    if (echo_.joinable()) echo_.join();
    std::filesystem::remove_all(dir_);
  }

  std::shared_ptr<PodInfo> Pod(std::string uid, std::string name, std::string sa) {
    auto p = std::make_shared<PodInfo>();
    p->uid = std::move(uid);
    p->name = std::move(name);
    p->ns = "demo";
    p->service_account = std::move(sa);
    p->hbone_tls = std::make_shared<HboneTlsCache>();
    return p;
  }

  std::shared_ptr<const tls::Credentials> Issue(const char* uri) {
    auto id = *tls::SpiffeId::Parse(uri);
    auto key = *tls::GenerateEcP256Key();
    auto csr = *tls::BuildCsr(key.get(), id);
    auto chain = ca_->Sign(csr, id, std::chrono::hours(1));
    EXPECT_TRUE(chain.ok()) << chain.status();
    auto creds = tls::Credentials::FromPem(*tls::PrivateKeyToPem(key.get()), *chain);
    EXPECT_TRUE(creds.ok()) << creds.status();
    return std::make_shared<const tls::Credentials>(std::move(*creds));
  }

  // Echoes each accepted connection until EOF, one thread per connection.
  void EchoLoop() {
    std::vector<std::thread> conns;
    while (!stop_) {
      Fd c = AcceptWithin(app_.get(), std::chrono::milliseconds(200));
      if (!c) continue;
      ++app_accepts_;
      conns.emplace_back([c = std::move(c)]() mutable {
        char buf[4096];
        for (;;) {
          ssize_t n = ::read(c.get(), buf, sizeof(buf));
          if (n <= 0) break;
          if (!SendAll(c.get(), std::string_view(buf, static_cast<size_t>(n)))) break;
        }
        ::shutdown(c.get(), SHUT_WR);
      });
    }
    for (auto& t : conns) t.join();
  }

  void SetDestination(Endpoint dst) {
    std::lock_guard lock(mu_);
    dst_ = dst;
  }

  // The mesh: the server pod at 127.0.0.1 (in the mesh, service account `server_sa`), the
  // client pod elsewhere, optionally a Service VIP and PeerAuthentications.
  void SetMesh(std::string server_sa = "server", std::vector<mesh::PeerAuthentication> pas = {},
               std::string policies_yaml = "") {
    mesh::Snapshot snap;
    snap.workloads = {MakeWorkload("uid-client", "demo", "client", "client", "127.0.0.5", true),
                      MakeWorkload("uid-server", "demo", "server", server_sa, "127.0.0.1", true)};
    snap.workloads[1].labels = {{"app", "server"}};
    snap.services = {
        MakeService("demo", "server", "198.19.100.1", 80, {{&snap.workloads[1], app_port_}})};
    snap.peer_authentications = std::move(pas);
    if (!policies_yaml.empty()) {
      auto parsed = k8s::ParseManifest(policies_yaml, "policies.yaml");
      EXPECT_TRUE(parsed.ok()) << parsed.status();
      EXPECT_TRUE(parsed->errors.empty()) << parsed->errors.front();
      snap.authorization_policies = parsed->authorization_policies;
    }
    mesh_.Update(std::make_shared<const mesh::Snapshot>(std::move(snap)));
    authz_.Recheck();  // as ztunnel's config thread does after every update
  }

  // A connection through the client pod's 15001 (or `port`) that echoes once, left open.
  Fd OpenEchoed(uint16_t port = 0) {
    Fd c = Connect4(port != 0 ? port : outbound_port_);
    EXPECT_TRUE(c);
    EXPECT_TRUE(SendAll(c.get(), "ping"));
    ReadResult r = ReadUntilEnd(c.get(), 4);
    EXPECT_EQ(r.data, "ping");
    return c;
  }

  // One connection through the client pod's 15001: sends `msg`, half-closes, reads to EOF.
  ReadResult RoundTrip(const std::string& msg, uint16_t port = 0) {
    Fd c = Connect4(port != 0 ? port : outbound_port_);
    if (!c) return ReadResult{};
    SendAll(c.get(), msg);
    ::shutdown(c.get(), SHUT_WR);
    return ReadUntilEnd(c.get());
  }

  std::string dir_;
  std::optional<tls::CertificateAuthority> ca_;
  std::map<std::string, std::shared_ptr<const tls::Credentials>> creds_;
  Fd app_;
  uint16_t app_port_ = 0;
  std::thread echo_;
  std::atomic<bool> stop_{false};
  std::atomic<int> app_accepts_{0};
  std::mutex mu_;
  Endpoint dst_;
  Metrics metrics_;
  MeshState mesh_;
  Authorizer authz_{mesh_, metrics_};
  Workers workers_{2};
  std::unique_ptr<Proxy> proxy_;
  std::unique_ptr<InboundHbone> inbound_;
  std::unique_ptr<OutboundHbone> outbound_;
  std::shared_ptr<PodInfo> server_pod_, client_pod_;
  std::shared_ptr<PodListeners> server_listeners_, client_listeners_;
  uint16_t hbone_port_ = 0, plaintext_port_ = 0, outbound_port_ = 0;
};

TEST_F(OutboundHboneTest, WithoutAMeshSnapshotOutboundIsRefused) {
  auto r = RoundTrip("hello");
  EXPECT_EQ(r.data, "");
  EXPECT_TRUE(WaitFor([&] { return metrics_.Failures(FailureReason::kNoConfig) == 1; }));
  EXPECT_EQ(app_accepts_.load(), 0);
}

TEST_F(OutboundHboneTest, RelaysOverHboneAndPoolsOneConnection) {
  SetMesh();
  for (int i = 0; i < 3; ++i) {
    std::string msg = StrCat("hello ", i, std::string(100'000, 'x'));
    auto r = RoundTrip(msg);
    EXPECT_EQ(r.data, msg) << "round trip " << i;
  }
  EXPECT_EQ(app_accepts_.load(), 3);
  std::string m = metrics_.Render();
  // Both ends counted: reporter=source (this outbound) and reporter=destination (15008).
  EXPECT_NE(m.find("istio_tcp_connections_opened_total{reporter=\"source\",source_workload="
                   "\"client\",source_workload_namespace=\"demo\",destination_workload=\"server\""),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("reporter=\"destination\""), std::string::npos) << m;
  // One pooled HBONE connection carried the three streams.
  EXPECT_EQ(metrics_.Failures(FailureReason::kHboneConnect), 0u);
  EXPECT_EQ(workers_.RunOn(0,
                           [&] { return outbound_->ConnectionCount(workers_.ctx(0).get_executor()); }),
            1u);
}

TEST_F(OutboundHboneTest, ServiceVipIsSentToItsEndpointOverHbone) {
  SetMesh();
  SetDestination({Ip("198.19.100.1"), 80});
  auto r = RoundTrip("via the service");
  EXPECT_EQ(r.data, "via the service");
  EXPECT_EQ(app_accepts_.load(), 1);
}

TEST_F(OutboundHboneTest, ServerWithAnotherIdentityIsRefusedBySecureNaming) {
  // The mesh says the server runs as "api"; it presents ".../sa/server": the client aborts.
  SetMesh("api");
  auto r = RoundTrip("secret");
  EXPECT_EQ(r.data, "");
  EXPECT_TRUE(WaitFor([&] { return metrics_.Failures(FailureReason::kHboneConnect) == 1; }));
  EXPECT_EQ(app_accepts_.load(), 0);
  // Nothing is stuck: with the right identity the next connection goes through.
  SetMesh("server");
  auto ok = RoundTrip("now fine");
  EXPECT_EQ(ok.data, "now fine");
}

TEST_F(OutboundHboneTest, PlaintextInboundFollowsPeerAuthentication) {
  // No snapshot: plaintext refused (fail closed).
  EXPECT_EQ(RoundTrip("x", plaintext_port_).data, "");
  EXPECT_TRUE(WaitFor([&] { return metrics_.Failures(FailureReason::kNoConfig) == 1; }));
  // Default PERMISSIVE: accepted.
  SetMesh();
  EXPECT_EQ(RoundTrip("plain ok", plaintext_port_).data, "plain ok");
  // (The relay may finish just after the client saw EOF; until then the re-check below would
  // count it too.)
  ASSERT_TRUE(WaitFor([&] { return authz_.live() == 0; }));
  // Namespace STRICT: refused with a reset, the app never sees it.
  mesh::PeerAuthentication strict{.name = "strict", .ns = "demo", .mode = mesh::MtlsMode::kStrict};
  SetMesh("server", {strict});
  int before = app_accepts_.load();
  EXPECT_EQ(RoundTrip("plain refused", plaintext_port_).data, "");
  EXPECT_TRUE(WaitFor([&] { return metrics_.Failures(FailureReason::kMtlsRequired) == 1; }));
  EXPECT_EQ(app_accepts_.load(), before);
  // ... while HBONE to the same port still works.
  EXPECT_EQ(RoundTrip("tunnelled").data, "tunnelled");
  // A port-level PERMISSIVE for the app's port under the STRICT namespace lets plaintext in.
  mesh::PeerAuthentication port_level{.name = "server-port",
                                      .ns = "demo",
                                      .selector = {},
                                      .mode = std::nullopt};
  port_level.selector = {{"app", "server"}};
  port_level.port_level[app_port_] = mesh::MtlsMode::kPermissive;
  mesh::Snapshot snap;
  snap.workloads = {MakeWorkload("uid-server", "demo", "server", "server", "127.0.0.1", true)};
  snap.workloads[0].labels = {{"app", "server"}};
  snap.peer_authentications = {strict, port_level};
  mesh_.Update(std::make_shared<const mesh::Snapshot>(std::move(snap)));
  EXPECT_EQ(RoundTrip("port permissive", plaintext_port_).data, "port permissive");
}

constexpr char kDenyClient[] = R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-client, namespace: demo}
spec:
  selector: {matchLabels: {app: server}}
  action: DENY
  rules: [{from: [{source: {principals: [cluster.local/ns/demo/sa/client]}}]}]
)";

constexpr char kAllowOtherNamespaceOnly[] = R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: from-other, namespace: demo}
spec:
  rules: [{from: [{source: {namespaces: [other]}}]}]
)";

TEST_F(OutboundHboneTest, HboneConnectDeniedByPolicyNeverReachesTheApp) {
  SetMesh("server", {}, kDenyClient);
  auto r = RoundTrip("secret");
  EXPECT_EQ(r.data, "");
  EXPECT_TRUE(WaitFor([&] { return metrics_.Failures(FailureReason::kPolicyDenied) == 1; }));
  EXPECT_EQ(metrics_.Denials({.policy = "demo/deny-client",
                              .destination_workload = "server",
                              .destination_namespace = "demo"}),
            1u);
  // The CONNECT got 401: the client side counts a rejected HBONE stream.
  EXPECT_TRUE(WaitFor([&] { return metrics_.Failures(FailureReason::kHboneRejected) == 1; }));
  EXPECT_EQ(app_accepts_.load(), 0);
  EXPECT_NE(metrics_.Render().find("zmesh_authorization_denials_total{hop=\"ztunnel\","
                                   "policy=\"demo/deny-client\",destination_workload=\"server\""),
            std::string::npos);
}

TEST_F(OutboundHboneTest, AllowPolicyThatDoesNotMatchDeniesAndOneThatMatchesAdmits) {
  SetMesh("server", {}, kAllowOtherNamespaceOnly);
  EXPECT_EQ(RoundTrip("from demo").data, "");
  EXPECT_TRUE(WaitFor([&] { return metrics_.Failures(FailureReason::kPolicyDenied) == 1; }));
  // An unmatched ALLOW: no policy named in the counter.
  EXPECT_EQ(metrics_.Denials(
                {.policy = "", .destination_workload = "server", .destination_namespace = "demo"}),
            1u);
  SetMesh("server", {}, std::string(kAllowOtherNamespaceOnly) + R"(---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: from-demo, namespace: demo}
spec:
  rules: [{from: [{source: {namespaces: [demo]}}]}]
)");
  EXPECT_EQ(RoundTrip("now allowed").data, "now allowed");
}

TEST_F(OutboundHboneTest, APolicyChangeClosesALiveHboneConnection) {
  SetMesh();
  Fd c = OpenEchoed();
  EXPECT_EQ(authz_.live(), 1u);
  // A policy unrelated to this connection leaves it alone.
  SetMesh("server", {}, R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-other, namespace: demo}
spec: {action: DENY, rules: [{from: [{source: {namespaces: [other]}}]}]}
)");
  ASSERT_TRUE(SendAll(c.get(), "pong"));
  EXPECT_EQ(ReadUntilEnd(c.get(), 4).data, "pong");
  // The new policy denies it: the stream is reset, the client sees the connection end.
  SetMesh("server", {}, kDenyClient);
  ReadResult r = ReadUntilEnd(c.get());
  EXPECT_FALSE(r.timed_out);
  EXPECT_TRUE(r.error == ECONNRESET || r.eof) << r.error;
  EXPECT_TRUE(WaitFor([&] { return metrics_.Failures(FailureReason::kPolicyDenied) == 1; }));
  EXPECT_TRUE(WaitFor([&] { return authz_.live() == 0; }));
}

TEST_F(OutboundHboneTest, APeerAuthenticationChangeClosesALivePlaintextConnection) {
  SetMesh();
  Fd c = OpenEchoed(plaintext_port_);
  EXPECT_EQ(authz_.live(), 1u);
  mesh::PeerAuthentication strict{.name = "strict", .ns = "demo", .mode = mesh::MtlsMode::kStrict};
  SetMesh("server", {strict});
  ReadResult r = ReadUntilEnd(c.get());
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.error, ECONNRESET);
  EXPECT_TRUE(WaitFor([&] { return metrics_.Failures(FailureReason::kMtlsRequired) == 1; }));
  EXPECT_TRUE(WaitFor([&] { return authz_.live() == 0; }));
}

TEST_F(OutboundHboneTest, FinishedConnectionsAreForgotten) {
  SetMesh();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(RoundTrip("x").data, "x");
  EXPECT_EQ(RoundTrip("y", plaintext_port_).data, "y");
  EXPECT_TRUE(WaitFor([&] { return authz_.live() == 0; }));
}

}  // namespace
}  // namespace zm::ztunnel
