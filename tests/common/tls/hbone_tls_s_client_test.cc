// Interop: the `openssl s_client` binary against our HBONE server context on loopback.
// Real time (s_client checks our certificate against the wall clock), bounded waits.

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <utility>

#include "common/base/status.h"
#include "common/tls/hbone_tls.h"
#include "tests/common/tls/tls_test_util.h"

extern char** environ;

namespace zm::tls {
namespace {

using ::testing::HasSubstr;
using tlstest::Id;
using tlstest::TempDir;
using tlstest::TestCa;

constexpr int kTimeoutMs = 10'000;

std::optional<std::string> FindOpenssl() {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/openssl";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return std::nullopt;
}

// A child process; waited for with a deadline through a pidfd, killed if it overstays.
class Child {
 public:
  static absl::StatusOr<Child> Spawn(const std::vector<std::string>& argv, const std::string& out) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, argv[0].c_str(), &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return ErrnoError("posix_spawn", argv[0], rc);
    Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd) return ErrnoError("pidfd_open", argv[0]);
    return Child(pid, std::move(pidfd));
  }
  Child(Child&& other) noexcept
      : pid_(std::exchange(other.pid_, -1)), pidfd_(std::move(other.pidfd_)) {}
  Child& operator=(Child&&) = delete;
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  // The exit code, or an error when it did not exit within the deadline.
  absl::StatusOr<int> Wait() {
    pollfd pfd{pidfd_.get(), POLLIN, 0};
    if (::poll(&pfd, 1, kTimeoutMs) != 1) return absl::DeadlineExceededError("child still running");
    int status = 0;
    if (::waitpid(pid_, &status, 0) != pid_) return ErrnoError("waitpid", "s_client");
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  Child(pid_t pid, Fd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}
  pid_t pid_;
  Fd pidfd_;
};

class SClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto openssl = FindOpenssl();
    if (!openssl) GTEST_SKIP() << "openssl binary not found in PATH; install the openssl package";
    openssl_ = *openssl;
    auto server_creds = tlstest::Mint(*ca_, server_id_);
    auto client_creds = tlstest::Mint(*ca_, client_id_);
    ASSERT_TRUE(server_creds.ok() && client_creds.ok());
    roots_.emplace(*RootBundle::FromPem(ca_->RootPem()));
    auto ctx = MakeServerContext(*server_creds, *roots_, "cluster.local", clock_);
    ASSERT_TRUE(ctx.ok()) << ctx.status();
    server_ctx_ = *std::move(ctx);
    ASSERT_TRUE(WriteFileAtomically(dir_.File("root.pem"), ca_->RootPem(), 0644).ok());
    ASSERT_TRUE(
        WriteFileAtomically(dir_.File("client.pem"), *CertsToPem(client_creds->chain), 0644).ok());
    ASSERT_TRUE(WriteFileAtomically(dir_.File("client-key.pem"),
                                    *PrivateKeyToPem(client_creds->key.get()), 0600)
                    .ok());

    listener_ = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(listener_.valid());
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(::listen(listener_.get(), 4), 0);
    socklen_t len = sizeof(addr);
    ASSERT_EQ(::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
  }

  std::vector<std::string> SClient(std::vector<std::string> extra) {
    std::vector<std::string> argv = {openssl_,
                                     "s_client",
                                     "-connect",
                                     "127.0.0.1:" + std::to_string(port_),
                                     "-noservername",
                                     "-CAfile",
                                     dir_.File("root.pem"),
                                     "-verify_return_error"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  // Accepts one connection and runs the server handshake on it, blocking with deadlines.
  struct Served {
    absl::Status handshake;
    std::optional<SpiffeId> peer;
  };
  Served Serve() {
    Served s;
    pollfd pfd{listener_.get(), POLLIN, 0};
    if (::poll(&pfd, 1, kTimeoutMs) != 1) {
      s.handshake = absl::DeadlineExceededError("no connection");
      return s;
    }
    Fd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    timeval tv{kTimeoutMs / 1000, 0};
    ::setsockopt(conn.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(conn.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    SslPtr ssl(SSL_new(server_ctx_.get()));
    SSL_set_fd(ssl.get(), conn.get());
    int r = SSL_accept(ssl.get());
    if (r != 1) {
      s.handshake = HandshakeError(ssl.get(), r);
      return s;
    }
    s.handshake = VerifyAlpn(ssl.get());
    if (auto id = PeerIdentity(ssl.get()); id.ok()) s.peer = *id;
    SSL_shutdown(ssl.get());
    return s;
  }

  std::string Output() { return ReadFile(dir_.File("out.txt")).value_or("(no output)"); }

  const SystemClock& clock_ = SystemClock::Get();
  TestCa ca_{clock_};
  TempDir dir_;
  std::string openssl_;
  std::optional<RootBundle> roots_;
  SslCtxPtr server_ctx_;
  Fd listener_;
  uint16_t port_ = 0;
  SpiffeId server_id_ = Id("spiffe://cluster.local/ns/backend/sa/api");
  SpiffeId client_id_ = Id("spiffe://cluster.local/ns/frontend/sa/web");
};

TEST_F(SClientTest, Tls12Fails) {
  auto child = Child::Spawn(SClient({"-tls1_2", "-alpn", "h2", "-cert", dir_.File("client.pem"),
                                     "-key", dir_.File("client-key.pem")}),
                            dir_.File("out.txt"));
  ASSERT_TRUE(child.ok()) << child.status();
  Served s = Serve();
  auto rc = child->Wait();
  ASSERT_TRUE(rc.ok()) << rc.status();
  EXPECT_NE(*rc, 0) << Output();
  ASSERT_FALSE(s.handshake.ok());
  EXPECT_THAT(std::string(s.handshake.message()), HasSubstr("TLS 1.3 required"));
}

TEST_F(SClientTest, Tls13WithH2AndClientCertificateSucceeds) {
  auto child = Child::Spawn(SClient({"-tls1_3", "-alpn", "h2", "-cert", dir_.File("client.pem"),
                                     "-key", dir_.File("client-key.pem")}),
                            dir_.File("out.txt"));
  ASSERT_TRUE(child.ok()) << child.status();
  Served s = Serve();
  auto rc = child->Wait();
  ASSERT_TRUE(rc.ok()) << rc.status();
  ASSERT_TRUE(s.handshake.ok()) << s.handshake << "\n" << Output();
  ASSERT_TRUE(s.peer.has_value());
  EXPECT_EQ(*s.peer, client_id_);
  EXPECT_EQ(*rc, 0) << Output();
  std::string out = Output();
  EXPECT_THAT(out, HasSubstr("ALPN protocol: h2"));
  EXPECT_THAT(out, HasSubstr("Verify return code: 0 (ok)"));
  EXPECT_THAT(out, HasSubstr("TLSv1.3"));
}

TEST_F(SClientTest, Tls13WithoutClientCertificateFails) {
  auto child = Child::Spawn(SClient({"-tls1_3", "-alpn", "h2"}), dir_.File("out.txt"));
  ASSERT_TRUE(child.ok()) << child.status();
  Served s = Serve();
  ASSERT_TRUE(child->Wait().ok());
  ASSERT_FALSE(s.handshake.ok());
  EXPECT_THAT(std::string(s.handshake.message()), HasSubstr("no client certificate"));
}

TEST_F(SClientTest, Tls13WithHttp11AlpnFails) {
  auto child = Child::Spawn(SClient({"-tls1_3", "-alpn", "http/1.1", "-cert",
                                     dir_.File("client.pem"), "-key", dir_.File("client-key.pem")}),
                            dir_.File("out.txt"));
  ASSERT_TRUE(child.ok()) << child.status();
  Served s = Serve();
  auto rc = child->Wait();
  ASSERT_TRUE(rc.ok()) << rc.status();
  EXPECT_NE(*rc, 0) << Output();
  ASSERT_FALSE(s.handshake.ok());
  EXPECT_THAT(std::string(s.handshake.message()), HasSubstr("h2 required"));
}

}  // namespace
}  // namespace zm::tls
