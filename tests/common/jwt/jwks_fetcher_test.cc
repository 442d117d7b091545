// The jwksUri fetcher against a real local HTTPS server (python3 http.server + ssl, certificates
// made by the openssl CLI).
#include "common/jwt/jwks_fetcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/common/jwt/jwt_test_util.h"
#include "tests/testutil/temp_dir.h"
#include "tests/testutil/wait.h"

namespace zm::jwt {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A CA, a server certificate for 127.0.0.1 signed by it, and an unrelated CA.
void MakeCertificates(const std::string& dir) {
  std::ofstream(dir + "/san.ext") << "subjectAltName=IP:127.0.0.1\n";
  const std::string script =
      "set -e; cd '" + dir +
      "'; "
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
      "-out ca.pem -days 1 -subj /CN=jwks-test-ca; "
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key "
      "-out other-ca.pem -days 1 -subj /CN=other-ca; "
      "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key "
      "-out server.csr -subj /CN=localhost; "
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 "
      "-extfile san.ext -out server.pem";
  ASSERT_EQ(std::system(("(" + script + ") >/dev/null 2>&1").c_str()), 0) << "openssl failed";
}

// The server process; Stop() (or the destructor) ends it.
class JwksServer {
 public:
  explicit JwksServer(std::string dir) : dir_(std::move(dir)) {}
  ~JwksServer() { Stop(); }

  // Starts on `port` (0: any) and returns the port.
  int Start(int port = 0) {
    std::filesystem::remove(dir_ + "/port");
    const char* src = std::getenv("ZMESH_SOURCE_DIR");
    std::string script = std::string(src ? src : ".") + "/tests/common/jwt/jwks_test_server.py";
    std::string port_arg = std::to_string(port);
    std::string cert = dir_ + "/server.pem", key = dir_ + "/server.key";
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<const char*> argv = {"python3", script.c_str(), "--dir",  dir_.c_str(),
                                       "--port",  port_arg.c_str(), "--cert", cert.c_str(),
                                       "--key",   key.c_str(),      nullptr};
      ::execvp("python3", const_cast<char* const*>(argv.data()));
      ::_exit(127);
    }
    EXPECT_TRUE(testutil::WaitFor([&] { return std::filesystem::exists(dir_ + "/port"); }))
        << "the JWKS test server did not start";
    return std::atoi(ReadFile(dir_ + "/port").c_str());
  }
  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  std::string dir_;
  pid_t pid_ = -1;
};

std::string KeySet(const std::string& kid) {
  return jwttest::JwksJson({jwttest::Key("ES256", kid).Jwk()});
}

bool HasKid(const JwksFetcher& f, const std::string& kid) {
  auto jwks = f.Current();
  return jwks.ok() && (*jwks)->keys.size() == 1 && (*jwks)->keys[0].kid == kid;
}

class JwksFetcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v python3 >/dev/null && command -v openssl >/dev/null") != 0) {
      GTEST_SKIP() << "needs python3 and openssl";
    }
    MakeCertificates(dir_.path());
    dir_.Write("jwks", KeySet("k1"));
  }
  JwksFetcherOptions Options() const {
    JwksFetcherOptions o;
    o.ca_file = dir_.File("ca.pem");
    o.initial_backoff = milliseconds(50);
    o.timeout = milliseconds(2000);
    return o;
  }
  std::string Uri(int port, const char* name = "jwks") const {
    return "https://127.0.0.1:" + std::to_string(port) + "/" + name;
  }

  testutil::TempDir dir_{"zmesh-jwks"};
  JwksServer server_{dir_.path()};
  FakeClock clock_;
};

// ---- Failures first -------------------------------------------------------------------------

TEST_F(JwksFetcherTest, AWrongCaFailsVerification) {
  int port = server_.Start();
  JwksFetcherOptions o = Options();
  o.ca_file = dir_.File("other-ca.pem");
  JwksFetcher f(Uri(port), o, clock_);
  ASSERT_TRUE(f.WaitForFetches(1, milliseconds(10'000)));
  auto jwks = f.Current();
  ASSERT_FALSE(jwks.ok());
  EXPECT_EQ(jwks.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(jwks.status().message()), HasSubstr(Uri(port)));
  EXPECT_THAT(f.Status().last_error, HasSubstr("certificate"));
  EXPECT_TRUE(f.Status().verify_tls);
}

TEST_F(JwksFetcherTest, TheSystemBundleDoesNotTrustATestCa) {
  int port = server_.Start();
  JwksFetcherOptions o = Options();
  o.ca_file.clear();
  JwksFetcher f(Uri(port), o, clock_);
  ASSERT_TRUE(f.WaitForFetches(1, milliseconds(10'000)));
  EXPECT_FALSE(f.Current().ok());
}

TEST_F(JwksFetcherTest, ServerDownIsUnavailableUntilItComesUp) {
  int port = server_.Start();
  server_.Stop();
  JwksFetcher f(Uri(port), Options(), clock_);
  ASSERT_TRUE(f.WaitForFetches(1, milliseconds(10'000)));
  auto jwks = f.Current();
  ASSERT_FALSE(jwks.ok());
  EXPECT_THAT(std::string(jwks.status().message()),
              HasSubstr("JWKS " + Uri(port) + " not fetched yet: GET " + Uri(port)));
  EXPECT_THAT(std::string(jwks.status().message()), HasSubstr("onnect"));
  EXPECT_GE(f.Status().consecutive_failures, 1);
  EXPECT_FALSE(f.Status().last_success.has_value());

  server_.Start(port);  // the backoff retries pick it up
  EXPECT_TRUE(testutil::WaitFor([&] { return HasKid(f, "k1"); }));
  EXPECT_EQ(f.Status().consecutive_failures, 0);
  EXPECT_EQ(f.Status().last_success, clock_.Now());
}

TEST_F(JwksFetcherTest, ASlowServerTimesOut) {
  dir_.Write("jwks.delay", "3");
  int port = server_.Start();
  JwksFetcherOptions o = Options();
  o.timeout = milliseconds(300);
  JwksFetcher f(Uri(port), o, clock_);
  ASSERT_TRUE(f.WaitForFetches(1, milliseconds(2500)));
  EXPECT_THAT(f.Status().last_error, HasSubstr("timed out after 300 ms"));
  EXPECT_FALSE(f.Current().ok());
}

TEST_F(JwksFetcherTest, GarbageKeepsThePreviousKeys) {
  int port = server_.Start();
  JwksFetcher f(Uri(port), Options(), clock_);
  ASSERT_TRUE(f.WaitForFetches(1, milliseconds(10'000)));
  ASSERT_TRUE(HasKid(f, "k1")) << f.Status().last_error;
  dir_.Write("jwks", "<html>not json</html>");
  f.RefreshNow();
  ASSERT_TRUE(f.WaitForFetches(2, milliseconds(10'000)));
  EXPECT_TRUE(HasKid(f, "k1"));  // stale on error
  JwksFetcherStatus s = f.Status();
  EXPECT_THAT(s.last_error, HasSubstr("JWKS from " + Uri(port)));
  EXPECT_GE(s.consecutive_failures, 1);
  EXPECT_TRUE(s.last_success.has_value());
}

TEST_F(JwksFetcherTest, ErrorsNameTheirCause) {
  dir_.Write("big", std::string(4096, ' ') + KeySet("k1"));
  int port = server_.Start();
  JwksFetcherOptions o = Options();
  o.max_body_bytes = 1024;
  JwksFetcher big(Uri(port, "big"), o, clock_);
  JwksFetcher missing(Uri(port, "missing"), o, clock_);
  JwksFetcher ftp("ftp://127.0.0.1/jwks", o, clock_);
  ASSERT_TRUE(big.WaitForFetches(1, milliseconds(10'000)));
  ASSERT_TRUE(missing.WaitForFetches(1, milliseconds(10'000)));
  ASSERT_TRUE(ftp.WaitForFetches(1, milliseconds(10'000)));
  EXPECT_THAT(big.Status().last_error, HasSubstr("body larger than 1024 bytes"));
  EXPECT_THAT(missing.Status().last_error, HasSubstr("HTTP 404"));
  EXPECT_THAT(ftp.Status().last_error, HasSubstr("not an http(s) URL"));
}

// ---- Working ----------------------------------------------------------------------------------

TEST_F(JwksFetcherTest, AGoodFetch) {
  int port = server_.Start();
  JwksFetcher f(Uri(port), Options(), clock_);
  ASSERT_TRUE(f.WaitForFetches(1, milliseconds(10'000)));
  EXPECT_TRUE(HasKid(f, "k1")) << f.Status().last_error;
  JwksFetcherStatus s = f.Status();
  EXPECT_EQ(s.uri, Uri(port));
  EXPECT_EQ(s.keys, 1u);
  EXPECT_EQ(s.last_error, "");
  EXPECT_EQ(s.last_success, clock_.Now());
}

TEST_F(JwksFetcherTest, KeyRotationIsPickedUpAtRefresh) {
  int port = server_.Start();
  JwksFetcherOptions o = Options();
  o.refresh_interval = milliseconds(200);
  JwksFetcher f(Uri(port), o, clock_);
  ASSERT_TRUE(f.WaitForFetches(1, milliseconds(10'000)));
  ASSERT_TRUE(HasKid(f, "k1"));
  dir_.Write("jwks", KeySet("k2"));
  EXPECT_TRUE(testutil::WaitFor([&] { return HasKid(f, "k2"); }));
}

TEST_F(JwksFetcherTest, StoppingAbortsAFetchInFlight) {
  dir_.Write("jwks.delay", "30");
  int port = server_.Start();
  JwksFetcherOptions o = Options();
  o.timeout = milliseconds(60'000);
  auto start = std::chrono::steady_clock::now();
  {
    JwksFetcher f(Uri(port), o, clock_);
    EXPECT_TRUE(testutil::WaitFor([&] { return f.Status().fetches == 0; }));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(JwksFetchScheduleTest, BackoffDoublesUpToTheCap) {
  JwksFetcherOptions o;
  o.initial_backoff = milliseconds(1000);
  EXPECT_EQ(NextFetchDelay(o, 0), std::chrono::minutes(20));
  EXPECT_EQ(NextFetchDelay(o, 1), milliseconds(1000));
  EXPECT_EQ(NextFetchDelay(o, 2), milliseconds(2000));
  EXPECT_EQ(NextFetchDelay(o, 6), milliseconds(32'000));
  EXPECT_EQ(NextFetchDelay(o, 7), milliseconds(60'000));
  EXPECT_EQ(NextFetchDelay(o, 1000), milliseconds(60'000));
  o.refresh_interval = milliseconds(5000);
  EXPECT_EQ(NextFetchDelay(o, 10), milliseconds(5000));
}

TEST(JwksFetcherRegistryTest, OneFetcherPerUriDroppedWhenUnused) {
  JwksFetcherOptions o;
  o.initial_backoff = milliseconds(50);
  JwksFetcherRegistry registry(o);
  JwtRuleSpec rule;
  rule.jwks_uri = "http://127.0.0.1:1/jwks";  // nothing listens on port 1
  rule.timeout_ms = 700;
  auto a = registry.ForRule(rule);
  auto b = registry.ForRule(rule);
  EXPECT_EQ(a, b);
  EXPECT_EQ(registry.ForRule(JwtRuleSpec{}), nullptr);  // inline jwks: not the registry's
  auto other = registry.Get("http://127.0.0.1:1/other");
  EXPECT_NE(other, a);
  ASSERT_EQ(registry.Status().size(), 2u);
  other.reset();
  EXPECT_EQ(registry.Sweep(), std::vector<std::string>{"http://127.0.0.1:1/other"});
  EXPECT_THAT(registry.Sweep(), ::testing::IsEmpty());  // `a` and `b` still hold the first
  a.reset();
  b.reset();
  EXPECT_EQ(registry.Sweep(), std::vector<std::string>{"http://127.0.0.1:1/jwks"});
  EXPECT_THAT(registry.Status(), ::testing::IsEmpty());
}

}  // namespace
}  // namespace zm::jwt
