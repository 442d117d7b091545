#pragma once
// Shared by the zmesh-ca tests (tests/ca, tests/ztunnel/identity): a temporary directory with
// a root, a token file and manifests (node1 runs demo/client, node2 runs demo/server, a
// finished job demo/batch ran on node1), CSRs, and the check that a chain is a real leaf of
// the root for the SPIFFE ID asked for.

#include <gtest/gtest.h>
#include <openssl/x509_vfy.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ca/cluster_server.h"
#include "common/base/clock.h"
#include "common/base/strings.h"
#include "common/ca/root.h"
#include "common/tls/csr.h"
#include "common/tls/pem.h"
#include "common/tls/spiffe.h"

namespace zm::ca::testing {

inline constexpr char kTokens[] =
    "# ztunnel tokens\n"
    "tok-node1,node1\n"
    "\n"
    "tok-node2 , node2\n";

inline constexpr char kManifests[] = R"(apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {zmesh.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: demo, uid: u-client}
spec: {serviceAccountName: client, nodeName: node1}
status: {phase: Running, podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: demo, uid: u-server}
spec: {serviceAccountName: server, nodeName: node2}
status: {phase: Running, podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: batch, namespace: demo, uid: u-batch}
spec: {serviceAccountName: batch, nodeName: node1}
status: {phase: Succeeded, podIP: 10.0.0.3}
)";

// Polls `cond` until it holds or `deadline` passes.
inline bool WaitFor(const std::function<bool()>& cond,
                    std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// A directory under /tmp, removed with everything in it.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix) {
    std::string tmpl = StrCat("/tmp/", prefix, "-XXXXXX");
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(std::string_view name) const { return StrCat(path_, "/", name); }

 private:
  std::string path_;
};

inline void WriteFile(const std::string& path, std::string_view content) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  // Through a rename, as a real rotation does: a new inode every time.
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << content;
  }
  std::filesystem::rename(tmp, path);
}

// spiffe://<td>/ns/<ns>/sa/<sa>, for names the test knows to be valid.
inline tls::SpiffeId Id(std::string_view ns, std::string_view sa,
                        std::string_view td = "cluster.local") {
  auto id = tls::SpiffeId::Parse(StrCat("spiffe://", td, "/ns/", ns, "/sa/", sa));
  if (!id.ok()) std::abort();
  return *id;
}

inline std::string Csr(std::string_view ns, std::string_view sa,
                       std::string_view trust_domain = "cluster.local") {
  auto key = tls::GenerateEcP256Key();
  auto id = tls::SpiffeId::Parse(StrCat("spiffe://", trust_domain, "/ns/", ns, "/sa/", sa));
  if (!key.ok() || !id.ok()) std::abort();
  auto csr = tls::BuildCsr(key->get(), *id);
  if (!csr.ok()) std::abort();
  return *csr;
}

// The SPIFFE ID of `chain`'s leaf after verifying it (and anything in between) against
// `root_pem` as the only trust anchor.
inline absl::StatusOr<tls::SpiffeId> VerifiedIdentity(const std::vector<std::string>& chain,
                                                      const std::string& root_pem) {
  if (chain.empty()) return absl::InvalidArgumentError("empty chain");
  auto leaf = tls::CertFromPem(chain.front(), "leaf");
  if (!leaf.ok()) return leaf.status();
  auto root = tls::CertFromPem(root_pem, "root");
  if (!root.ok()) return root.status();
  tls::X509StorePtr store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), root->get());
  tls::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf->get(), nullptr);
  if (X509_verify_cert(ctx.get()) != 1) {
    return absl::PermissionDeniedError(
        X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get())));
  }
  return tls::SpiffeIdOfCert(leaf->get());
}

// A ClusterCaServer on 127.0.0.1 (a free port) over a fresh root, token file and manifests.
class ClusterCaHarness {
 public:
  ClusterCaHarness() : dir_("zmesh-ca-test") {
    WriteFile(tokens_path(), kTokens);
    WriteFile(dir_ / "manifests/pods.yaml", kManifests);
    auto root = LoadOrCreateRoot(RootFilesIn(dir_.path()), "cluster.local", clock_);
    EXPECT_TRUE(root.ok()) << root.status();
    root_.emplace(std::move(*root));
    auto tokens = StaticTokenFile::Load(tokens_path());
    EXPECT_TRUE(tokens.ok()) << tokens.status();
    tokens_ = std::move(*tokens);
    auto pods = ManifestNodeAuthorizer::Open(dir_ / "manifests", "cluster.local");
    EXPECT_TRUE(pods.ok()) << pods.status();
    pods_ = std::move(*pods);
    auto server = ClusterCaServer::Start(*root_, *tokens_, *pods_, {.listen = "127.0.0.1:0"});
    EXPECT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  std::string target() const { return StrCat("127.0.0.1:", server_->port()); }
  std::string root_cert_path() const { return RootFilesIn(dir_.path()).cert; }
  std::string tokens_path() const { return dir_ / "tokens"; }
  const std::string& root_pem() const { return root_->RootPem(); }
  const TempDir& dir() const { return dir_; }
  ClusterCaServer& server() { return *server_; }

 private:
  TempDir dir_;
  SystemClock clock_;
  std::optional<tls::CertificateAuthority> root_;
  std::unique_ptr<StaticTokenFile> tokens_;
  std::unique_ptr<ManifestNodeAuthorizer> pods_;
  std::unique_ptr<ClusterCaServer> server_;
};

}  // namespace zm::ca::testing
