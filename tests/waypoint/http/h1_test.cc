// The HTTP/1.x engine, in process: the client drives one end of a pipe, the engine serves the
// other and forwards to the Python backend over real TCP. Negative cases first.

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sys/resource.h>

#include <nlohmann/json.hpp>

#include "tests/waypoint/http/http_test_util.h"

namespace zm::waypoint::testing {
namespace {

using nlohmann::json;

std::string Sha256Hex(std::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned char c : md) {
    s.push_back(hex[c >> 4]);
    s.push_back(hex[c & 15]);
  }
  return s;
}

class H1Test : public ::testing::Test {
 protected:
  void SetUp() override {
    filter_ = std::make_shared<FakeFilter>(w_.ex());
    opener_ = TcpOpener{w_.ex(), Backend::Get().h1_port()};
  }
  std::unique_ptr<PipeClient> Connect(HttpOptions o = {}) {
    return ServePipe(w_, opener_.Get(), filter_, o, logs_.Sink());
  }
  // A request that must not reach the filter nor the backend: status, then the connection ends.
  void ExpectRejected(std::string_view request, int status) {
    auto c = Connect();
    ASSERT_TRUE(c->Write(request));
    Response r = ReadResponse(*c);
    EXPECT_TRUE(r.complete) << request;
    EXPECT_EQ(r.status, status) << request;
    EXPECT_EQ(r.Header("content-type"), "text/plain");
    EXPECT_EQ(r.Header("connection"), "close");
    bool clean = false;
    c->ReadAll(&clean);  // EOF follows
    EXPECT_TRUE(clean) << request;
    EXPECT_EQ(filter_->calls.load(), 0) << request;
    EXPECT_EQ(opener_.opened->load(), 0) << request;
  }

  Worker w_;
  std::shared_ptr<FakeFilter> filter_;
  TcpOpener opener_;
  Logs logs_;
};

// ---- negative -------------------------------------------------------------------------------

TEST_F(H1Test, SmugglingContentLengthAndTransferEncodingIs400) {
  ExpectRejected(
      "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\n",
      400);
}

TEST_F(H1Test, TransferEncodingOtherThanChunkedIs400) {
  ExpectRejected("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400);
  ExpectRejected(
      "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400);
  ExpectRejected(
      "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
      "chunked\r\n\r\n0\r\n\r\n",
      400);
}

TEST_F(H1Test, DifferingContentLengthsAre400) {
  ExpectRejected(
      "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400);
  ExpectRejected("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\nabcd", 400);
}

TEST_F(H1Test, LowercaseMethodIs400) {
  ExpectRejected("get /echo HTTP/1.1\r\nHost: a\r\n\r\n", 400);
  ExpectRejected("Get /echo HTTP/1.1\r\nHost: a\r\n\r\n", 400);
}

TEST_F(H1Test, WhitespaceInHeaderNameIs400) {
  ExpectRejected("GET /echo HTTP/1.1\r\nHost: a\r\nFoo Bar: x\r\n\r\n", 400);
  ExpectRejected("GET /echo HTTP/1.1\r\nHost: a\r\nFoo : x\r\n\r\n", 400);
  ExpectRejected("GET /echo HTTP/1.1\r\nHost: a\r\n Foo: x\r\n\r\n", 400);
}

TEST_F(H1Test, ObsFoldIs400) {
  ExpectRejected("GET /echo HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400);
  ExpectRejected("GET /echo HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", 400);
}

TEST_F(H1Test, NulCrLfInValuesAre400) {
  ExpectRejected(std::string("GET /echo HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 40), 400);
  ExpectRejected("GET /echo HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400);
}

TEST_F(H1Test, MissingOrDuplicateHostIs400) {
  ExpectRejected("GET /echo HTTP/1.1\r\n\r\n", 400);
  ExpectRejected("GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
}

TEST_F(H1Test, BadChunkSizeIs400) {
  auto c = Connect();
  ASSERT_TRUE(
      c->Write("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
               "chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"));
  Response r = ReadResponse(*c);
  EXPECT_EQ(r.status, 400);
  bool clean = false;
  c->ReadAll(&clean);
  EXPECT_TRUE(clean);
}

TEST_F(H1Test, TruncatedRequestHeadThenEofIs400) {
  auto c = Connect();
  ASSERT_TRUE(c->Write("GET /echo HTTP/1.1\r\nHost: a\r\nX-Half"));
  c->ShutdownSend();
  Response r = ReadResponse(*c);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(filter_->calls.load(), 0);
}

TEST_F(H1Test, TruncatedRequestBodyThenEofClosesWithoutReuse) {
  auto c = Connect();
  ASSERT_TRUE(c->Write("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly-this"));
  c->ShutdownSend();
  Response r = ReadResponse(*c);
  // The request was partly forwarded: the client gets a 400 (or the end), never a 200.
  EXPECT_NE(r.status, 200);
  bool clean = false;
  c->ReadAll(&clean);
}

TEST_F(H1Test, TooManyHeadersIs431) {
  std::string req = "GET /echo HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 101; ++i) req += "X-H" + std::to_string(i) + ": v\r\n";
  ExpectRejected(req + "\r\n", 431);
}

TEST_F(H1Test, TooLargeHeadIs431) {
  std::string req =
      "GET /echo HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(61 * 1024, 'a') + "\r\n\r\n";
  ExpectRejected(req, 431);
}

TEST_F(H1Test, UpgradeAndConnectAre501) {
  ExpectRejected("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
                 501);
  ExpectRejected("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 501);
}

TEST_F(H1Test, HeaderTimeoutIs408) {
  HttpOptions o;
  o.header_timeout = 150ms;
  auto c = Connect(o);
  ASSERT_TRUE(c->Write("GET /echo HTTP/1.1\r\nHost: a\r\n"));
  Response r = ReadResponse(*c);  // arrives when the timeout fires
  EXPECT_EQ(r.status, 408);
  bool clean = false;
  c->ReadAll(&clean);
  EXPECT_TRUE(clean);
}

TEST_F(H1Test, IdleTimeoutClosesTheConnection) {
  HttpOptions o;
  o.idle_timeout = 150ms;
  auto c = Connect(o);
  ASSERT_TRUE(c->Write("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_EQ(ReadResponse(*c).status, 200);
  bool clean = false;
  EXPECT_EQ(c->ReadAll(&clean), "");  // then nothing until the idle timeout closes it
  EXPECT_TRUE(clean);
}

TEST_F(H1Test, UpstreamRefusedIs503AndTheConnectionStays) {
  // A port nothing listens on: bind one, close it.
  uint16_t dead_port = w_.Run([&] {
    asio::ip::tcp::acceptor a(w_.ioc(), {asio::ip::make_address("127.0.0.1"), 0});
    return a.local_endpoint().port();
  });
  TcpOpener refused{w_.ex(), dead_port};
  auto c = ServePipe(w_, refused.Get(), filter_, {}, logs_.Sink());
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(c->Write("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"));
    Response r = ReadResponse(*c);
    EXPECT_EQ(r.status, 503);
    EXPECT_TRUE(r.keep_alive);
  }
  auto logs = logs_.Get();
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_TRUE(logs[0].local);
  EXPECT_EQ(logs[0].status, 503);
  EXPECT_NE(logs[0].detail.find("upstream-open"), std::string::npos);
}

TEST_F(H1Test, UpstreamClosingMidResponseClosesTheDownstream) {
  auto c = Connect();
  ASSERT_TRUE(c->Write("GET /close-mid HTTP/1.1\r\nHost: a\r\n\r\n"));
  Response r = ReadResponse(*c);
  EXPECT_FALSE(r.complete);  // not a truncated 200 presented as complete
  EXPECT_TRUE(r.eof);
  EXPECT_EQ(r.body, "0123456789");
}

TEST_F(H1Test, DeniedRequestGets403WithBodyAndTheConnectionStays) {
  filter_->decide = DenyPath("/deny");

  auto c = Connect();
  ASSERT_TRUE(c->Write("GET /deny HTTP/1.1\r\nHost: a\r\n\r\n"));
  Response r = ReadResponse(*c);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body, "RBAC: access denied");
  EXPECT_EQ(r.Header("content-type"), "text/plain");
  EXPECT_EQ(r.Header("content-length"), "19");
  EXPECT_TRUE(r.keep_alive);
  // A denied POST whose body is already here: the body is skipped, the connection kept.
  ASSERT_TRUE(c->Write("POST /deny HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"));
  EXPECT_EQ(ReadResponse(*c).status, 403);
  ASSERT_TRUE(c->Write("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"));
  r = ReadResponse(*c);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body)["path"], "/echo");
  EXPECT_EQ(opener_.opened->load(), 1);
}

TEST_F(H1Test, InvalidTokenGets401WithWwwAuthenticate) {
  filter_->inline_ = true;
  filter_->decide = [](RequestHead&) {
    Decision d;
    d.forward = false;
    d.status = 401;
    d.body = "Jwt is expired";
    d.response_headers = {
        {"www-authenticate", "Bearer realm=\"http://a/\", error=\"invalid_token\""}};
    return d;
  };
  auto c = Connect();
  ASSERT_TRUE(c->Write("GET /x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer x.y.z\r\n\r\n"));
  Response r = ReadResponse(*c);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body, "Jwt is expired");
  EXPECT_EQ(r.Header("www-authenticate"), "Bearer realm=\"http://a/\", error=\"invalid_token\"");
  EXPECT_EQ(opener_.opened->load(), 0);
}

// ---- positive -------------------------------------------------------------------------------

TEST_F(H1Test, KeepAliveUsesOneUpstreamConnection) {
  auto c = Connect();
  int conn = -1;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(c->Write("GET /echo/" + std::to_string(i) + " HTTP/1.1\r\nHost: svc\r\n\r\n"));
    Response r = ReadResponse(*c);
    ASSERT_EQ(r.status, 200);
    auto j = json::parse(r.body);
    EXPECT_EQ(j["path"], "/echo/" + std::to_string(i));
    EXPECT_EQ(j["version"], "HTTP/1.1");
    if (conn < 0) conn = j["conn"];
    EXPECT_EQ(j["conn"], conn);
  }
  EXPECT_EQ(opener_.opened->load(), 1);
  auto logs = logs_.Get();
  ASSERT_EQ(logs.size(), 5u);
  EXPECT_EQ(logs[4].method, "GET");
  EXPECT_EQ(logs[4].path, "/echo/4");
  EXPECT_EQ(logs[4].authority, "svc");
  EXPECT_EQ(logs[4].status, 200);
  EXPECT_FALSE(logs[4].local);
  EXPECT_GT(logs[4].response_body_bytes, 0u);
}

TEST_F(H1Test, UpstreamConnectionCloseOpensANewOne) {
  auto c = Connect();
  ASSERT_TRUE(c->Write("GET /close HTTP/1.1\r\nHost: a\r\n\r\n"));
  Response r = ReadResponse(*c);
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.keep_alive);  // the upstream's close is not the client's
  ASSERT_TRUE(c->Write("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_EQ(ReadResponse(*c).status, 200);
  EXPECT_EQ(opener_.opened->load(), 2);
}

TEST_F(H1Test, ChunkedRequestAndResponseBodies) {
  auto c = Connect();
  std::string body;
  std::string req = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 1; i <= 20; ++i) {
    std::string chunk(static_cast<size_t>(i * 97), static_cast<char>('a' + i));
    char size[16];
    std::snprintf(size, sizeof(size), "%x", static_cast<unsigned>(chunk.size()));
    req += std::string(size) + ";ext=1\r\n" + chunk + "\r\n";
    body += chunk;
  }
  req += "0\r\nX-Checksum: abc\r\n\r\n";
  ASSERT_TRUE(c->Write(req));
  Response r = ReadResponse(*c);
  ASSERT_EQ(r.status, 200) << "[" << c->pending.substr(0, 300) << "]";
  auto j = json::parse(r.body);
  EXPECT_EQ(j["body_len"], body.size());
  EXPECT_EQ(j["sha256"], Sha256Hex(body));
  EXPECT_EQ(j["chunked"], true);
  EXPECT_EQ(j["trailers"]["x-checksum"], "abc");

  ASSERT_TRUE(c->Write("GET /chunked/50 HTTP/1.1\r\nHost: a\r\n\r\n"));
  r = ReadResponse(*c);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("transfer-encoding"), "chunked");
  EXPECT_EQ(r.body.size(), 50'000u);
  EXPECT_EQ(r.body.substr(0, 3), "AAA");
  ASSERT_EQ(r.trailers.size(), 1u);
  EXPECT_EQ(r.trailers[0].value, "yes");
  EXPECT_TRUE(r.keep_alive);
}

long PeakRssKb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

TEST_F(H1Test, FiftyMegabytesEachWayWithBoundedMemory) {
  auto c = Connect();
  constexpr size_t kSize = 50u << 20;
  const long before = PeakRssKb();
  // Upload: written in 1 MiB pieces; the engine must not hold the body.
  std::string block(1 << 20, 'x');
  for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>(i * 31 + 7);
  ASSERT_TRUE(c->Write(
      "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: " + std::to_string(kSize) + "\r\n\r\n"));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sha(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(sha.get(), EVP_sha256(), nullptr);
  for (size_t sent = 0; sent < kSize; sent += block.size()) {
    ASSERT_TRUE(c->Write(block));
    EVP_DigestUpdate(sha.get(), block.data(), block.size());
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EVP_DigestFinal_ex(sha.get(), md, &md_len);
  std::string hex;
  static const char* kHex = "0123456789abcdef";
  for (unsigned int i = 0; i < md_len; ++i) {
    hex.push_back(kHex[md[i] >> 4]);
    hex.push_back(kHex[md[i] & 15]);
  }
  Response r = ReadResponse(*c);
  ASSERT_EQ(r.status, 200);
  auto j = json::parse(r.body);
  EXPECT_EQ(j["body_len"], kSize);
  EXPECT_EQ(j["sha256"], hex);

  // Download: read as it comes, not kept.
  ASSERT_TRUE(c->Write("GET /big/" + std::to_string(kSize) + " HTTP/1.1\r\nHost: a\r\n\r\n"));
  size_t got = 0;
  std::string head;
  while (head.find("\r\n\r\n") == std::string::npos) head += c->Read().value_or("");
  got = head.size() - head.find("\r\n\r\n") - 4;
  while (got < kSize) {
    auto s = c->Read();
    ASSERT_TRUE(s && !s->empty());
    got += s->size();
  }
  EXPECT_EQ(got, kSize);
  EXPECT_NE(head.find("content-length: 52428800"), std::string::npos) << head;
  // 50 MB went each way; the process grew by far less (buffers are 64 KiB per direction).
  EXPECT_LT(PeakRssKb() - before, 24 * 1024) << "peak RSS grew too much";
}

TEST_F(H1Test, PipelinedRequestsAreAnsweredInOrder) {
  auto c = Connect();
  std::string reqs;
  for (int i = 0; i < 4; ++i) {
    reqs += "GET /echo/p" + std::to_string(i) + " HTTP/1.1\r\nHost: a\r\n\r\n";
  }
  reqs += "POST /echo/p4 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
  ASSERT_TRUE(c->Write(reqs));
  for (int i = 0; i < 5; ++i) {
    Response r = ReadResponse(*c);
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(json::parse(r.body)["path"], "/echo/p" + std::to_string(i));
  }
  EXPECT_EQ(opener_.opened->load(), 1);
}

TEST_F(H1Test, Http10) {
  auto c = Connect();
  ASSERT_TRUE(c->Write("GET /echo HTTP/1.0\r\n\r\n"));
  Response r = ReadResponse(*c);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body)["version"], "HTTP/1.1");  // the upstream hop is 1.1
  EXPECT_FALSE(r.keep_alive);
  bool clean = false;
  c->ReadAll(&clean);
  EXPECT_TRUE(clean);

  // A chunked upstream response reaches a 1.0 client close-delimited.
  auto c2 = Connect();
  ASSERT_TRUE(c2->Write("GET /chunked/3 HTTP/1.0\r\nHost: a\r\n\r\n"));
  r = ReadResponse(*c2);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("transfer-encoding"), "");
  EXPECT_EQ(r.body.size(), 3000u);

  // 1.0 with keep-alive and a known length: kept.
  auto c3 = Connect();
  ASSERT_TRUE(c3->Write("GET /echo HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n"));
  r = ReadResponse(*c3);
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.keep_alive);
  ASSERT_TRUE(c3->Write("GET /echo HTTP/1.0\r\nHost: a\r\n\r\n"));
  EXPECT_EQ(ReadResponse(*c3).status, 200);
}

TEST_F(H1Test, FilterRewritesPathAndHeadersSeenByTheBackend) {
  filter_->decide = [](RequestHead& h) {
    EXPECT_EQ(h.method, "GET");
    EXPECT_EQ(h.authority, "svc.ns:8080");
    EXPECT_EQ(h.Find("authorization"), "Bearer t");
    h.path = "/echo/rewritten?q=1";
    h.Remove("Authorization");
    h.Set("x-jwt-sub", "alice");
    return Decision{};
  };
  auto c = Connect();
  ASSERT_TRUE(c->Write(
      "GET /orig HTTP/1.1\r\nHost: svc.ns:8080\r\nAuthorization: Bearer t\r\nX-Keep: k\r\n\r\n"));
  Response r = ReadResponse(*c);
  ASSERT_EQ(r.status, 200);
  auto j = json::parse(r.body);
  EXPECT_EQ(j["path"], "/echo/rewritten?q=1");
  std::map<std::string, std::string> seen;
  for (auto& h : j["headers"]) seen[h[0]] = h[1];
  EXPECT_EQ(seen.count("authorization"), 0u);
  EXPECT_EQ(seen["x-jwt-sub"], "alice");
  EXPECT_EQ(seen["x-keep"], "k");
  EXPECT_EQ(seen["host"], "svc.ns:8080");
  auto logs = logs_.Get();
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_EQ(logs[0].path, "/echo/rewritten?q=1");
}

TEST_F(H1Test, HopByHopHeadersAreNotForwarded) {
  filter_->decide = [](RequestHead& h) {
    EXPECT_FALSE(h.Find("x-hop"));
    EXPECT_FALSE(h.Find("keep-alive"));
    EXPECT_FALSE(h.Find("te"));
    EXPECT_FALSE(h.Find("proxy-authorization"));
    return Decision{};
  };
  auto c = Connect();
  ASSERT_TRUE(c->Write(
      "GET /echo HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
      "Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: x\r\nX-End: 1\r\n\r\n"));
  Response r = ReadResponse(*c);
  ASSERT_EQ(r.status, 200);
  std::set<std::string> seen;
  auto j = json::parse(r.body);
  for (auto& h : j["headers"]) seen.insert(h[0].get<std::string>());
  EXPECT_EQ(seen.count("x-hop"), 0u);
  EXPECT_EQ(seen.count("keep-alive"), 0u);
  EXPECT_EQ(seen.count("te"), 0u);
  EXPECT_EQ(seen.count("proxy-authorization"), 0u);
  EXPECT_EQ(seen.count("x-end"), 1u) << r.body;
}

TEST_F(H1Test, ExpectContinueGets100ThenTheResponse) {
  auto c = Connect();
  ASSERT_TRUE(c->Write(
      "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"));
  std::string got;
  while (got.find("\r\n\r\n") == std::string::npos) got += c->Read().value_or("");
  EXPECT_EQ(got.substr(0, 25), "HTTP/1.1 100 Continue\r\n\r\n");
  c->pending = got.substr(25);
  ASSERT_TRUE(c->Write("body"));
  Response r = ReadResponse(*c);
  ASSERT_EQ(r.status, 200);
  auto j = json::parse(r.body);
  EXPECT_EQ(j["body_len"], 4);
  for (auto& h : j["headers"]) EXPECT_NE(h[0], "expect");
}

TEST_F(H1Test, ExpectContinueDeniedClosesWithoutReadingTheBody) {
  filter_->decide = [](RequestHead&) { return Decision{.forward = false, .status = 403}; };
  auto c = Connect();
  ASSERT_TRUE(c->Write(
      "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"));
  Response r = ReadResponse(*c);
  EXPECT_EQ(r.status, 403);
  EXPECT_FALSE(r.keep_alive);
}

TEST_F(H1Test, HeadRequestHasNoBody) {
  auto c = Connect();
  ASSERT_TRUE(c->Write("HEAD /big/1000 HTTP/1.1\r\nHost: a\r\n\r\n"));
  Response r = ReadResponse(*c, /*head_request=*/true);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-length"), "1000");
  EXPECT_EQ(r.body, "");
  ASSERT_TRUE(c->Write("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_EQ(ReadResponse(*c).status, 200);
}

TEST_F(H1Test, AbsoluteFormTargetSetsTheAuthority) {
  auto c = Connect();
  ASSERT_TRUE(c->Write("GET http://svc.example:81/echo/abs?x=1 HTTP/1.1\r\nHost: other\r\n\r\n"));
  Response r = ReadResponse(*c);
  ASSERT_EQ(r.status, 200);
  auto j = json::parse(r.body);
  EXPECT_EQ(j["path"], "/echo/abs?x=1");
  auto logs = logs_.Get();
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_EQ(logs[0].authority, "svc.example:81");
}

TEST_F(H1Test, CurlHttp11ThroughATcpListener) {
  Listener l(w_, [&](std::unique_ptr<hbone::ByteStream> s) {
    ServeHttp(std::move(s), opener_.Get(), filter_, {}, logs_.Sink());
  });
  std::string url = "http://127.0.0.1:" + std::to_string(l.port());
  int rc = 0;
  std::string out = RunCommand("curl -sS --http1.1 --max-time 20 -H 'X-Test: curl' " + url +
                                   "/echo/1 " + url + "/echo/2 -d 'hello=1'",
                               &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"path\": \"/echo/1\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"path\": \"/echo/2\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"body_len\": 7"), std::string::npos) << out;
  EXPECT_EQ(opener_.opened->load(), 1) << "curl reuses its connection, so do we";
}

}  // namespace
}  // namespace zm::waypoint::testing
