#pragma once
// How to reach the Kubernetes API server: in-cluster (the pod's service account) or a
// kubeconfig file, and the bearer token, re-read when kubelet rotates it.

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/base/clock.h"

namespace zm::kube {

struct Config {
  std::string server;  // "https://10.96.0.1:443" (http:// is accepted, for tests)
  // TLS: the CA bundle as a file or as PEM text (kubeconfig's certificate-authority-data); with
  // neither, the system's trust store.
  std::string ca_file;
  std::string ca_pem;
  bool insecure_skip_tls_verify = false;
  // Credentials: a fixed bearer token, a token file (preferred; re-read on rotation), and/or a
  // client certificate with its key, as files or PEM text.
  std::string token;
  std::string token_file;
  std::string client_cert_file;
  std::string client_key_file;
  std::string client_cert_pem;
  std::string client_key_pem;
  std::string namespace_name;  // the context's namespace, or the pod's; may be empty
  std::string source;          // "in-cluster", "kubeconfig /root/.kube/config (context kind)"
};

inline constexpr char kServiceAccountDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";

struct InClusterOptions {
  std::string token_file = std::string(kServiceAccountDir) + "/token";
  std::string ca_file = std::string(kServiceAccountDir) + "/ca.crt";
  std::string namespace_file = std::string(kServiceAccountDir) + "/namespace";
  // The environment; null reads the process's.
  std::function<std::optional<std::string>(const std::string& name)> getenv;
};

// The pod's own service account: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT,
// the mounted CA bundle and token (both must be readable now; the token is re-read later),
// and the namespace file when present. Errors name the variable or the file.
absl::StatusOr<Config> InClusterConfig(const InClusterOptions& options = {});

// A kubeconfig file: `context` (empty: current-context) -> cluster (server,
// certificate-authority[-data], insecure-skip-tls-verify) and user (token, tokenFile,
// client-certificate[-data], client-key[-data]). Relative paths are relative to the file's
// directory. Errors name the file and the field:
// `kubeconfig /k: users["admin"].user.client-key-data: not valid base64`.
// exec and auth-provider plugins are refused. Only one file (no KUBECONFIG=a:b merging).
absl::StatusOr<Config> LoadKubeconfig(const std::string& path, std::string_view context = "");

// Cluster mode as the binaries' flags choose it (zmesh-agent, zmesh-ca, waypoint): `--in-cluster`
// (InClusterConfig), else `--kubeconfig FILE` with an optional `--kube-context NAME`
// (LoadKubeconfig).
absl::StatusOr<Config> LoadConfig(bool in_cluster, const std::string& kubeconfig,
                                  std::string_view context = "");

// The same from text; `path` names it in errors and anchors relative paths.
absl::StatusOr<Config> ParseKubeconfig(std::string_view yaml, const std::string& path,
                                       std::string_view context = "");

// The bearer token of a Config: the fixed token, or the token file's content (trimmed),
// re-read when the file changes (device, inode, size or mtime; kubelet swaps a symlink) and at
// least every kRereadInterval, and at once after Invalidate() (a 401). A file that cannot be
// read after a good read keeps the last token (logged). Thread-safe.
class TokenSource {
 public:
  static constexpr std::chrono::seconds kRereadInterval{60};

  TokenSource(std::string token, std::string token_file, const Clock& clock);
  TokenSource(const TokenSource&) = delete;
  TokenSource& operator=(const TokenSource&) = delete;

  // The token to send; empty when the config has none (client certificate or anonymous).
  absl::StatusOr<std::string> Get();
  void Invalidate();

 private:
  struct Stamp {
    uint64_t dev = 0, ino = 0;
    int64_t size = -1, mtime_ns = 0;
    bool operator==(const Stamp&) const = default;
  };

  std::mutex mu_;
  const std::string fixed_;
  const std::string file_;
  const Clock& clock_;
  std::string token_;
  std::optional<Stamp> stamp_;
  std::chrono::system_clock::time_point read_at_;
  bool stale_ = true;
};

}  // namespace zm::kube
