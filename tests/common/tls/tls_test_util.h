#pragma once
// Shared by the common/tls tests: a temporary directory, a CA on a FakeClock, certificate
// minting, and a handshake driver over a socketpair (both ends on the test thread, no sleeps).

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "common/base/clock.h"
#include "common/base/fd.h"
#include "common/base/status.h"
#include "common/tls/ca.h"
#include "common/tls/csr.h"
#include "common/tls/hbone_tls.h"
#include "common/tls/pem.h"
#include "common/tls/spiffe.h"
#include "tests/testutil/temp_dir.h"

namespace zm::tls::tlstest {

inline constexpr char kTrustDomain[] = "cluster.local";

using TempDir = testutil::TempDir;

inline SpiffeId Id(std::string_view uri) {
  auto id = SpiffeId::Parse(uri);
  if (!id.ok()) std::abort();
  return *id;
}

// A key, a CSR for `id`, signed by `ca`: the credentials a workload would hold.
inline absl::StatusOr<Credentials> Mint(const CertificateAuthority& ca, const SpiffeId& id,
                                        std::chrono::seconds ttl = std::chrono::hours(24)) {
  ZM_ASSIGN_OR_RETURN(EvpPkeyPtr key, GenerateEcP256Key());
  ZM_ASSIGN_OR_RETURN(std::string csr, BuildCsr(key.get(), id));
  ZM_ASSIGN_OR_RETURN(std::vector<std::string> chain, ca.Sign(csr, id, ttl));
  ZM_ASSIGN_OR_RETURN(std::string key_pem, PrivateKeyToPem(key.get()));
  return Credentials::FromPem(key_pem, chain);
}

// A root CA for `trust_domain` in its own directory, created on `clock`.
struct TestCa {
  TempDir dir;
  std::optional<CertificateAuthority> ca;

  TestCa(const Clock& clock, std::string trust_domain = kTrustDomain) {
    auto created = CertificateAuthority::LoadOrCreate(dir.File("ca.pem"), dir.File("ca-key.pem"),
                                                      std::move(trust_domain), clock);
    if (!created.ok()) {
      ADD_FAILURE() << created.status();
      std::abort();
    }
    ca.emplace(*std::move(created));
  }
  const CertificateAuthority& operator*() const { return *ca; }
  const CertificateAuthority* operator->() const { return &*ca; }
};

// Two SSLs joined by a non-blocking socketpair.
struct SslPair {
  Fd client_fd, server_fd;
  SslPtr client, server;
};

inline SslPair Connect(SSL_CTX* client_ctx, SSL_CTX* server_ctx) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
  SslPair p{Fd(fds[0]), Fd(fds[1]), SslPtr(SSL_new(client_ctx)), SslPtr(SSL_new(server_ctx))};
  if (!p.client || !p.server) std::abort();
  SSL_set_fd(p.client.get(), p.client_fd.get());
  SSL_set_fd(p.server.get(), p.server_fd.get());
  SSL_set_connect_state(p.client.get());
  SSL_set_accept_state(p.server.get());
  return p;
}

struct Outcome {
  absl::Status client = absl::UnknownError("not run");
  absl::Status server = absl::UnknownError("not run");
};

// Steps both ends until each has finished or failed; a stall (both waiting) is an error.
inline Outcome Handshake(SslPair& p) {
  Outcome o;
  bool client_over = false, server_over = false;
  auto step = [](SSL* ssl, bool& over, absl::Status& result) {
    if (over) return;
    int r = SSL_do_handshake(ssl);
    if (r == 1) {
      over = true;
      result = absl::OkStatus();
      return;
    }
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
    over = true;
    result = HandshakeError(ssl, r);
  };
  for (int i = 0; i < 32 && !(client_over && server_over); ++i) {
    step(p.client.get(), client_over, o.client);
    step(p.server.get(), server_over, o.server);
  }
  if (!client_over) o.client = absl::DeadlineExceededError("client handshake stalled");
  if (!server_over) o.server = absl::DeadlineExceededError("server handshake stalled");
  return o;
}

// Reads exactly n bytes already sent by the other end; bounded, never sleeps.
inline absl::StatusOr<std::string> ReadN(SSL* ssl, size_t n) {
  std::string out;
  for (int i = 0; i < 32 && out.size() < n; ++i) {
    char buf[256];
    int r = SSL_read(ssl, buf, static_cast<int>(std::min(sizeof(buf), n - out.size())));
    if (r > 0) {
      out.append(buf, static_cast<size_t>(r));
      continue;
    }
    int e = SSL_get_error(ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return HandshakeError(ssl, r);
  }
  if (out.size() < n) return absl::DeadlineExceededError("read stalled");
  return out;
}

inline absl::Status Write(SSL* ssl, std::string_view data) {
  int r = SSL_write(ssl, data.data(), static_cast<int>(data.size()));
  if (r != static_cast<int>(data.size())) return HandshakeError(ssl, r);
  return absl::OkStatus();
}

// ping from the client, pong from the server.
inline absl::Status Exchange(SslPair& p) {
  ZM_RETURN_IF_ERROR(Write(p.client.get(), "ping"));
  ZM_ASSIGN_OR_RETURN(std::string got, ReadN(p.server.get(), 4));
  if (got != "ping") return absl::DataLossError(got);
  ZM_RETURN_IF_ERROR(Write(p.server.get(), "pong"));
  ZM_ASSIGN_OR_RETURN(got, ReadN(p.client.get(), 4));
  if (got != "pong") return absl::DataLossError(got);
  return absl::OkStatus();
}

}  // namespace zm::tls::tlstest
