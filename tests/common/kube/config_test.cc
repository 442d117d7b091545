// Reaching the API server: kubeconfig files (good, missing fields, bad data), in-cluster
// config, and the bearer token re-read on rotation.
#include "common/kube/config.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "absl/strings/escaping.h"
#include "tests/common/kube/kube_test_util.h"

namespace zm::kube {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

constexpr char kCaPem[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

std::string B64(std::string_view s) { return absl::Base64Escape(std::string(s)); }

std::string Message(const absl::Status& s) { return std::string(s.message()); }

class KubeconfigTest : public ::testing::Test {
 protected:
  // A kubeconfig with two contexts: "dev" (token, CA file relative to the kubeconfig) and
  // "prod" (client certificate and CA as data).
  std::string Good() const {
    return fmt::format(R"(apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev-cluster
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority: certs/ca.crt
- name: prod-cluster
  cluster:
    server: https://prod.example:443
    certificate-authority-data: {}
contexts:
- name: dev
  context: {{cluster: dev-cluster, user: dev-user, namespace: demo}}
- name: prod
  context: {{cluster: prod-cluster, user: prod-user}}
- name: anon
  context: {{cluster: prod-cluster}}
users:
- name: dev-user
  user: {{token: dev-token}}
- name: prod-user
  user:
    client-certificate-data: {}
    client-key-data: {}
)",
                       B64(kCaPem), B64("CERT PEM"), B64("KEY PEM"));
  }

  void SetUp() override {
    std::filesystem::create_directories(dir_.File("certs"));
    dir_.Write("certs/ca.crt", kCaPem);
  }

  absl::StatusOr<Config> Parse(const std::string& yaml, std::string_view context = "") {
    return ParseKubeconfig(yaml, dir_.File("config"), context);
  }

  // The error of a kubeconfig that differs from Good() by one replacement.
  std::string ErrorWith(std::string_view from, std::string_view to, std::string_view ctx = "") {
    std::string yaml = Good();
    size_t at = yaml.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) yaml.replace(at, from.size(), to);
    auto c = Parse(yaml, ctx);
    EXPECT_FALSE(c.ok());
    return Message(c.status());
  }

  TempDir dir_;
};

TEST_F(KubeconfigTest, CurrentContextWithTokenAndCaFile) {
  auto c = Parse(Good());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://127.0.0.1:6443");    // trailing slash dropped
  EXPECT_EQ(c->ca_file, dir_.File("certs/ca.crt"));  // relative to the kubeconfig
  EXPECT_EQ(c->token, "dev-token");
  EXPECT_EQ(c->namespace_name, "demo");
  EXPECT_FALSE(c->insecure_skip_tls_verify);
  EXPECT_EQ(c->source, "kubeconfig " + dir_.File("config") + " (context dev)");
}

TEST_F(KubeconfigTest, NamedContextWithClientCertificateData) {
  auto c = Parse(Good(), "prod");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://prod.example:443");
  EXPECT_EQ(c->ca_pem, kCaPem);
  EXPECT_EQ(c->client_cert_pem, "CERT PEM");
  EXPECT_EQ(c->client_key_pem, "KEY PEM");
  EXPECT_TRUE(c->token.empty());
  auto anon = Parse(Good(), "anon");
  ASSERT_TRUE(anon.ok()) << anon.status();
  EXPECT_TRUE(anon->token.empty() && anon->client_cert_pem.empty());
}

TEST_F(KubeconfigTest, TokenFileAndInsecure) {
  const std::string token = dir_.Write("token", "file-token\n");
  std::string yaml = Good();
  yaml.replace(yaml.find("{token: dev-token}"), 18, "{tokenFile: token}");
  yaml.replace(yaml.find("    certificate-authority: certs/ca.crt"), 39,
               "    insecure-skip-tls-verify: true");
  auto c = Parse(yaml);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->token_file, token);
  EXPECT_TRUE(c->insecure_skip_tls_verify);
  EXPECT_TRUE(c->ca_file.empty());
}

TEST_F(KubeconfigTest, MissingFieldsNameTheFileAndTheField) {
  const std::string file = dir_.File("config");
  EXPECT_EQ(ErrorWith("current-context: dev\n", ""),
            "kubeconfig " + file + ": current-context: missing (and no context was asked for)");
  EXPECT_EQ(ErrorWith("current-context: dev", "current-context: nope"),
            "kubeconfig " + file + ": contexts: no entry named \"nope\"");
  EXPECT_EQ(ErrorWith("cluster: dev-cluster, user", "cluster: gone, user"),
            "kubeconfig " + file + ": clusters: no entry named \"gone\"");
  EXPECT_EQ(ErrorWith("    server: https://127.0.0.1:6443/\n", ""),
            "kubeconfig " + file + ": clusters[\"dev-cluster\"].cluster.server: missing");
  EXPECT_EQ(ErrorWith("https://127.0.0.1:6443/", "127.0.0.1:6443"),
            "kubeconfig " + file +
                ": clusters[\"dev-cluster\"].cluster.server: not an http(s) URL: "
                "\"127.0.0.1:6443\"");
  EXPECT_EQ(ErrorWith("    client-key-data: ", "    other: ", "prod"),
            "kubeconfig " + file +
                ": users[\"prod-user\"].user.client-key: missing (client-certificate needs it; "
                "also accepted as *-data)");
  EXPECT_EQ(ErrorWith("{token: dev-token}", "{exec: {command: aws}}"),
            "kubeconfig " + file +
                ": users[\"dev-user\"].user.exec: credential plugins are not supported (use "
                "token, tokenFile or a client certificate)");
  EXPECT_THAT(ErrorWith("{token: dev-token}", "{tokenFile: absent}"),
              HasSubstr(": users[\"dev-user\"].user.tokenFile: open(" + dir_.File("absent")));
  EXPECT_EQ(Parse(Good(), "nope").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ErrorWith("certs/ca.crt", "certs/none.crt"),
              HasSubstr("clusters[\"dev-cluster\"].cluster.certificate-authority: open(" +
                        dir_.File("certs/none.crt")));
}

TEST_F(KubeconfigTest, BadBase64AndBadPem) {
  const std::string file = dir_.File("config");
  EXPECT_EQ(ErrorWith(B64("KEY PEM"), "not*base64!", "prod"),
            "kubeconfig " + file + ": users[\"prod-user\"].user.client-key-data: not valid base64");
  EXPECT_EQ(ErrorWith(B64(kCaPem), B64("just text"), "prod"),
            "kubeconfig " + file +
                ": clusters[\"prod-cluster\"].cluster.certificate-authority-data: not a PEM "
                "certificate bundle");
}

TEST_F(KubeconfigTest, NotYamlAndMissingFile) {
  auto bad = Parse("clusters: [\n");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(bad.status()),
              ::testing::MatchesRegex("kubeconfig .*/config: line [0-9]+, column [0-9]+: YAML "
                                      "error: .*"));
  auto list = Parse("- a\n- b\n");
  EXPECT_THAT(Message(list.status()), HasSubstr("(document): not a mapping"));
  auto missing = LoadKubeconfig(dir_.File("nope"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(missing.status()), HasSubstr("kubeconfig: open(" + dir_.File("nope")));
  dir_.Write("config", Good());
  auto loaded = LoadKubeconfig(dir_.File("config"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->token, "dev-token");
}

class InClusterTest : public ::testing::Test {
 protected:
  InClusterOptions Options(std::map<std::string, std::string> env) {
    InClusterOptions o;
    o.token_file = dir_.File("token");
    o.ca_file = dir_.File("ca.crt");
    o.namespace_file = dir_.File("namespace");
    o.getenv = [env](const std::string& name) -> std::optional<std::string> {
      auto it = env.find(name);
      if (it == env.end()) return std::nullopt;
      return it->second;
    };
    return o;
  }
  TempDir dir_;
};

TEST_F(InClusterTest, ServiceAccountMount) {
  dir_.Write("token", "sa-token\n");
  dir_.Write("ca.crt", kCaPem);
  dir_.Write("namespace", "zmesh-system");
  auto c = InClusterConfig(
      Options({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->ca_file, dir_.File("ca.crt"));
  EXPECT_EQ(c->token_file, dir_.File("token"));
  EXPECT_TRUE(c->token.empty());  // read through TokenSource, so rotation is seen
  EXPECT_EQ(c->namespace_name, "zmesh-system");
  EXPECT_EQ(c->source, "in-cluster");
  auto v6 = InClusterConfig(
      Options({{"KUBERNETES_SERVICE_HOST", "fd00::1"}, {"KUBERNETES_SERVICE_PORT", "443"}}));
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->server, "https://[fd00::1]:443");
}

TEST_F(InClusterTest, MissingPiecesAreNamed) {
  auto no_env = InClusterConfig(Options({{"KUBERNETES_SERVICE_PORT", "443"}}));
  EXPECT_EQ(no_env.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Message(no_env.status()),
            "in-cluster config: KUBERNETES_SERVICE_HOST is not set (not running in a pod?)");
  const auto env = std::map<std::string, std::string>{{"KUBERNETES_SERVICE_HOST", "10.96.0.1"},
                                                      {"KUBERNETES_SERVICE_PORT", "443"}};
  dir_.Write("token", "t");
  auto no_ca = InClusterConfig(Options(env));
  EXPECT_THAT(Message(no_ca.status()),
              HasSubstr("in-cluster config: CA bundle: open(" + dir_.File("ca.crt")));
  dir_.Write("ca.crt", kCaPem);
  dir_.Write("token", "  \n");
  auto empty = InClusterConfig(Options(env));
  EXPECT_EQ(Message(empty.status()), "in-cluster config: service-account token: token file " +
                                         dir_.File("token") + " is empty");
}

// Writes `content` into the existing file in place (same inode) and puts its mtime back, so
// that nothing stat(2) shows has changed.
void RewriteInPlace(const std::string& path, std::string_view content) {
  struct stat before {};
  ASSERT_EQ(::stat(path.c_str(), &before), 0);
  std::ofstream(path, std::ios::in | std::ios::out) << content;
  const timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

class TokenSourceTest : public ::testing::Test {
 protected:
  TempDir dir_;
  FakeClock clock_;
};

TEST_F(TokenSourceTest, FixedToken) {
  TokenSource t("abc", "", clock_);
  EXPECT_EQ(*t.Get(), "abc");
}

TEST_F(TokenSourceTest, RereadWhenTheFileChanges) {
  const std::string path = dir_.Write("token", "token-one\n");
  TokenSource t("", path, clock_);
  EXPECT_EQ(*t.Get(), "token-one");
  // kubelet writes a new file and swaps it in: another inode.
  dir_.Write("token.new", "token-two-longer");
  std::filesystem::rename(dir_.File("token.new"), path);
  EXPECT_EQ(*t.Get(), "token-two-longer");
}

TEST_F(TokenSourceTest, RereadEveryMinuteAndAfterInvalidate) {
  const std::string path = dir_.Write("token", "aaaa");
  TokenSource t("", path, clock_);
  EXPECT_EQ(*t.Get(), "aaaa");
  RewriteInPlace(path, "bbbb");  // invisible to stat
  EXPECT_EQ(*t.Get(), "aaaa");
  clock_.Advance(TokenSource::kRereadInterval);
  EXPECT_EQ(*t.Get(), "bbbb");
  RewriteInPlace(path, "cccc");
  EXPECT_EQ(*t.Get(), "bbbb");
  t.Invalidate();  // what a 401 does
  EXPECT_EQ(*t.Get(), "cccc");
}

TEST_F(TokenSourceTest, KeepsTheLastTokenWhenTheFileGoes) {
  const std::string path = dir_.Write("token", "kept");
  TokenSource t("", path, clock_);
  EXPECT_EQ(*t.Get(), "kept");
  std::filesystem::remove(path);
  EXPECT_EQ(*t.Get(), "kept");
  TokenSource fresh("", path, clock_);
  auto none = fresh.Get();
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(none.status()), HasSubstr(path));
}

}  // namespace
}  // namespace zm::kube
