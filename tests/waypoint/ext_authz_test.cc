// CUSTOM providers (waypoint/ext_authz.h): MeshConfig parsing with errors that name the field,
// and the HTTP check failing closed (unreachable, silent, garbage) unless failOpen.
#include "waypoint/ext_authz.h"
#include "waypoint/ext_authz_grpc.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "envoy/service/auth/v3/external_auth.grpc.pb.h"

namespace zm::waypoint {
namespace {

using ::testing::HasSubstr;

TEST(MeshConfigProvidersTest, ReadsAnHttpProvider) {
  auto p = ParseMeshConfigProviders(R"(
defaultConfig: {}
extensionProviders:
- name: ext
  envoyExtAuthzHttp:
    service: ext-authz.foo.svc.cluster.local
    port: 8000
    pathPrefix: /check
    timeout: 250ms
    failOpen: true
    statusOnError: "503"
    includeRequestHeadersInCheck: [X-Ext-Authz]
    headersToUpstreamOnAllow: [x-user]
    headersToDownstreamOnDeny: [x-why]
- name: tracing
  zipkin: {service: zipkin.istio-system, port: 9411}
)",
                                    "mesh.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->size(), 1u);  // zipkin is no authorizer
  const ExtAuthzProvider& e = (*p)[0];
  EXPECT_EQ(e.name, "ext");
  EXPECT_EQ(e.port, 8000);
  EXPECT_EQ(e.path_prefix, "/check");
  EXPECT_EQ(e.timeout, std::chrono::milliseconds(250));
  EXPECT_TRUE(e.fail_open);
  EXPECT_EQ(e.status_on_error, 503);
  EXPECT_EQ(e.include_request_headers, std::vector<std::string>{"x-ext-authz"});
}

TEST(MeshConfigProvidersTest, ErrorsNameTheFileProviderAndField) {
  struct Case {
    const char* yaml;
    const char* error;
  } cases[] = {
      {"extensionProviders: [{name: e, envoyExtAuthzHttp: {service: s, port: 1, bogus: 1}}]",
       "m.yaml: extensionProviders[0] (e).envoyExtAuthzHttp.bogus: unknown field"},
      {"extensionProviders: [{name: e, envoyExtAuthzHttp: {service: s, port: 70000}}]",
       "envoyExtAuthzHttp.port: not a port"},
      {"extensionProviders: [{name: e, envoyExtAuthzHttp: {port: 80}}]",
       "envoyExtAuthzHttp.service: missing"},
      {"extensionProviders: [{name: e, envoyExtAuthzGrpc: {service: s, port: 80, pathPrefix: /x}}]",
       "envoyExtAuthzGrpc.pathPrefix: unknown field"},
      {"extensionProviders: [{name: e, envoyExtAuthzHttp: {service: s, port: 80, timeout: soon}}]",
       "timeout: not a duration"},
      {"extensionProviders: [{name: e, envoyExtAuthzHttp: {service: s, port: 80}}, "
       "{name: e, envoyExtAuthzHttp: {service: s, port: 81}}]",
       "(e): a provider of that name is already defined"},
      {"extensionProviders: [{envoyExtAuthzHttp: {service: s, port: 80}}]", "needs a name"},
      {"extensionProviders: {a: b}", "extensionProviders: not a list"},
      {"[unclosed", "m.yaml: not YAML"},
  };
  for (const Case& c : cases) {
    auto p = ParseMeshConfigProviders(c.yaml, "m.yaml");
    ASSERT_FALSE(p.ok()) << c.yaml;
    EXPECT_THAT(std::string(p.status().message()), HasSubstr(c.error)) << c.yaml;
  }
}

// Runs one check against `port` on 127.0.0.1 and returns its result.
ExtAuthzResult Check(ExtAuthzProvider provider, uint16_t port) {
  asio::io_context io;
  RequestHead head;
  head.method = "GET";
  head.path = "/x";
  head.authority = "svc:80";
  std::optional<ExtAuthzResult> out;
  CheckHttp(io.get_executor(), provider, Endpoint{*IpAddr::Parse("127.0.0.1"), port}, head,
            [&](ExtAuthzResult r) { out = std::move(r); });
  io.run();
  EXPECT_TRUE(out.has_value());
  return out.value_or(ExtAuthzResult{});
}

uint16_t ClosedPort() {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();  // closed again when `a` goes
}

TEST(ExtAuthzHttpTest, AnUnreachableProviderDeniesWithStatusOnError) {
  ExtAuthzProvider p{.name = "ext", .status_on_error = 503};
  ExtAuthzResult r = Check(p, ClosedPort());
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.detail, HasSubstr("connect to 127.0.0.1:"));
}

TEST(ExtAuthzHttpTest, FailOpenAllowsWhenTheProviderIsUnreachable) {
  ExtAuthzProvider p{.name = "ext", .fail_open = true};
  ExtAuthzResult r = Check(p, ClosedPort());
  EXPECT_TRUE(r.allowed);
  EXPECT_THAT(r.detail, HasSubstr("failOpen"));
}

// A server that accepts and answers `reply` (or nothing) then closes.
class OneShotServer {
 public:
  explicit OneShotServer(std::string reply, bool answer = true)
      : acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this, reply, answer] {
      asio::ip::tcp::socket s(io_);
      asio::error_code ec;
      acceptor_.accept(s, ec);
      if (ec) return;
      char buf[4096];
      s.read_some(asio::buffer(buf), ec);  // the check request
      if (answer) asio::write(s, asio::buffer(reply), ec);
      if (!answer) std::this_thread::sleep_for(std::chrono::milliseconds(600));
      s.close(ec);
    });
  }
  ~OneShotServer() { thread_.join(); }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  std::thread thread_;
};

TEST(ExtAuthzHttpTest, ASilentProviderTimesOutAndDenies) {
  OneShotServer server("", /*answer=*/false);
  ExtAuthzProvider p{.name = "ext", .timeout = std::chrono::milliseconds(200)};
  ExtAuthzResult r = Check(p, server.port());
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(r.detail, HasSubstr("no answer within 200 ms"));
}

TEST(ExtAuthzHttpTest, GarbageFromTheProviderDenies) {
  OneShotServer server("garbage\r\n\r\n");
  ExtAuthzResult r = Check(ExtAuthzProvider{.name = "ext"}, server.port());
  EXPECT_FALSE(r.allowed);
  EXPECT_THAT(r.detail, HasSubstr("not an HTTP/1.x response"));
}

TEST(ExtAuthzHttpTest, ADenyCarriesTheProvidersStatusBodyAndListedHeaders) {
  OneShotServer server(
      "HTTP/1.1 429 Too Many\r\nx-why: slow down\r\nx-other: no\r\ncontent-length: 4\r\n\r\nbusy");
  ExtAuthzProvider p{.name = "ext", .headers_to_downstream_on_deny = {"x-why"}};
  ExtAuthzResult r = Check(p, server.port());
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.body, "busy");
  ASSERT_EQ(r.downstream_headers.size(), 1u);
  EXPECT_EQ(r.downstream_headers[0].value, "slow down");
}

TEST(ExtAuthzHttpTest, AnAllowCarriesTheListedHeadersUpstream) {
  OneShotServer server("HTTP/1.1 200 OK\r\nx-user: alice\r\ncontent-length: 0\r\n\r\n");
  ExtAuthzProvider p{.name = "ext", .headers_to_upstream_on_allow = {"x-user"}};
  ExtAuthzResult r = Check(p, server.port());
  EXPECT_TRUE(r.allowed);
  ASSERT_EQ(r.upstream_headers.size(), 1u);
  EXPECT_EQ(r.upstream_headers[0].name, "x-user");
}

// ---- gRPC (envoy.service.auth.v3) --------------------------------------------------------

namespace v3 = ::envoy::service::auth::v3;

// An authorizer that allows requests with x-ext-authz: allow (adding x-user upstream) and denies
// the rest with 429, a header and a body; it records what it was asked.
class FakeAuthorizer final : public v3::Authorization::Service {
 public:
  grpc::Status Check(grpc::ServerContext*, const v3::CheckRequest* req,
                     v3::CheckResponse* resp) override {
    {
      std::lock_guard lock(mu);
      last = *req;
    }
    const auto& headers = req->attributes().request().http().headers();
    auto it = headers.find("x-ext-authz");
    if (it != headers.end() && it->second == "allow") {
      resp->mutable_status()->set_code(0);
      auto* h = resp->mutable_ok_response()->add_headers()->mutable_header();
      h->set_key("x-user");
      h->set_value("alice");
    } else {
      resp->mutable_status()->set_code(7);  // PERMISSION_DENIED
      auto* d = resp->mutable_denied_response();
      d->mutable_status()->set_code(429);
      d->set_body("slow down");
      auto* h = d->add_headers()->mutable_header();
      h->set_key("x-why");
      h->set_value("quota");
    }
    return grpc::Status::OK;
  }
  std::mutex mu;
  v3::CheckRequest last;
};

class GrpcExtAuthzTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(&authorizer_);
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override { server_->Shutdown(); }

  ExtAuthzResult Run(std::vector<HttpHeader> headers, uint16_t port) {
    asio::io_context io;
    auto guard = asio::make_work_guard(io);
    RequestHead head;
    head.method = "POST";
    head.path = "/orders?id=1";
    head.authority = "orders.demo:8080";
    head.headers = std::move(headers);
    std::optional<ExtAuthzResult> out;
    ExtAuthzProvider p{.name = "grpc-ext", .kind = ExtAuthzProvider::Kind::kGrpc,
                       .timeout = std::chrono::milliseconds(2000)};
    client_.Check(io.get_executor(), p, Endpoint{*IpAddr::Parse("127.0.0.1"), port}, head,
                  CheckParties{.source_principal = "cluster.local/ns/demo/sa/client",
                               .source_ip = *IpAddr::Parse("198.18.1.10"),
                               .destination = Endpoint{*IpAddr::Parse("198.18.2.10"), 8080}},
                  [&](ExtAuthzResult r) {
                    out = std::move(r);
                    guard.reset();
                  });
    io.run_for(std::chrono::seconds(10));
    EXPECT_TRUE(out.has_value());
    return out.value_or(ExtAuthzResult{});
  }

  FakeAuthorizer authorizer_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  GrpcExtAuthz client_;
};

TEST_F(GrpcExtAuthzTest, AnOkStatusAllowsAndCarriesItsHeadersUpstream) {
  ExtAuthzResult r = Run({{"X-Ext-Authz", "allow"}}, static_cast<uint16_t>(port_));
  EXPECT_TRUE(r.allowed) << r.detail;
  ASSERT_EQ(r.upstream_headers.size(), 1u);
  EXPECT_EQ(r.upstream_headers[0].name, "x-user");
  std::lock_guard lock(authorizer_.mu);
  const auto& a = authorizer_.last.attributes();
  EXPECT_EQ(a.source().principal(), "spiffe://cluster.local/ns/demo/sa/client");
  EXPECT_EQ(a.source().address().socket_address().address(), "198.18.1.10");
  EXPECT_EQ(a.destination().address().socket_address().port_value(), 8080u);
  EXPECT_EQ(a.request().http().method(), "POST");
  EXPECT_EQ(a.request().http().path(), "/orders?id=1");
  EXPECT_EQ(a.request().http().host(), "orders.demo:8080");
}

TEST_F(GrpcExtAuthzTest, ADeniedResponseIsTheAnswer) {
  ExtAuthzResult r = Run({}, static_cast<uint16_t>(port_));
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.body, "slow down");
  ASSERT_EQ(r.downstream_headers.size(), 1u);
  EXPECT_EQ(r.downstream_headers[0].value, "quota");
}

TEST_F(GrpcExtAuthzTest, AnUnreachableProviderDenies) {
  ExtAuthzResult r = Run({{"x-ext-authz", "allow"}}, ClosedPort());
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(r.detail, HasSubstr("gRPC"));
}

}  // namespace
}  // namespace zm::waypoint
