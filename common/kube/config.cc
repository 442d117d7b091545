#include "common/kube/config.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>

#include "absl/strings/escaping.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/base/strings.h"
#include "common/k8s/manifest.h"

namespace zm::kube {
namespace {

spdlog::logger& L() { return Log("kube"); }

std::string Trim(std::string_view s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(ws);
  return std::string(s.substr(b, e - b + 1));
}

// A file we only need to exist and be readable now (it is read again later by libcurl).
absl::Status CheckReadable(const std::string& path, std::string_view what) {
  auto bytes = k8s::ReadManifestBytes(path);
  if (!bytes.ok())
    return absl::Status(bytes.status().code(), StrCat(what, ": ", bytes.status().message()));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadToken(const std::string& path) {
  ZM_ASSIGN_OR_RETURN(std::string bytes, k8s::ReadManifestBytes(path));
  std::string token = Trim(bytes);
  if (token.empty()) return absl::InvalidArgumentError(StrCat("token file ", path, " is empty"));
  return token;
}

// Field access on kubeconfig YAML with errors naming the file and the field.
class KubeconfigReader {
 public:
  explicit KubeconfigReader(const std::string& path) : path_(path) {
    base_dir_ = std::filesystem::path(path).parent_path().string();
  }

  absl::Status Error(std::string_view field, std::string_view message) const {
    return absl::InvalidArgumentError(StrCat("kubeconfig ", path_, ": ", field, ": ", message));
  }

  // A string field of `map` (absent: empty).
  absl::StatusOr<std::string> String(const YAML::Node& map, const char* key,
                                     std::string_view prefix) const {
    const YAML::Node n = map[key];
    if (!n.IsDefined() || n.IsNull()) return std::string();
    if (!n.IsScalar()) return Error(StrCat(prefix, ".", key), "not a string");
    return n.Scalar();
  }

  absl::StatusOr<bool> Bool(const YAML::Node& map, const char* key, std::string_view prefix) const {
    ZM_ASSIGN_OR_RETURN(std::string s, String(map, key, prefix));
    if (s.empty() || s == "false") return false;
    if (s == "true") return true;
    return Error(StrCat(prefix, ".", key), StrCat("not true or false: \"", s, "\""));
  }

  // A base64 field (the *-data ones), decoded.
  absl::StatusOr<std::string> Base64(const YAML::Node& map, const char* key,
                                     std::string_view prefix) const {
    ZM_ASSIGN_OR_RETURN(std::string s, String(map, key, prefix));
    if (s.empty()) return s;
    std::string out;
    if (!absl::Base64Unescape(s, &out) || out.empty()) {
      return Error(StrCat(prefix, ".", key), "not valid base64");
    }
    return out;
  }

  // A file path field, made absolute against the kubeconfig's directory.
  absl::StatusOr<std::string> Path(const YAML::Node& map, const char* key,
                                   std::string_view prefix) const {
    ZM_ASSIGN_OR_RETURN(std::string s, String(map, key, prefix));
    if (s.empty() || s.front() == '/' || base_dir_.empty()) return s;
    return (std::filesystem::path(base_dir_) / s).string();
  }

  // The entry of the named list (clusters, users, contexts) called `name`: its inner map
  // (`cluster:`, `user:`, `context:`).
  absl::StatusOr<YAML::Node> Named(const YAML::Node& doc, const char* list, const char* inner,
                                   const std::string& name) const {
    const YAML::Node items = doc[list];
    if (!items.IsDefined() || items.IsNull()) return Error(list, "missing");
    if (!items.IsSequence()) return Error(list, "not a list");
    for (size_t i = 0; i < items.size(); ++i) {
      const YAML::Node item = items[i];
      if (!item.IsMap()) return Error(StrCat(list, "[", i, "]"), "not a mapping");
      ZM_ASSIGN_OR_RETURN(std::string n, String(item, "name", StrCat(list, "[", i, "]")));
      if (n != name) continue;
      const YAML::Node body = item[inner];
      const std::string field = StrCat(list, "[\"", name, "\"].", inner);
      if (!body.IsDefined() || body.IsNull()) return Error(field, "missing");
      if (!body.IsMap()) return Error(field, "not a mapping");
      return body;
    }
    return Error(list, StrCat("no entry named \"", name, "\""));
  }

 private:
  std::string path_;
  std::string base_dir_;
};

absl::StatusOr<Config> ParseKubeconfigDoc(const YAML::Node& doc, const std::string& path,
                                          std::string_view wanted_context) {
  KubeconfigReader r(path);
  if (!doc.IsMap()) return r.Error("(document)", "not a mapping");
  std::string context(wanted_context);
  if (context.empty()) {
    ZM_ASSIGN_OR_RETURN(context, r.String(doc, "current-context", "(document)"));
    if (context.empty())
      return r.Error("current-context", "missing (and no context was asked for)");
  }
  ZM_ASSIGN_OR_RETURN(YAML::Node ctx, r.Named(doc, "contexts", "context", context));
  const std::string ctx_field = StrCat("contexts[\"", context, "\"].context");
  ZM_ASSIGN_OR_RETURN(std::string cluster_name, r.String(ctx, "cluster", ctx_field));
  ZM_ASSIGN_OR_RETURN(std::string user_name, r.String(ctx, "user", ctx_field));
  if (cluster_name.empty()) return r.Error(StrCat(ctx_field, ".cluster"), "missing");

  Config c;
  c.source = StrCat("kubeconfig ", path, " (context ", context, ")");
  ZM_ASSIGN_OR_RETURN(c.namespace_name, r.String(ctx, "namespace", ctx_field));

  ZM_ASSIGN_OR_RETURN(YAML::Node cluster, r.Named(doc, "clusters", "cluster", cluster_name));
  const std::string cf = StrCat("clusters[\"", cluster_name, "\"].cluster");
  ZM_ASSIGN_OR_RETURN(c.server, r.String(cluster, "server", cf));
  if (c.server.empty()) return r.Error(StrCat(cf, ".server"), "missing");
  if (!c.server.starts_with("https://") && !c.server.starts_with("http://")) {
    return r.Error(StrCat(cf, ".server"), StrCat("not an http(s) URL: \"", c.server, "\""));
  }
  while (c.server.ends_with("/")) c.server.pop_back();
  ZM_ASSIGN_OR_RETURN(c.ca_file, r.Path(cluster, "certificate-authority", cf));
  ZM_ASSIGN_OR_RETURN(c.ca_pem, r.Base64(cluster, "certificate-authority-data", cf));
  ZM_ASSIGN_OR_RETURN(c.insecure_skip_tls_verify, r.Bool(cluster, "insecure-skip-tls-verify", cf));
  if (!c.ca_pem.empty() && c.ca_pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    return r.Error(StrCat(cf, ".certificate-authority-data"), "not a PEM certificate bundle");
  }
  if (!c.ca_file.empty())
    ZM_RETURN_IF_ERROR(
        CheckReadable(c.ca_file, StrCat("kubeconfig ", path, ": ", cf, ".certificate-authority")));

  if (user_name.empty()) return c;  // anonymous
  ZM_ASSIGN_OR_RETURN(YAML::Node user, r.Named(doc, "users", "user", user_name));
  const std::string uf = StrCat("users[\"", user_name, "\"].user");
  for (const char* plugin : {"exec", "auth-provider"}) {
    const YAML::Node n = user[plugin];
    if (n.IsDefined() && !n.IsNull()) {
      return r.Error(StrCat(uf, ".", plugin),
                     "credential plugins are not supported (use token, tokenFile or a client "
                     "certificate)");
    }
  }
  ZM_ASSIGN_OR_RETURN(c.token, r.String(user, "token", uf));
  ZM_ASSIGN_OR_RETURN(c.token_file, r.Path(user, "tokenFile", uf));
  ZM_ASSIGN_OR_RETURN(c.client_cert_file, r.Path(user, "client-certificate", uf));
  ZM_ASSIGN_OR_RETURN(c.client_key_file, r.Path(user, "client-key", uf));
  ZM_ASSIGN_OR_RETURN(c.client_cert_pem, r.Base64(user, "client-certificate-data", uf));
  ZM_ASSIGN_OR_RETURN(c.client_key_pem, r.Base64(user, "client-key-data", uf));
  // kubectl: a literal token wins over tokenFile.
  if (!c.token.empty()) c.token_file.clear();
  if (!c.token_file.empty()) {
    auto t = ReadToken(c.token_file);
    if (!t.ok()) return r.Error(StrCat(uf, ".tokenFile"), std::string(t.status().message()));
  }
  const bool has_cert = !c.client_cert_file.empty() || !c.client_cert_pem.empty();
  const bool has_key = !c.client_key_file.empty() || !c.client_key_pem.empty();
  if (has_cert != has_key) {
    return r.Error(StrCat(uf, has_cert ? ".client-key" : ".client-certificate"),
                   StrCat("missing (", has_cert ? "client-certificate" : "client-key",
                          " needs it; also accepted as *-data)"));
  }
  if (!c.client_cert_file.empty())
    ZM_RETURN_IF_ERROR(CheckReadable(c.client_cert_file,
                                     StrCat("kubeconfig ", path, ": ", uf, ".client-certificate")));
  if (!c.client_key_file.empty())
    ZM_RETURN_IF_ERROR(
        CheckReadable(c.client_key_file, StrCat("kubeconfig ", path, ": ", uf, ".client-key")));
  return c;
}

}  // namespace

absl::StatusOr<Config> InClusterConfig(const InClusterOptions& options) {
  auto env = [&options](const std::string& name) -> std::string {
    if (options.getenv) return options.getenv(name).value_or("");
    const char* v = std::getenv(name.c_str());
    return v != nullptr ? v : "";
  };
  const std::string host = env("KUBERNETES_SERVICE_HOST");
  const std::string port = env("KUBERNETES_SERVICE_PORT");
  for (const auto& [name, value] :
       {std::pair<std::string_view, const std::string&>("KUBERNETES_SERVICE_HOST", host),
        {"KUBERNETES_SERVICE_PORT", port}}) {
    if (value.empty()) {
      return absl::FailedPreconditionError(
          StrCat("in-cluster config: ", name, " is not set (not running in a pod?)"));
    }
  }
  Config c;
  c.source = "in-cluster";
  // An IPv6 service address goes in brackets.
  c.server = host.find(':') != std::string::npos ? StrCat("https://[", host, "]:", port)
                                                 : StrCat("https://", host, ":", port);
  c.ca_file = options.ca_file;
  c.token_file = options.token_file;
  ZM_RETURN_IF_ERROR(CheckReadable(c.ca_file, "in-cluster config: CA bundle"));
  auto token = ReadToken(c.token_file);
  if (!token.ok()) {
    return absl::Status(token.status().code(), StrCat("in-cluster config: service-account token: ",
                                                      token.status().message()));
  }
  if (auto ns = k8s::ReadManifestBytes(options.namespace_file); ns.ok()) {
    c.namespace_name = Trim(*ns);
  }
  return c;
}

absl::StatusOr<Config> ParseKubeconfig(std::string_view yaml, const std::string& path,
                                       std::string_view context) {
  YAML::Node doc;
  try {
    doc = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(StrCat("kubeconfig ", path, ": line ", e.mark.line + 1,
                                             ", column ", e.mark.column + 1,
                                             ": YAML error: ", e.msg));
  }
  try {
    return ParseKubeconfigDoc(doc, path, context);
  } catch (const YAML::Exception& e) {
    // Every access above checks the node type first; this is a backstop, never silent.
    return absl::InvalidArgumentError(StrCat("kubeconfig ", path, ": ", e.what()));
  }
}

absl::StatusOr<Config> LoadKubeconfig(const std::string& path, std::string_view context) {
  auto bytes = k8s::ReadManifestBytes(path);
  if (!bytes.ok()) {
    return absl::Status(bytes.status().code(), StrCat("kubeconfig: ", bytes.status().message()));
  }
  return ParseKubeconfig(*bytes, path, context);
}

absl::StatusOr<Config> LoadConfig(bool in_cluster, const std::string& kubeconfig,
                                  std::string_view context) {
  return in_cluster ? InClusterConfig() : LoadKubeconfig(kubeconfig, context);
}

TokenSource::TokenSource(std::string token, std::string token_file, const Clock& clock)
    : fixed_(std::move(token)), file_(std::move(token_file)), clock_(clock) {}

void TokenSource::Invalidate() {
  std::lock_guard lock(mu_);
  stale_ = true;
}

absl::StatusOr<std::string> TokenSource::Get() {
  if (file_.empty()) return fixed_;
  std::lock_guard lock(mu_);
  struct stat st {};
  std::optional<Stamp> stamp;
  if (::stat(file_.c_str(), &st) == 0) {
    stamp = Stamp{.dev = st.st_dev,
                  .ino = st.st_ino,
                  .size = st.st_size,
                  .mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec};
  }
  const auto now = clock_.Now();
  const bool due =
      stale_ || !stamp || stamp != stamp_ || now - read_at_ >= kRereadInterval || now < read_at_;
  if (!due) return token_;
  auto token = ReadToken(file_);
  if (!token.ok()) {
    if (token_.empty()) return token.status();
    L().warn("keeping the last bearer token: {}", token.status().message());
    stamp_ = stamp;  // not again until the file changes or the interval passes
    read_at_ = now;
    stale_ = false;
    return token_;
  }
  if (!token_.empty() && *token != token_) L().info("bearer token in {} rotated", file_);
  token_ = *std::move(token);
  stamp_ = stamp;
  read_at_ = now;
  stale_ = false;
  return token_;
}

}  // namespace zm::kube
