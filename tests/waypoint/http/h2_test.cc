// The HTTP/2 (prior knowledge) engine: real clients (python3-h2 in h2client.py, curl, nghttp)
// against a TCP listener served by the engine, the h2c side of the Python backend upstream;
// raw frames over a pipe for the protocol errors. Negative cases first.

#include <nlohmann/json.hpp>

#include "tests/waypoint/http/http_test_util.h"

namespace zm::waypoint::testing {
namespace {

using nlohmann::json;

class H2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    filter_ = std::make_shared<FakeFilter>(w_.ex());
    opener_ = TcpOpener{w_.ex(), Backend::Get().h2_port()};
    listener_ = std::make_unique<Listener>(w_, [this](std::unique_ptr<hbone::ByteStream> s) {
      ServeHttp(std::move(s), open_override_ ? open_override_ : opener_.Get(), filter_, options_,
                logs_.Sink());
    });
  }
  void TearDown() override { listener_.reset(); }

  // Runs h2client.py with `requests` on one connection.
  json Client(const json& requests) {
    std::string arg = requests.dump();
    std::string cmd = std::string("/usr/bin/python3 ") + ZMESH_TEST_SOURCE_DIR + "/h2client.py " +
                      std::to_string(listener_->port()) + " '" + arg + "'";
    int rc = 0;
    std::string out = RunCommand(cmd, &rc);
    EXPECT_EQ(rc, 0) << out;
    auto j = json::parse(out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << out;
    return j;
  }
  // Waits until `n` requests were logged (streams are logged when they close).
  std::vector<RequestLog> LogsAfter(size_t n) {
    auto until = std::chrono::steady_clock::now() + kDeadline;
    while (logs_.Get().size() < n && std::chrono::steady_clock::now() < until) {
      w_.Run([] { return 0; });  // a round trip through the worker, not a sleep
    }
    return logs_.Get();
  }

  Worker w_;
  std::shared_ptr<FakeFilter> filter_;
  TcpOpener opener_;
  UpstreamOpener open_override_;
  HttpOptions options_;
  Logs logs_;
  std::unique_ptr<Listener> listener_;
};

// ---- negative -------------------------------------------------------------------------------

// Frames of a server's bytes: (type, stream id).
std::vector<std::pair<int, uint32_t>> Frames(std::string_view b) {
  std::vector<std::pair<int, uint32_t>> out;
  while (b.size() >= 9) {
    size_t len = (static_cast<uint8_t>(b[0]) << 16) | (static_cast<uint8_t>(b[1]) << 8) |
                 static_cast<uint8_t>(b[2]);
    uint32_t id = ((static_cast<uint8_t>(b[5]) & 0x7f) << 24) | (static_cast<uint8_t>(b[6]) << 16) |
                  (static_cast<uint8_t>(b[7]) << 8) | static_cast<uint8_t>(b[8]);
    out.push_back({static_cast<uint8_t>(b[3]), id});
    if (b.size() < 9 + len) break;
    b.remove_prefix(9 + len);
  }
  return out;
}

TEST_F(H2Test, GarbageAfterPrefaceGetsGoawayAndTheEnd) {
  auto c = ServePipe(w_, opener_.Get(), filter_, {}, logs_.Sink());
  ASSERT_TRUE(c->Write(std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") +
                       "this is not an HTTP/2 frame at all, just garbage\r\n\r\n"));
  bool clean = false;
  std::string all = c->ReadAll(&clean);
  auto frames = Frames(all);
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.front().first, 0x4);  // our SETTINGS
  EXPECT_TRUE(std::any_of(frames.begin(), frames.end(), [](auto f) { return f.first == 0x7; }))
      << "no GOAWAY";
  EXPECT_EQ(filter_->calls.load(), 0);
  EXPECT_EQ(opener_.opened->load(), 0);
}

TEST_F(H2Test, TruncatedPrefaceIsHttp1AndGets400) {
  auto c = ServePipe(w_, opener_.Get(), filter_, {}, logs_.Sink());
  ASSERT_TRUE(c->Write("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"));
  Response r = ReadResponse(*c);
  EXPECT_EQ(r.status, 400);
}

TEST_F(H2Test, LowercaseMethodIs400AndOtherStreamsGoOn) {
  json res = Client({{{"method", "get"}, {"path", "/echo/a"}}, {{"path", "/echo/b"}}});
  ASSERT_EQ(res["results"].size(), 2u);
  EXPECT_EQ(res["results"][0]["status"], 400);
  EXPECT_EQ(res["results"][1]["status"], 200);
}

TEST_F(H2Test, TooManyHeadersIs431) {
  json headers = json::array();
  for (int i = 0; i < 120; ++i) headers.push_back({"x-h" + std::to_string(i), "v"});
  json res = Client({{{"path", "/echo/a"}, {"headers", headers}}, {{"path", "/echo/b"}}});
  EXPECT_EQ(res["results"][0]["status"], 431);
  EXPECT_EQ(res["results"][1]["status"], 200);
}

TEST_F(H2Test, ConnectIs501) {
  json res = Client({{{"method", "CONNECT"}, {"path", "/"}}, {{"path", "/echo/b"}}});
  // nghttp2 itself refuses a CONNECT carrying :path/:scheme (malformed): RST, or our 501.
  EXPECT_TRUE(res["results"][0]["status"] == 501 || res["results"][0]["reset"] == 1) << res.dump();
  EXPECT_EQ(res["results"][1]["status"], 200);
}

TEST_F(H2Test, DeniedStreamNextToAllowedOnes) {
  filter_->decide = DenyPath("/deny");

  json res = Client({{{"path", "/echo/1"}},
                     {{"path", "/deny"}, {"method", "POST"}, {"body", 100000}},
                     {{"path", "/echo/2"}}});
  ASSERT_EQ(res["results"].size(), 3u);
  EXPECT_EQ(res["results"][0]["status"], 200);
  EXPECT_EQ(res["results"][1]["status"], 403);
  EXPECT_EQ(res["results"][1]["body"], "RBAC: access denied");
  EXPECT_EQ(res["results"][2]["status"], 200);
  EXPECT_EQ(res["goaway"], nullptr);
  auto logs = LogsAfter(3);
  int local = 0;
  for (auto& l : logs) {
    EXPECT_TRUE(l.h2);
    local += l.local;
  }
  EXPECT_EQ(local, 1);
}

TEST_F(H2Test, InvalidTokenGets401WithWwwAuthenticate) {
  filter_->inline_ = true;
  filter_->decide = [](RequestHead&) {
    return Decision{.forward = false,
                    .status = 401,
                    .body = "Jwt is expired",
                    .response_headers = {{"WWW-Authenticate", "Bearer error=\"invalid_token\""}}};
  };
  json res = Client({{{"path", "/x"}}});
  auto& r = res["results"][0];
  EXPECT_EQ(r["status"], 401);
  EXPECT_EQ(r["body"], "Jwt is expired");
  bool found = false;
  for (auto& h : r["headers"]) {
    if (h[0] == "www-authenticate") found = h[1] == "Bearer error=\"invalid_token\"";
  }
  EXPECT_TRUE(found) << r.dump();
  EXPECT_EQ(opener_.opened->load(), 0);
}

TEST_F(H2Test, UpstreamRefusedIs503PerStream) {
  open_override_ = [](auto cb) { cb(absl::UnavailableError("connect: refused")); };
  json res = Client({{{"path", "/echo/1"}}, {{"path", "/echo/2"}}});
  EXPECT_EQ(res["results"][0]["status"], 503);
  EXPECT_EQ(res["results"][1]["status"], 503);
}

TEST_F(H2Test, UpstreamResetBeforeTheResponseIs502) {
  json res = Client({{{"path", "/reset"}}, {{"path", "/echo/ok"}}});
  EXPECT_EQ(res["results"][0]["status"], 502);
  EXPECT_EQ(res["results"][1]["status"], 200);
}

TEST_F(H2Test, ResetFromTheClientLeavesOtherStreamsAlone) {
  json res = Client({{{"path", "/echo/rst"}, {"method", "POST"}, {"body", 200000}, {"rst", true}},
                     {{"path", "/echo/after"}, {"method", "POST"}, {"body", 1000}}});
  auto& after = res["results"][1];
  EXPECT_EQ(after["status"], 200);
  auto j = json::parse(after["body"].get<std::string>());
  EXPECT_EQ(j["body_len"], 1000);
  auto logs = LogsAfter(2);
  bool reset_logged = false;
  for (auto& l : logs) {
    if (l.path == "/echo/rst") reset_logged = l.detail.find("downstream-reset") == 0;
  }
  EXPECT_TRUE(reset_logged);
}

// ---- positive -------------------------------------------------------------------------------

TEST_F(H2Test, ConcurrentStreamsShareOneUpstreamConnection) {
  json reqs = json::array();
  for (int i = 0; i < 20; ++i) reqs.push_back({{"path", "/echo/" + std::to_string(i)}});
  json res = Client(reqs);
  ASSERT_EQ(res["results"].size(), 20u);
  int conn = -1;
  for (int i = 0; i < 20; ++i) {
    auto& r = res["results"][i];
    ASSERT_EQ(r["status"], 200) << r.dump();
    auto j = json::parse(r["body"].get<std::string>());
    EXPECT_EQ(j["path"], "/echo/" + std::to_string(i));
    EXPECT_EQ(j["authority"], "svc.test");
    if (conn < 0) conn = j["conn"];
    EXPECT_EQ(j["conn"], conn);
  }
  EXPECT_EQ(opener_.opened->load(), 1);
}

TEST_F(H2Test, LargeBodiesBothWaysWithTrailers) {
  json res = Client({{{"path", "/echo/up"},
                      {"method", "PUT"},
                      {"body", 8 << 20},
                      {"trailers", {{"x-checksum", "abc"}}}},
                     {{"path", "/big/20000000"}},
                     {{"path", "/trailers"}}});
  auto& up = res["results"][0];
  ASSERT_EQ(up["status"], 200) << res.dump();
  auto j = json::parse(up["body"].get<std::string>());
  EXPECT_EQ(j["body_len"], 8 << 20);
  EXPECT_EQ(j["trailers"]["x-checksum"], "abc");
  auto& down = res["results"][1];
  EXPECT_EQ(down["status"], 200);
  EXPECT_EQ(down["body_len"], 20000000);
  auto& tr = res["results"][2];
  EXPECT_EQ(tr["status"], 200);
  ASSERT_EQ(tr["trailers"].size(), 1u) << tr.dump();
  EXPECT_EQ(tr["trailers"][0][0], "x-trailer");
}

TEST_F(H2Test, FilterRewritesPathAndHeaders) {
  filter_->decide = [](RequestHead& h) {
    EXPECT_TRUE(h.h2);
    EXPECT_EQ(h.authority, "svc.test");
    h.path = "/echo/rewritten";
    h.Remove("authorization");
    h.Set("X-Jwt-Sub", "alice");
    return Decision{};
  };
  json res = Client({{{"path", "/orig"}, {"headers", {{"authorization", "Bearer t"}}}}});
  auto& r = res["results"][0];
  ASSERT_EQ(r["status"], 200);
  auto j = json::parse(r["body"].get<std::string>());
  EXPECT_EQ(j["path"], "/echo/rewritten");
  std::map<std::string, std::string> seen;
  for (auto& h : j["headers"]) seen[h[0].get<std::string>()] = h[1].get<std::string>();
  EXPECT_EQ(seen.count("authorization"), 0u);
  EXPECT_EQ(seen["x-jwt-sub"], "alice");
}

TEST_F(H2Test, CurlAndNghttpPriorKnowledge) {
  std::string url = "http://127.0.0.1:" + std::to_string(listener_->port());
  int rc = 0;
  // curl 7.88 fails the second transfer on a reused prior-knowledge connection against any h2c
  // server (the Python backend too): one URL per curl; nghttp multiplexes below.
  std::string out;
  for (const char* p : {"/echo/c1", "/echo/c2", "/echo/c3"}) {
    out = RunCommand("curl -sS --http2-prior-knowledge --max-time 20 " + url + p, &rc);
    EXPECT_EQ(rc, 0) << out;
    EXPECT_NE(out.find(std::string("\"path\": \"") + p + "\""), std::string::npos) << out;
  }
  out = RunCommand("nghttp -n -s -t 20 " + url + "/echo/n1 " + url + "/echo/n2 2>&1", &rc);
  EXPECT_EQ(rc, 0) << out;
  auto logs = LogsAfter(5);
  int ok = 0;
  for (auto& l : logs) ok += l.status == 200 && l.h2;
  EXPECT_EQ(ok, 5);
}

}  // namespace
}  // namespace zm::waypoint::testing
