// TokenReviewAuthenticator against the fake API server (the real TokenReview wire format): every
// way a token is refused, with its reason and status code, first; then who a good token is, and
// how long a positive review is trusted (simulated time).
#include "ca/token_review.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/ca/kube_test_support.h"

namespace zm::ca {
namespace {

using ::testing::HasSubstr;
using testing::JwtWithExp;
using testing::ServiceAccountReview;
using testing::TokenReviews;
using testing::Unauthenticated;
using testing::ZtunnelReview;
using namespace std::chrono_literals;

class TokenReviewAuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(api_.Start().ok());
    client_ = testing::KubeClientFor(api_, "zmesh-ca-sa-token");
    ASSERT_NE(client_, nullptr);
    authn_ = std::make_unique<TokenReviewAuthenticator>(*client_, Lookup(), options_);
  }
  TokenReviewOptions Options() {
    return {.cache_ttl = 60s, .cache_capacity = 16, .clock = &clock_};
  }
  PodNodeLookup Lookup() {
    return [this](std::string_view ns, std::string_view name,
                  std::string_view uid) -> absl::StatusOr<std::string> {
      std::lock_guard lock(mu_);
      ++lookups_;
      if (!lookup_error_.ok()) return lookup_error_;
      if (ns != "zmesh-system" || uid != StrCat("uid-", name)) {
        return absl::UnauthenticatedError(StrCat("no pod ", ns, "/", name, " uid ", uid));
      }
      return std::string(name).substr(std::string_view("ztunnel-").size());
    };
  }

  FakeClock clock_;
  TokenReviewOptions options_ = Options();
  testutil::FakeKubeApiServer api_{{.token = "zmesh-ca-sa-token"}};
  TokenReviews reviews_{api_};
  std::unique_ptr<kube::KubeClient> client_;
  std::unique_ptr<TokenReviewAuthenticator> authn_;
  std::mutex mu_;
  absl::Status lookup_error_;
  int lookups_ = 0;
};

// --- Refusals ---

TEST_F(TokenReviewAuthenticatorTest, AnExpiredTokenIsUnauthenticatedWithTheApiServersReason) {
  reviews_.Set("expired", Unauthenticated("[invalid bearer token, service account token has "
                                          "expired]"));
  auto caller = authn_->Authenticate("expired");
  ASSERT_TRUE(absl::IsUnauthenticated(caller.status())) << caller.status();
  EXPECT_EQ(caller.status().message(),
            "the API server did not authenticate the token: [invalid bearer token, service "
            "account token has expired]");
}

TEST_F(TokenReviewAuthenticatorTest, ATokenWithoutTheZmeshCaAudienceIsUnauthenticated) {
  reviews_.Set("api-token",
               ServiceAccountReview("demo", "client", "", {"https://kubernetes.default.svc"}));
  auto caller = authn_->Authenticate("api-token");
  ASSERT_TRUE(absl::IsUnauthenticated(caller.status())) << caller.status();
  EXPECT_EQ(caller.status().message(),
            "the token is not valid for audience zmesh-ca (its audiences: "
            "https://kubernetes.default.svc)");
  // No audiences at all reads the same way.
  reviews_.Set("no-audience", ServiceAccountReview("demo", "client", "", {}));
  EXPECT_THAT(authn_->Authenticate("no-audience").status().message(),
              HasSubstr("(its audiences: none)"));
}

TEST_F(TokenReviewAuthenticatorTest, AUserThatIsNotAServiceAccountIsUnauthenticated) {
  for (const char* user : {"alice", "system:node:node1", "system:serviceaccount:demo",
                           "system:serviceaccount:Demo:x", "system:serviceaccount::x"}) {
    reviews_.Set(
        user,
        {{"authenticated", true}, {"user", {{"username", user}}}, {"audiences", {"zmesh-ca"}}});
    auto caller = authn_->Authenticate(user);
    ASSERT_TRUE(absl::IsUnauthenticated(caller.status())) << user << ": " << caller.status();
    EXPECT_EQ(
        caller.status().message(),
        StrCat("user \"", user, "\" is not a service account (system:serviceaccount:NS:NAME)"));
  }
}

TEST_F(TokenReviewAuthenticatorTest, AZtunnelTokenNotBoundToAPodIsUnauthenticated) {
  reviews_.Set("legacy", ServiceAccountReview("zmesh-system", "ztunnel"));
  auto caller = authn_->Authenticate("legacy");
  ASSERT_TRUE(absl::IsUnauthenticated(caller.status())) << caller.status();
  EXPECT_THAT(caller.status().message(),
              HasSubstr("the token of ztunnel service account zmesh-system/ztunnel is not bound "
                        "to a pod"));
}

TEST_F(TokenReviewAuthenticatorTest, ThePodLookupsRefusalKeepsItsCodeAndNamesThePod) {
  reviews_.Set("zt1", ZtunnelReview("node1"));
  {
    std::lock_guard lock(mu_);
    lookup_error_ =
        absl::UnavailableError("pod zmesh-system/ztunnel-node1 is not in the pod cache");
  }
  auto caller = authn_->Authenticate("zt1");
  ASSERT_TRUE(absl::IsUnavailable(caller.status())) << caller.status();
  EXPECT_EQ(caller.status().message(),
            "ztunnel zmesh-system/ztunnel (pod ztunnel-node1): pod zmesh-system/ztunnel-node1 is "
            "not in the pod cache");
}

TEST_F(TokenReviewAuthenticatorTest, TheApiUnreachableIsUnavailableNamingTheTokenReview) {
  reviews_.Set("zt1", ZtunnelReview("node1"));
  api_.FailRequests(503, -1);
  auto caller = authn_->Authenticate("zt1");
  ASSERT_TRUE(absl::IsUnavailable(caller.status())) << caller.status();
  EXPECT_THAT(caller.status().message(),
              HasSubstr("cannot review the token (TokenReview failed): POST "));
  EXPECT_THAT(caller.status().message(), HasSubstr("/apis/authentication.k8s.io/v1/tokenreviews"));
  api_.FailRequests(0, 0);
  EXPECT_TRUE(authn_->Authenticate("zt1").ok());
}

TEST_F(TokenReviewAuthenticatorTest, ZmeshCasOwnCredentialsRefusedIsUnavailable) {
  api_.SetToken("another-token");  // zmesh-ca's own credentials no longer accepted
  auto caller = authn_->Authenticate("whatever");
  ASSERT_TRUE(absl::IsUnavailable(caller.status())) << caller.status();
  EXPECT_THAT(caller.status().message(), HasSubstr("HTTP 401"));
}

TEST_F(TokenReviewAuthenticatorTest, RefusalsAreNotCached) {
  auto first = authn_->Authenticate("later-valid");
  ASSERT_TRUE(absl::IsUnauthenticated(first.status())) << first.status();
  reviews_.Set("later-valid", ServiceAccountReview("demo", "waypoint"));
  EXPECT_TRUE(authn_->Authenticate("later-valid").ok());
  EXPECT_EQ(reviews_.reviews(), 2);
}

// --- Who a token is ---

TEST_F(TokenReviewAuthenticatorTest, TheReviewAsksForTheZmeshCaAudience) {
  reviews_.Set("zt1", ZtunnelReview("node1"));
  ASSERT_TRUE(authn_->Authenticate("zt1").ok());
  EXPECT_EQ(reviews_.last_audiences(), nlohmann::json({"zmesh-ca"}));
}

TEST_F(TokenReviewAuthenticatorTest, AZtunnelIsTheNodeOfItsBoundPod) {
  reviews_.Set("zt2", ZtunnelReview("node2"));
  auto caller = authn_->Authenticate("zt2");
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->node, "node2");
  EXPECT_EQ(caller->identity, "");
  EXPECT_EQ(caller->description,
            "ztunnel of node node2 (zmesh-system/ztunnel, pod zmesh-system/ztunnel-node2)");
}

TEST_F(TokenReviewAuthenticatorTest, AnyOtherServiceAccountIsItsOwnIdentityOnly) {
  reviews_.Set("wp", ServiceAccountReview("demo", "waypoint", "waypoint"));
  auto caller = authn_->Authenticate("wp");
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->node, "");
  EXPECT_EQ(caller->identity, "spiffe://cluster.local/ns/demo/sa/waypoint");
  EXPECT_EQ(caller->description, "service account demo/waypoint (pod waypoint)");
  // A ztunnel-named service account elsewhere is not the ztunnel.
  reviews_.Set("fake-zt", ServiceAccountReview("demo", "ztunnel", "ztunnel-node1"));
  auto other = authn_->Authenticate("fake-zt");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->node, "");
  EXPECT_EQ(other->identity, "spiffe://cluster.local/ns/demo/sa/ztunnel");
}

TEST_F(TokenReviewAuthenticatorTest, TheZtunnelServiceAccountAndTrustDomainAreConfigurable) {
  options_.ztunnel_service_account = {"mesh", "node-proxy"};
  options_.trust_domain = "example.org";
  authn_ = std::make_unique<TokenReviewAuthenticator>(*client_, Lookup(), options_);
  reviews_.Set("zt1", ZtunnelReview("node1"));
  auto caller = authn_->Authenticate("zt1");
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->identity, "spiffe://example.org/ns/zmesh-system/sa/ztunnel");
}

// --- The cache ---

TEST_F(TokenReviewAuthenticatorTest,
       APositiveReviewIsTrustedForTheTtlButTheNodeIsLookedUpEachTime) {
  reviews_.Set("zt1", ZtunnelReview("node1"));
  ASSERT_TRUE(authn_->Authenticate("zt1").ok());
  clock_.Advance(59s);
  ASSERT_TRUE(authn_->Authenticate("zt1").ok());
  EXPECT_EQ(reviews_.reviews(), 1);
  EXPECT_EQ(lookups_, 2);
  // The bound pod gone: refused at once, cache or not.
  {
    std::lock_guard lock(mu_);
    lookup_error_ = absl::UnauthenticatedError("the bound pod is gone");
  }
  EXPECT_TRUE(absl::IsUnauthenticated(authn_->Authenticate("zt1").status()));
  EXPECT_EQ(reviews_.reviews(), 1);
  {
    std::lock_guard lock(mu_);
    lookup_error_ = absl::OkStatus();
  }
  // After the TTL the API is asked again, and its new answer counts.
  clock_.Advance(2s);
  reviews_.Set("zt1", Unauthenticated("token has been invalidated"));
  auto caller = authn_->Authenticate("zt1");
  EXPECT_TRUE(absl::IsUnauthenticated(caller.status())) << caller.status();
  EXPECT_EQ(reviews_.reviews(), 2);
}

TEST_F(TokenReviewAuthenticatorTest, NeverTrustedPastTheTokensOwnExpiry) {
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(clock_.Now().time_since_epoch()).count();
  const std::string token = JwtWithExp(now + 10);
  reviews_.Set(token, ServiceAccountReview("demo", "waypoint"));
  ASSERT_TRUE(authn_->Authenticate(token).ok());
  clock_.Advance(9s);
  ASSERT_TRUE(authn_->Authenticate(token).ok());
  EXPECT_EQ(reviews_.reviews(), 1);
  clock_.Advance(1s);
  reviews_.Set(token, Unauthenticated("service account token has expired"));
  EXPECT_TRUE(absl::IsUnauthenticated(authn_->Authenticate(token).status()));
  EXPECT_EQ(reviews_.reviews(), 2);
}

TEST_F(TokenReviewAuthenticatorTest, TheCacheIsBounded) {
  options_.cache_capacity = 2;
  authn_ = std::make_unique<TokenReviewAuthenticator>(*client_, Lookup(), options_);
  for (const char* token : {"a", "b", "c"}) {
    reviews_.Set(token, ServiceAccountReview("demo", "waypoint"));
    clock_.Advance(1s);
    ASSERT_TRUE(authn_->Authenticate(token).ok());
  }
  EXPECT_EQ(authn_->cached(), 2u);
  // "a" expired first and went; "c" is still trusted.
  ASSERT_TRUE(authn_->Authenticate("c").ok());
  EXPECT_EQ(reviews_.reviews(), 3);
  ASSERT_TRUE(authn_->Authenticate("a").ok());
  EXPECT_EQ(reviews_.reviews(), 4);
}

TEST(ParseNamespacedName, ReadsNamespaceSlashName) {
  auto n = ParseNamespacedName("zmesh-system/ztunnel", "--flag");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->namespace_name, "zmesh-system");
  EXPECT_EQ(n->name, "ztunnel");
  EXPECT_EQ(n->ToString(), "zmesh-system/ztunnel");
  for (const char* bad : {"ztunnel", "/ztunnel", "zmesh-system/", "a/b/c", "Zmesh/x", "a.b/x"}) {
    auto st = ParseNamespacedName(bad, "--ztunnel-service-account").status();
    EXPECT_TRUE(absl::IsInvalidArgument(st)) << bad;
    EXPECT_THAT(st.message(), HasSubstr(StrCat("--ztunnel-service-account: \"", bad, "\"")));
  }
}

}  // namespace
}  // namespace zm::ca
