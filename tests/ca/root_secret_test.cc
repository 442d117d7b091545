// The mesh root in a Kubernetes Secret, against the fake API server: an unusable Secret stops the
// start naming the Secret and the key (and is left alone); the Secret is created on first start
// and reused afterwards; a create race is settled by the winner's root.
#include "ca/root_secret.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "tests/ca/kube_test_support.h"

namespace zm::ca {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr char kWhat[] = "Secret zmesh-system/zmesh-ca-root";

json SecretJson(json data) {
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata", {{"name", "zmesh-ca-root"}, {"namespace", "zmesh-system"}}},
          {"type", "kubernetes.io/tls"},
          {"data", std::move(data)}};
}

json RootData(const tls::CertificateAuthority::GeneratedRoot& root) {
  return {{"tls.crt", absl::Base64Escape(root.cert_pem)},
          {"tls.key", absl::Base64Escape(root.key_pem)}};
}

// Forwards to a real client; the first create of a Secret is preceded by another replica's.
class RacingApi final : public kube::KubeApi {
 public:
  RacingApi(kube::KubeApi& real, testutil::FakeKubeApiServer& server, json winner)
      : real_(real), server_(server), winner_(std::move(winner)) {}
  absl::StatusOr<kube::ListResult> List(std::string_view path,
                                        const kube::ListOptions& options) override {
    return real_.List(path, options);
  }
  kube::WatchResult Watch(std::string_view path, const kube::WatchOptions& options,
                          const kube::WatchCallback& on_event) override {
    return real_.Watch(path, options, on_event);
  }
  absl::StatusOr<json> Get(std::string_view path) override { return real_.Get(path); }
  absl::StatusOr<json> Create(std::string_view path, const json& object) override {
    if (path.ends_with("/secrets") && !raced_) {
      raced_ = true;
      auto put = server_.Put(winner_);
      if (!put.ok()) return put.status();
    }
    return real_.Create(path, object);
  }
  absl::StatusOr<json> Patch(std::string_view path, const json& patch) override {
    return real_.Patch(path, patch);
  }

 private:
  kube::KubeApi& real_;
  testutil::FakeKubeApiServer& server_;
  json winner_;
  bool raced_ = false;
};

class RootSecretTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(api_.Start().ok());
    client_ = testing::KubeClientFor(api_, "");
    ASSERT_NE(client_, nullptr);
  }
  absl::StatusOr<tls::CertificateAuthority> Load(kube::KubeApi& api) {
    return LoadOrCreateRootSecret(api, {"zmesh-system", "zmesh-ca-root"}, "cluster.local", clock_);
  }
  absl::StatusOr<tls::CertificateAuthority> Load() { return Load(*client_); }
  std::optional<json> Stored() {
    return api_.Object("v1", "Secret", "zmesh-system", "zmesh-ca-root");
  }
  tls::CertificateAuthority::GeneratedRoot NewRoot() {
    auto root = tls::CertificateAuthority::GenerateRoot("cluster.local", clock_);
    EXPECT_TRUE(root.ok()) << root.status();
    return *root;
  }
  int Posts() {
    int n = 0;
    for (const auto& r : api_.requests()) n += r.method == "POST" ? 1 : 0;
    return n;
  }

  FakeClock clock_;
  testutil::FakeKubeApiServer api_;
  std::unique_ptr<kube::KubeClient> client_;
};

// --- Refusals ---

TEST_F(RootSecretTest, AMalformedSecretStopsTheStartNamingSecretAndKeyAndIsLeftAlone) {
  const auto root = NewRoot();
  const auto other = NewRoot();
  struct Case {
    std::string name;
    json data;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"no data", nullptr, StrCat(kWhat, ": no data (expected keys tls.crt and tls.key)")},
      {"no key",
       {{"tls.crt", absl::Base64Escape(root.cert_pem)}},
       StrCat(kWhat, ": no data key tls.key")},
      {"not base64",
       {{"tls.crt", "%%% not base64 %%%"}, {"tls.key", absl::Base64Escape(root.key_pem)}},
       StrCat(kWhat, ", key tls.crt: not valid base64")},
      {"not a string",
       {{"tls.crt", 42}, {"tls.key", absl::Base64Escape(root.key_pem)}},
       StrCat(kWhat, ", key tls.crt: not valid base64")},
      {"not PEM",
       {{"tls.crt", absl::Base64Escape("hello")}, {"tls.key", absl::Base64Escape(root.key_pem)}},
       StrCat(kWhat, ", key tls.crt: not a PEM certificate")},
      {"key not PEM",
       {{"tls.crt", absl::Base64Escape(root.cert_pem)}, {"tls.key", absl::Base64Escape("x")}},
       StrCat(kWhat, ", key tls.key: not a PEM private key (or an encrypted one)")},
      {"another root's key",
       {{"tls.crt", absl::Base64Escape(root.cert_pem)},
        {"tls.key", absl::Base64Escape(other.key_pem)}},
       StrCat(kWhat, ", key tls.crt: the private key does not match the certificate")},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    json secret = SecretJson(c.data);
    if (c.data.is_null()) secret.erase("data");
    auto stored = api_.Put(secret);
    ASSERT_TRUE(stored.ok()) << stored.status();
    auto ca = Load();
    ASSERT_TRUE(absl::IsFailedPrecondition(ca.status())) << ca.status();
    EXPECT_EQ(ca.status().message(), c.error);
    EXPECT_EQ(Stored()->value("data", json()), stored->value("data", json()));
  }
  EXPECT_EQ(Posts(), 0) << "an unusable Secret is never replaced";
}

TEST_F(RootSecretTest, AnExpiredRootInTheSecretIsRefused) {
  const auto root = NewRoot();
  ASSERT_TRUE(api_.Put(SecretJson(RootData(root))).ok());
  clock_.Advance(tls::CertificateAuthority::kRootLifetime + std::chrono::hours(1));
  auto ca = Load();
  ASSERT_FALSE(ca.ok());
  EXPECT_EQ(ca.status().message(), StrCat(kWhat, ", key tls.crt: root certificate has expired"));
}

TEST_F(RootSecretTest, AnApiErrorNamesTheSecretAndKeepsItsCode) {
  api_.FailRequests(503, 1);
  auto ca = Load();
  ASSERT_TRUE(absl::IsUnavailable(ca.status())) << ca.status();
  EXPECT_THAT(ca.status().message(), HasSubstr(StrCat(kWhat, ": cannot read it: GET ")));
  EXPECT_EQ(Posts(), 0);
}

// --- Created, reused, raced ---

TEST_F(RootSecretTest, CreatedOnFirstStartAndReusedOnTheSecond) {
  auto first = Load();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->trust_domain(), "cluster.local");
  auto secret = Stored();
  ASSERT_TRUE(secret.has_value());
  EXPECT_EQ(secret->value("type", ""), "kubernetes.io/tls");
  EXPECT_EQ((*secret)["metadata"]["labels"].value("app.kubernetes.io/managed-by", ""), "zmesh-ca");
  std::string cert;
  ASSERT_TRUE(absl::Base64Unescape((*secret)["data"].value("tls.crt", ""), &cert));
  EXPECT_EQ(cert, first->RootPem());
  std::string key;
  ASSERT_TRUE(absl::Base64Unescape((*secret)["data"].value("tls.key", ""), &key));
  EXPECT_THAT(key, HasSubstr("-----BEGIN PRIVATE KEY-----"));
  EXPECT_EQ(Posts(), 1);

  auto second = Load();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->RootPem(), first->RootPem());
  EXPECT_EQ(Posts(), 1) << "the second start only reads";
}

TEST_F(RootSecretTest, ACreateRaceIsSettledByTheWinnersRoot) {
  const auto winner = NewRoot();
  RacingApi racing(*client_, api_, SecretJson(RootData(winner)));
  auto ca = Load(racing);
  ASSERT_TRUE(ca.ok()) << ca.status();
  EXPECT_EQ(ca->RootPem(), winner.cert_pem);
  // The loser's one create was refused (409); the Secret holds the winner's root.
  EXPECT_EQ(Posts(), 1);
  std::string cert;
  ASSERT_TRUE(absl::Base64Unescape((*Stored())["data"].value("tls.crt", ""), &cert));
  EXPECT_EQ(cert, winner.cert_pem);
}

}  // namespace
}  // namespace zm::ca
